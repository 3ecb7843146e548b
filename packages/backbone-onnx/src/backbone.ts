/**
 * {@link OnnxBackbone}: any .onnx file as a core `Backbone`. One onnxruntime session, created once (at load) and
 * reused; forward runs in chunks of `maxBatch` rows and concatenates them back. Intermediates named as `hidden`,
 * `embeddings` or in `expose` are added as extra graph outputs in a cached copy of the model (see cache.ts); the
 * user's file is never modified.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { InternalError, UserError, concatRows, sliceRows } from '@sop/core';
import type {
  Backbone,
  BackboneCapabilities,
  BackboneInfo,
  BackboneOutputs,
  FloatTensor,
  ForwardOptions,
  Inputs,
  TensorData,
  VjpRequest,
  VjpResult,
} from '@sop/core';
import { cacheKey, hashBytes, writeCachedModel } from './cache.js';
import { closeNames } from './names.js';
import { resolveModelPath } from './options.js';
import type { OnnxBackboneOptions } from './options.js';
import type { OnnxVjp } from './grad/index.js';
import { decodeModelProto, exposeOutputs, findLastSpatialTensor, graphInputs, listTensors, readInitializer, requireTensor, weightLayout } from './proto.js';
import type { GraphTensor } from './proto.js';
import { findLastTokenTensor } from './token-layer.js';
import { annotateShapes } from './shapes.js';
import type { ModelProto } from './proto.js';
import { createSession, dummyFeeds, formatShape, fromOrtTensor, sessionInputs, sessionOutputs, toOrtTensor, toOrtSessionOptions, gradientSessionConfig } from './session.js';
import type { ValueSpec } from './session.js';

export const DEFAULT_MAX_BATCH = 64;

/** Names that are usually auxiliary inputs rather than the explained input. */
const AUX_INPUT = /mask|token_type|position_ids|segment/i;
const PRIMARY_INPUT = ['input_ids', 'pixel_values', 'x', 'input', 'inputs', 'images', 'image', 'input_values'];

/** The gradient engine (./grad, createVjp) as used here; imported lazily on the first vjp call. */
type VjpEngine = Pick<OnnxVjp, 'vjp'>;

export class OnnxBackbone implements Backbone {
  readonly name: string;
  readonly info: BackboneInfo;
  readonly capabilities: BackboneCapabilities;
  /** The user's model file (never modified). */
  readonly modelPath: string;
  /** The file the session runs: the model itself, or a cached copy with extra outputs. */
  readonly sessionPath: string;
  /** Graph input fed from `inputs.x`, and the graph inputs fed from aux keys of the same name. */
  readonly inputName: string;
  readonly auxInputNames: string[];
  readonly outputName: string;
  readonly hiddenName?: string;
  readonly embeddingsName?: string;
  readonly maxBatch: number;
  private readonly inputSpecs: Map<string, ValueSpec>;
  private readonly outputNames: Set<string>;
  private readonly vjpEngines = new Map<string, Promise<VjpEngine>>();
  /** requested outputs → (result key, graph name) pairs and the fetch list, resolved once per distinct request */
  private readonly outputPlans = new Map<string, { outs: Array<[string, string]>; fetches: string[] }>();
  private disposed = false;
  private readonly outputInOriginal: boolean;
  private modelProto?: ModelProto;
  private kinds?: Map<string, GraphTensor['kind']>;
  private camLayer?: Promise<string | undefined>;

  private constructor(
    private readonly ortSession: ort.InferenceSession,
    private readonly options: OnnxBackboneOptions,
    fields: {
      modelPath: string;
      sessionPath: string;
      inputName: string;
      outputName: string;
      hiddenName?: string;
      embeddingsName?: string;
      info: BackboneInfo;
      outputInOriginal: boolean;
    },
  ) {
    this.outputInOriginal = fields.outputInOriginal;
    this.modelPath = fields.modelPath;
    this.sessionPath = fields.sessionPath;
    this.inputName = fields.inputName;
    this.outputName = fields.outputName;
    this.hiddenName = fields.hiddenName;
    this.embeddingsName = fields.embeddingsName;
    this.info = fields.info;
    this.name = options.name ?? `onnx:${basename(fields.modelPath)}`;
    this.maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    const specs = sessionInputs(ortSession);
    this.inputSpecs = new Map(specs.map((s) => [s.name, s]));
    this.auxInputNames = specs.map((s) => s.name).filter((n) => n !== fields.inputName);
    this.outputNames = new Set(ortSession.outputNames);
    this.capabilities = { vjp: true, hidden: !!fields.hiddenName, embeddings: !!fields.embeddingsName };
  }

  /** The underlying onnxruntime session (for benchmarks and advanced use). */
  get session(): ort.InferenceSession {
    return this.ortSession;
  }

  /** Load the model, add requested intermediates as outputs (cached copy), create the session, learn dims. */
  static async load(options: OnnxBackboneOptions): Promise<OnnxBackbone> {
    const modelPath = resolveModelPath(options);
    if (!existsSync(modelPath)) {
      throw new UserError(`ONNX model not found: ${modelPath}`, "check backbone.path (relative paths are resolved from the config file's folder)");
    }
    const bytes = readFileSync(modelPath);
    const model = decodeModelProto(bytes, modelPath);

    const inputs = graphInputs(model).map((i) => i.name ?? '');
    let inputName = options.input;
    if (inputName) requireTensor(model, inputName, 'backbone.input', ['input']);
    else inputName = defaultInput(inputs);
    const firstOutput = model.graph!.output![0].name ?? '';
    const outputName = options.output ?? firstOutput;
    const check = (name: string | undefined, key: string) => name && requireTensor(model, name, `backbone.${key}`, ['output', 'intermediate']);
    check(outputName, 'output');
    check(options.hidden, 'hidden');
    check(options.embeddings, 'embeddings');
    check(options.gradcamLayer, 'gradcamLayer');
    for (const f of options.finetune ?? []) requireTensor(model, f, 'backbone.finetune', ['initializer']);
    for (const e of options.expose ?? []) check(e, 'expose');

    const graphOutputs = new Set(model.graph!.output!.map((o) => o.name ?? ''));
    const extra = [...new Set([outputName, options.hidden, options.embeddings, ...(options.expose ?? [])])].filter(
      (n): n is string => !!n && !graphOutputs.has(n),
    );
    let sessionPath = modelPath;
    if (extra.length) {
      const modified = exposeOutputs(model, extra);
      sessionPath = writeCachedModel(modelPath, modified, cacheKey(hashBytes(bytes), `expose:${JSON.stringify(extra)}`), options.cacheDir);
    }
    const session = await createSession(sessionPath, options);

    // dims: from onnxruntime's metadata, else from one dummy row
    const outSpecs = new Map(sessionOutputs(session).map((s) => [s.name, s]));
    const wanted = [outputName, options.hidden, options.embeddings].filter((n): n is string => !!n);
    const shapes = new Map<string, Array<number | string>>();
    const unknown: string[] = [];
    for (const n of wanted) {
      const s = outSpecs.get(n)?.shape;
      if (s && typeof s[s.length - 1] === 'number') shapes.set(n, s);
      else unknown.push(n);
    }
    if (unknown.length) {
      let r: ort.InferenceSession.OnnxValueMapType;
      try {
        r = await session.run(dummyFeeds(sessionInputs(session), 1), unknown);
      } catch (e) {
        throw new UserError(
          `could not run ${modelPath} on a dummy row to learn the shapes of ${unknown.join(', ')}: ${(e as Error).message?.split('\n')[0]}`,
          'check the model runs in onnxruntime (`sop inspect MODEL.onnx`)',
          { cause: e },
        );
      }
      for (const n of unknown) shapes.set(n, (r[n] as ort.Tensor).dims.map((d, i) => (i === 0 ? 'batch' : Number(d))));
    }
    const outShape = shapes.get(outputName)!;
    if (outShape.length < 1 || outShape.length > 2) {
      throw new UserError(
        `backbone.output '${outputName}' has shape ${formatShape(outShape)}; the output must be [batch, C] (logits or regression outputs)`,
        'pick a per-example output (`sop inspect MODEL.onnx` lists shapes); for per-token outputs, export a pooled head',
      );
    }
    // a [batch] output (squeezed regression) is returned as [batch, 1]
    const outputDim = outShape.length === 1 ? 1 : Number(outShape[1]);
    let hiddenDim: number | undefined;
    let embeddingDim: number | undefined;
    if (options.hidden) {
      const s = shapes.get(options.hidden)!;
      if (s.length !== 2) {
        throw new UserError(
          `backbone.hidden '${options.hidden}' has shape ${formatShape(s)}; a pooled hidden state must be [batch, k]`,
          'pick a 2-D tensor (e.g. the CLS token or pooled features; `sop inspect MODEL.onnx` lists shapes), or use backbone.embeddings for [batch, d, k] states',
        );
      }
      hiddenDim = Number(s[1]);
    }
    if (options.embeddings) {
      const s = shapes.get(options.embeddings)!;
      if (s.length !== 3) {
        throw new UserError(
          `backbone.embeddings '${options.embeddings}' has shape ${formatShape(s)}; per-feature states must be [batch, d, k]`,
          'pick a 3-D tensor such as the patch/token states of the last layer (`sop inspect MODEL.onnx` lists shapes)',
        );
      }
      embeddingDim = Number(s[2]);
    }
    const inSpec = sessionInputs(session).find((s) => s.name === inputName);
    const rest = inSpec?.shape?.slice(1);
    const info: BackboneInfo = {
      outputDim,
      hiddenDim,
      embeddingDim,
      inputShape: rest && rest.every((d) => typeof d === 'number') ? (rest as number[]) : undefined,
      extraOutputs: [...new Set([...session.outputNames, ...extra])].filter(
        (n) => n !== outputName && n !== options.hidden && n !== options.embeddings,
      ),
    };
    if (options.classifierWeight) info.classifierWeight = classifierWeight(model, options.classifierWeight, modelPath, outputDim, hiddenDim);
    return new OnnxBackbone(session, options, {
      modelPath,
      sessionPath,
      inputName,
      outputName,
      hiddenName: options.hidden,
      embeddingsName: options.embeddings,
      info,
      outputInOriginal: graphOutputs.has(outputName),
    });
  }

  /** Graph input name → TensorData for one batch (x under the primary input name, aux inputs by graph name). */
  graphFeeds(inputs: Inputs): Record<string, TensorData> {
    const feeds: Record<string, TensorData> = { [this.inputName]: inputs.x };
    const missing: string[] = [];
    for (const n of this.auxInputNames) {
      const t = inputs[n];
      if (t) feeds[n] = t;
      else missing.push(n);
    }
    if (missing.length) {
      const have = Object.keys(inputs).filter((k) => k !== 'x');
      throw new UserError(
        `the ONNX model needs input(s) ${missing.map((m) => `'${m}'`).join(', ')} besides '${this.inputName}' (fed from x), but the batch has ${have.length ? `only aux keys ${have.join(', ')}` : 'no aux inputs'}`,
        `use a data set that provides ${missing.join(', ')} (text data sets provide attention_mask/token_type_ids), or set backbone.input to the right graph input`,
      );
    }
    const rows = inputs.x.shape[0];
    for (const [n, t] of Object.entries(feeds)) {
      if (t.shape[0] !== rows) {
        throw new UserError(`input '${n}' has ${t.shape[0]} rows but x has ${rows}`, 'aux inputs must travel with x row for row');
      }
    }
    return feeds;
  }

  private resolveOutputs(requested: string[] | undefined): Array<[key: string, graphName: string]> {
    const out: Array<[string, string]> = [['output', this.outputName]];
    for (const r of requested ?? []) {
      if (r === 'output' || out.some(([k]) => k === r)) continue;
      if (r === 'hidden' || r === 'embeddings') {
        const n = r === 'hidden' ? this.hiddenName : this.embeddingsName;
        if (!n) {
          throw new UserError(
            `backbone ${this.name} has no ${r === 'hidden' ? 'pooled hidden state' : 'per-feature embeddings'}`,
            `set backbone.${r} to a tensor name of the model (\`sop inspect ${this.modelPath}\` lists them)`,
          );
        }
        out.push([r, n]);
      } else if (this.outputNames.has(r)) out.push([r, r]);
      else {
        const close = closeNames(r, [...this.outputNames]);
        throw new UserError(
          `forward: '${r}' is not an output of backbone ${this.name}` + (close.length ? `; close names: ${close.join(', ')}` : ''),
          `add it to backbone.expose: [${JSON.stringify(r)}] (any intermediate tensor of the graph can be exposed)`,
        );
      }
    }
    return out;
  }

  async forward(inputs: Inputs, options: ForwardOptions = {}): Promise<BackboneOutputs> {
    if (this.disposed) throw new InternalError(`backbone ${this.name} was disposed`);
    const key = options.outputs && options.outputs.length ? options.outputs.join('\0') : '';
    let plan = this.outputPlans.get(key);
    if (!plan) {
      const outs = this.resolveOutputs(options.outputs);
      plan = { outs, fetches: [...new Set(outs.map(([, g]) => g))] };
      this.outputPlans.set(key, plan);
    }
    const { outs, fetches } = plan;
    const feeds = this.graphFeeds(inputs);
    const rows = inputs.x.shape[0];
    if (rows === 0) return this.emptyForward(feeds, outs, fetches);
    const chunks: Record<string, FloatTensor>[] = [];
    for (let start = 0; start < rows; start += this.maxBatch) {
      const end = Math.min(rows, start + this.maxBatch);
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [n, t] of Object.entries(feeds)) {
        const part = start === 0 && end === rows ? t : sliceRows(t, start, end);
        ortFeeds[n] = toOrtTensor(part, this.inputSpecs.get(n)!, n === this.inputName ? 'x' : n);
      }
      let r: ort.InferenceSession.OnnxValueMapType;
      try {
        r = await this.ortSession.run(ortFeeds, fetches);
      } catch (e) {
        throw runError(e, this.name);
      }
      const got: Record<string, FloatTensor> = {};
      for (const g of fetches) got[g] = fromOrtTensor(r[g] as ort.Tensor);
      chunks.push(got);
    }
    const result: BackboneOutputs = {} as BackboneOutputs;
    for (const [key, g] of outs) result[key] = chunks.length === 1 ? chunks[0][g] : concatRows(chunks.map((c) => c[g]));
    if (result.output.shape.length === 1) result.output = { data: result.output.data, shape: [result.output.shape[0], 1] };
    return result;
  }

  /** Zero rows: many graphs cannot run on an empty batch (Reshape with -1), so learn the row shapes from one zero row. */
  private async emptyForward(
    feeds: Record<string, TensorData>,
    outs: Array<[string, string]>,
    fetches: string[],
  ): Promise<BackboneOutputs> {
    const one: Record<string, ort.Tensor> = {};
    for (const [n, t] of Object.entries(feeds)) {
      const shape = [1, ...t.shape.slice(1)];
      const size = shape.reduce((a, b) => a * b, 1);
      const data = t.data instanceof BigInt64Array ? new BigInt64Array(size) : new Float32Array(size);
      one[n] = toOrtTensor({ data, shape }, this.inputSpecs.get(n)!, n === this.inputName ? 'x' : n);
    }
    let r: ort.InferenceSession.OnnxValueMapType;
    try {
      r = await this.ortSession.run(one, fetches);
    } catch (e) {
      throw runError(e, this.name);
    }
    const result = {} as BackboneOutputs;
    for (const [key, g] of outs) {
      const dims = (r[g] as ort.Tensor).dims.map(Number);
      result[key] = { data: new Float32Array(0), shape: [0, ...dims.slice(1)] };
    }
    if (result.output.shape.length === 1) result.output = { data: result.output.data, shape: [0, 1] };
    return result;
  }

  /**
   * Vector-Jacobian product through the ONNX graph (via the gradient engine in ./grad). `request.wrt` names inputs
   * ('x' or aux/graph input names), initializers (weights) and/or intermediate tensors (any node output, e.g. a conv
   * feature map or a token tensor). Gradients of inputs and intermediates are per row and concatenated over chunks of
   * `maxBatch` rows; weight gradients are summed over chunks. `outputs` holds `output` and the forward value of every
   * intermediate in `wrt` (from the same pass as its gradient, as GradCAM needs). `request.params` replaces stored
   * initializer values (name → tensor of the initializer's shape) in this call, for fine-tuning.
   */
  async vjp(inputs: Inputs, request: VjpRequest): Promise<VjpResult> {
    if (this.disposed) throw new InternalError(`backbone ${this.name} was disposed`);
    const extraCot = Object.keys(request.cotangents).filter((k) => k !== 'output' && request.cotangents[k]);
    if (extraCot.length) {
      throw new UserError(`backbone onnx: vjp supports a cotangent for 'output' only, got ${extraCot.join(', ')}`, 'differentiate the output only');
    }
    const cot = request.cotangents.output;
    if (!cot) throw new UserError('vjp: request.cotangents.output is required', 'pass a cotangent shaped like the forward output');
    const rows = inputs.x.shape[0];
    if (cot.shape[0] !== rows) throw new UserError(`vjp: cotangent has ${cot.shape[0]} rows but x has ${rows}`, 'pass one cotangent row per input row');
    const wrtKeys = [...new Set(request.wrt ?? ['x'])];
    // 'x' is the primary input; 'hidden' / 'embeddings' name the tensors configured as such
    const alias: Record<string, string | undefined> = { x: this.inputName, hidden: this.hiddenName, embeddings: this.embeddingsName };
    const wrt = wrtKeys.map((k) => alias[k] ?? k);
    const kinds = this.tensorKinds();
    const inputSet = new Set([this.inputName, ...this.auxInputNames]);
    const kindOf = (w: string): 'input' | 'weight' | 'intermediate' => {
      if (inputSet.has(w)) return 'input';
      const k = kinds.get(w);
      if (k === 'initializer') return 'weight';
      if (k === 'intermediate' || k === 'output') return 'intermediate';
      const close = closeNames(w, [...kinds.keys()]);
      throw new UserError(
        `vjp: '${w}' is not an input, initializer or intermediate tensor of ${this.modelPath}` + (close.length ? `; close names: ${close.join(', ')}` : ''),
        `differentiate with respect to 'x', a weight or a node output listed by \`sop inspect ${this.modelPath}\``,
      );
    };
    const wrtKinds = wrt.map(kindOf);
    const params = this.checkParams(request.params);
    // the engine differentiates w.r.t. fed weights too (only wrt initializers become feedable graph inputs)
    const engineWrt = [...new Set([...wrt, ...Object.keys(params)])];
    const intermediates = wrt.filter((_, i) => wrtKinds[i] === 'intermediate');
    const engine = await this.vjpEngine(engineWrt, intermediates);

    let feeds = this.graphFeeds(inputs);
    let cotangent = cot;
    const empty = rows === 0;
    if (empty) {
      // many graphs cannot run on an empty batch: run one zero row to learn the shapes, keep nothing of it
      feeds = Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, zeroRow(t)]));
      cotangent = { data: new Float32Array(cot.shape.slice(1).reduce((a, b) => a * b, 1)), shape: [1, ...cot.shape.slice(1)] };
    }
    const n = empty ? 1 : rows;
    const outKeys = [...new Set([this.outputName, ...intermediates])];
    const uniqueWrt = [...new Set(wrt)];
    const outParts: Record<string, FloatTensor[]> = {};
    const gradParts: Record<string, FloatTensor[]> = {};
    for (let start = 0; start < n; start += this.maxBatch) {
      const end = Math.min(n, start + this.maxBatch);
      const whole = start === 0 && end === n;
      const part: Record<string, TensorData> = {};
      for (const [name, t] of Object.entries(feeds)) part[name] = whole ? t : sliceRows(t, start, end);
      Object.assign(part, params);
      const c = whole ? cotangent : sliceRows(cotangent, start, end);
      const r = await engine.vjp(part, c, engineWrt);
      for (const w of uniqueWrt) (gradParts[w] ??= []).push(r.grads[w]);
      for (const o of outKeys) {
        const v = r.outputs[o];
        if (!v) continue;
        // an intermediate has the shape of its gradient; the output that of the cotangent
        const shape = o === this.outputName && !intermediates.includes(o) ? [end - start, ...cot.shape.slice(1)] : r.grads[o]?.shape;
        if (shape) (outParts[o] ??= []).push({ data: v, shape: [...shape] });
      }
    }
    const grads: Record<string, FloatTensor> = {};
    wrt.forEach((w, i) => {
      const parts = gradParts[w];
      if (!parts || parts.some((p) => !p)) throw new InternalError(`gradient engine returned no gradient for '${w}'`);
      const key = wrtKeys[i];
      if (wrtKinds[i] !== 'weight') grads[key] = empty ? emptyRows(parts[0]) : parts.length === 1 ? parts[0] : concatRows(parts);
      else if (empty) grads[key] = { data: new Float32Array(parts[0].data.length), shape: [...parts[0].shape] };
      else {
        const sum = new Float32Array(parts[0].data.length);
        for (const p of parts) for (let j = 0; j < sum.length; j++) sum[j] += p.data[j];
        grads[key] = { data: sum, shape: [...parts[0].shape] };
      }
    });
    const joined = (o: string): FloatTensor | undefined => {
      const parts = outParts[o];
      if (!parts || parts.length === 0) return undefined;
      if (empty) return emptyRows(parts[0]);
      return parts.length === 1 ? parts[0] : concatRows(parts);
    };
    let output = joined(this.outputName);
    if (!output) {
      if (Object.keys(params).length) throw new InternalError(`gradient engine returned no forward output '${this.outputName}'`);
      output = (await this.forward(inputs)).output;
    }
    if (output.shape.length === 1) output = { data: output.data, shape: [output.shape[0], 1] };
    const outputs: BackboneOutputs = { output };
    wrt.forEach((w, i) => {
      if (wrtKinds[i] !== 'intermediate') return;
      const v = joined(w);
      if (!v) throw new InternalError(`gradient engine returned no forward value for '${w}'`);
      outputs[wrtKeys[i]] = v;
    });
    return { outputs, grads };
  }

  /**
   * Float initializers (weights) of the model by name, read from the file (a copy each call). Used to start
   * fine-tuning (`vjp` with `params`) and by FullGrad for bias values.
   */
  parameters(): Record<string, FloatTensor> {
    const model = this.model();
    const out: Record<string, FloatTensor> = {};
    for (const t of model.graph?.initializer ?? []) {
      const name = t.name ?? '';
      if (t.dataType !== 1 && t.dataType !== 10 && t.dataType !== 11) continue;
      out[name] = readInitializer(model, name, this.modelPath);
    }
    return out;
  }

  /** One float initializer by name (a copy, as in {@link parameters}), or undefined when there is none. */
  parameter(name: string): FloatTensor | undefined {
    // initializers are constants of the file: decoded once, handed out as copies (FullGrad asks on every call)
    let t = this.decoded.get(name);
    if (t === undefined) {
      const model = this.model();
      const init = (model.graph?.initializer ?? []).find((i) => i.name === name);
      t = !init || (init.dataType !== 1 && init.dataType !== 10 && init.dataType !== 11) ? null : readInitializer(model, name, this.modelPath);
      this.decoded.set(name, t);
    }
    return t ? { data: t.data.slice(), shape: [...t.shape] } : undefined;
  }

  /** Decoded float initializers by name (null: not a float initializer), see {@link parameter}. */
  private readonly decoded = new Map<string, FloatTensor | null>();

  /**
   * The default GradCAM layer: the last 4-D spatial tensor before global pooling (CNNs, {@link findLastSpatialTensor}),
   * else the token tensor [B, L, k] entering the last attention block (ViTs, {@link findLastTokenTensor}), else
   * undefined. Both can be differentiated by `vjp({wrt: [name]})`, which also returns their forward values.
   */
  async gradcamLayer(): Promise<string | undefined> {
    this.camLayer ??= (async () => {
      if (this.options.gradcamLayer) return this.options.gradcamLayer;
      const spatial = findLastSpatialTensor(this.model());
      if (spatial) return spatial;
      const path = await this.shapeAnnotatedPath(this.modelPath);
      return findLastTokenTensor(path === this.modelPath ? this.model() : decodeModelProto(readFileSync(path), path), this.outputName);
    })();
    return this.camLayer;
  }

  /**
   * FullGrad's bias layers: every Conv node with a bias initializer whose output is 4-D, as {output: the conv's output
   * tensor, bias: the bias initializer} (both resolvable through `vjp` and `parameters()`). Conv biases are the
   * spatial ones FullGrad maps; biases of linear layers carry no location.
   */
  fullgradBiasLayers(): Array<{ output: string; bias: string }> {
    this.biasLayers ??= this.findBiasLayers();
    return this.biasLayers.map((l) => ({ ...l }));
  }

  private biasLayers?: Array<{ output: string; bias: string }>;

  private findBiasLayers(): Array<{ output: string; bias: string }> {
    const kinds = this.tensorKinds();
    const out: Array<{ output: string; bias: string }> = [];
    for (const n of this.model().graph?.node ?? []) {
      const bias = n.input?.[2];
      const o = n.output?.[0];
      if (n.opType !== 'Conv' || !bias || !o || kinds.get(bias) !== 'initializer') continue;
      const w = (this.model().graph?.initializer ?? []).find((t) => t.name === n.input?.[1]);
      if (w && (w.dims ?? []).length === 4) out.push({ output: o, bias });
    }
    return out;
  }

  /** The user's model, decoded once. */
  private model(): ModelProto {
    this.modelProto ??= decodeModelProto(readFileSync(this.modelPath), this.modelPath);
    return this.modelProto;
  }

  private tensorKinds(): Map<string, GraphTensor['kind']> {
    this.kinds ??= new Map(listTensors(this.model()).map((t) => [t.name, t.kind]));
    return this.kinds;
  }

  /** Validate `request.params`: known float initializers with their stored shapes. */
  private checkParams(params: Record<string, FloatTensor> | undefined): Record<string, FloatTensor> {
    if (!params) return {};
    const kinds = this.tensorKinds();
    for (const [name, t] of Object.entries(params)) {
      if (kinds.get(name) !== 'initializer') {
        const close = closeNames(name, [...kinds].filter(([, k]) => k === 'initializer').map(([n]) => n));
        throw new UserError(
          `vjp: params['${name}'] is not an initializer (weight) of ${this.modelPath}` + (close.length ? `; close names: ${close.join(', ')}` : ''),
          'name weights as listed under "initializers" by `sop inspect MODEL.onnx`',
        );
      }
      const stored = (this.model().graph?.initializer ?? []).find((x) => x.name === name)!;
      const shape = (stored.dims ?? []).map((d) => Number(d));
      if (!(t.data instanceof Float32Array) || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new UserError(
          `vjp: params['${name}'] has shape [${t.shape.join(', ')}], the initializer has [${shape.join(', ')}]`,
          'pass float32 values of the stored shape (start from backbone.parameters())',
        );
      }
      for (let i = 0; i < t.data.length; i++) {
        if (!Number.isFinite(t.data[i])) throw new UserError(`vjp: params['${name}'] contains ${t.data[i]}`, 'lower the learning rate or clip gradients');
      }
    }
    return params;
  }

  private vjpEngine(wrt: string[], intermediates: string[]): Promise<VjpEngine> {
    const key = JSON.stringify([...wrt].sort());
    let p = this.vjpEngines.get(key);
    if (!p) {
      p = (async () => {
        const { createVjp } = await import('./grad/index.js');
        // differentiate the user's model unless `output` is an intermediate only present in the cached copy; the
        // gradient builder needs ranks, so a model without value_info gets a shape-annotated cached copy
        let base = this.outputInOriginal ? this.modelPath : this.sessionPath;
        // intermediates in wrt become graph outputs too, so that one run returns their values and gradients
        const graphOutputs = new Set((this.model().graph?.output ?? []).map((o) => o.name ?? ''));
        const expose = [...new Set([this.outputName, ...intermediates])].filter((n) => !graphOutputs.has(n));
        if (intermediates.some((n) => !graphOutputs.has(n))) {
          const bytes = readFileSync(this.modelPath);
          const exposed = exposeOutputs(this.model(), expose);
          base = writeCachedModel(this.modelPath, exposed, cacheKey(hashBytes(bytes), `expose:${JSON.stringify(expose)}`), this.options.cacheDir);
        }
        const path = await this.shapeAnnotatedPath(base);
        const cacheDir = this.options.cacheDir ?? (path !== this.modelPath ? dirname(path) : undefined);
        return createVjp(path, { output: this.outputName, wrt, sessionOptions: toOrtSessionOptions(gradientSessionConfig(this.options)), cacheDir });
      })();
      this.vjpEngines.set(key, p);
      p.catch(() => this.vjpEngines.delete(key));
    }
    return p;
  }

  /** `path` itself when its graph declares the type of every intermediate, else a cached copy annotated by a dummy run. */
  private async shapeAnnotatedPath(path: string): Promise<string> {
    const bytes = readFileSync(path);
    const model = decodeModelProto(bytes, path);
    const declared = new Set((model.graph?.valueInfo ?? []).map((v) => v.name));
    const missing = listTensors(model).some((t) => t.kind === 'intermediate' && t.op !== 'Constant' && !declared.has(t.name));
    if (!missing) return path;
    const annotated = await annotateShapes(model, { session: { ...this.options, graphOptimizationLevel: undefined }, modelPath: path });
    return writeCachedModel(this.modelPath, annotated, cacheKey(hashBytes(bytes), 'shapes:v1'), this.options.cacheDir);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.ortSession.release();
  }
}

/** One all-zero row shaped like a row of `t`. */
function zeroRow(t: TensorData): TensorData {
  const shape = [1, ...t.shape.slice(1)];
  const size = shape.reduce((a, b) => a * b, 1);
  return t.data instanceof BigInt64Array ? { data: new BigInt64Array(size), shape } : { data: new Float32Array(size), shape };
}

/** No rows, shaped like the rows of `t`. */
function emptyRows(t: FloatTensor): FloatTensor {
  return { data: new Float32Array(0), shape: [0, ...t.shape.slice(1)] };
}

function defaultInput(inputs: string[]): string {
  if (inputs.length === 1) return inputs[0];
  if (inputs.length === 0) throw new UserError('the ONNX graph has no inputs', 'export the model with at least one input');
  const preferred = PRIMARY_INPUT.find((p) => inputs.includes(p));
  if (preferred) return preferred;
  const primary = inputs.filter((n) => !AUX_INPUT.test(n));
  if (primary.length === 1) return primary[0];
  throw new UserError(
    `the ONNX graph has ${inputs.length} inputs (${inputs.join(', ')}) and it is unclear which one is x`,
    `set backbone.input to one of: ${inputs.join(', ')}; the others are fed from the batch's aux inputs of the same name`,
  );
}

/** The classifier weight as [C, k]: Gemm(transB=1) weights are [C, k] already, MatMul/Gemm(transB=0) ones [k, C]. */
function classifierWeight(model: ModelProto, name: string, modelPath: string, outputDim: number, hiddenDim?: number): FloatTensor {
  const w = readInitializer(model, name, modelPath);
  if (w.shape.length !== 2) {
    throw new UserError(
      `backbone.classifierWeight '${name}' has shape ${formatShape(w.shape)}; expected a 2-D weight [C, k] or [k, C]`,
      'name the final linear layer\'s weight (`sop inspect MODEL.onnx` lists initializers with shapes)',
    );
  }
  const [a, b] = w.shape;
  const layout = weightLayout(model, name);
  let transpose: boolean;
  if (layout === 'rows-are-outputs' && a === outputDim) transpose = false;
  else if (layout === 'columns-are-outputs' && b === outputDim) transpose = true;
  else if (a === outputDim && (hiddenDim === undefined || b === hiddenDim)) transpose = false;
  else if (b === outputDim && (hiddenDim === undefined || a === hiddenDim)) transpose = true;
  else {
    throw new UserError(
      `backbone.classifierWeight '${name}' has shape ${formatShape(w.shape)}, which does not match the output size ${outputDim}` +
        (hiddenDim !== undefined ? ` and hidden size ${hiddenDim}` : ''),
      'name the weight of the layer that maps the hidden state to the outputs',
    );
  }
  if (!transpose) return w;
  const t = new Float32Array(a * b);
  for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) t[j * a + i] = w.data[i * b + j];
  return { data: t, shape: [b, a] };
}

function runError(e: unknown, name: string): Error {
  if (e instanceof UserError) return e;
  const msg = (e as Error)?.message ?? String(e);
  if (/Invalid rank|Got invalid dimensions|Unexpected input data type|invalid dimensions/i.test(msg)) {
    return new UserError(`backbone ${name}: onnxruntime rejected the inputs: ${msg.split('\n')[0]}`, 'check the input shapes/dtypes against `sop inspect MODEL.onnx`', { cause: e });
  }
  return new InternalError(`backbone ${name}: onnxruntime run failed: ${msg.split('\n')[0]}`, undefined, { cause: e });
}
