/**
 * `backbone: {use: hf}` — a local transformers.js model folder (config.json, onnx/model*.onnx, tokenizer.json +
 * tokenizer_config.json or preprocessor_config.json) as a Backbone. Loading never touches the network: remote
 * models are disabled and only the given folder is read.
 *
 * The model's own tokenizer / image processor (transformers.js) turns a split's texts or raw images into inputs in
 * `encode`; the forward runs the same ONNX file through ONNX Runtime (the one transformers.js ships with), with
 * intermediates the export does not output (pooled / per-token states) added as graph outputs.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AutoImageProcessor, AutoTokenizer, env } from '@huggingface/transformers';
import {
  UserError,
  type Backbone,
  type BackboneCapabilities,
  type BackboneContext,
  type BackboneFactory,
  type BackboneInfo,
  type BackboneOutputs,
  type DatasetSplit,
  type FloatTensor,
  type ForwardOptions,
  type Inputs,
  type Masker,
  type TensorData,
  type VjpRequest,
  type VjpResult,
} from '@sop/core';
import { tmpdir } from 'node:os';
import { DTYPE_SUFFIX, parseHfOptions, type HfBackboneOptions, type HfTask } from './options.js';
import { createOrtSession, loadOrt, type HfDevice, type OrtSession, type OrtTensor } from './ort.js';
import { findClassifier, readGraph, tensorNames } from './onnx-lite.js';
import { exposeIntermediates } from './expose.js';
import { encodeTexts, rationaleMasks, type EncodedTexts, type HfTokenizerLike } from './text-encode.js';
import { patchMasks, preprocessImages, type HfImageProcessorLike } from './image-encode.js';
import { removeTokens, tokenMasker, type TokenRemovalOptions } from './removal.js';
import { floatToHalf, halfToFloat } from './half.js';

export interface HfModelDetails {
  dir: string;
  task: HfTask;
  modelType: string;
  /** The ONNX file run (absolute path). */
  file: string;
  dtype: string;
  device: HfDevice;
  labels?: string[];
  /** Text: fixed token length L. */
  maxLength?: number;
  /** Image: model input [C, H, W] and patch size. */
  imageShape?: number[];
  patchSize?: number;
  /** Graph input that receives `x`, and the names read for output / hidden / embeddings. */
  xInput: string;
  outputName: string;
  hiddenName?: string;
  embeddingsName?: string;
}

function readJson(path: string, what: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new UserError(`could not read ${what} ${path}: ${(e as Error).message}`, 'check that the model folder is a complete transformers.js export', { cause: e });
  }
}

function toFloat32(t: OrtTensor): Float32Array {
  const d = t.data;
  if (d instanceof Float32Array) return d;
  if (d instanceof Uint16Array) return halfToFloat(d);
  return Float32Array.from(d as ArrayLike<number>);
}

export class HfBackbone implements Backbone {
  readonly name = 'hf';
  readonly info: BackboneInfo;
  readonly capabilities: BackboneCapabilities;

  private constructor(
    readonly details: HfModelDetails,
    private readonly session: OrtSession,
    private readonly maxBatch: number,
    readonly tokenizer: HfTokenizerLike | undefined,
    readonly imageProcessor: HfImageProcessorLike | undefined,
    readonly removal: TokenRemovalOptions | undefined,
    private readonly opts: HfBackboneOptions,
    info: BackboneInfo,
    private readonly floatInputsHalf: Set<string>,
    private readonly gradients: OnnxDelegateLoader | undefined,
  ) {
    this.info = info;
    // Gradients wrt x exist for pixel inputs; token ids are discrete (vjp wrt parameters still works for text).
    const vjp = gradients !== undefined && details.task === 'image-classification' && details.dtype === 'fp32';
    this.capabilities = { vjp, hidden: details.hiddenName !== undefined, embeddings: details.embeddingsName !== undefined };
  }

  private delegate?: Promise<Backbone>;

  /** Load a local transformers.js model folder. `options` is the config block (path relative to `baseDir`). */
  static async load(options: Record<string, unknown>): Promise<HfBackbone> {
    const o = parseHfOptions(options);
    const dir = o.dir;
    const fixFolder =
      'point backbone.path at a local transformers.js model folder (config.json, onnx/model.onnx, tokenizer.json or preprocessor_config.json); sop never downloads models — fetch the folder yourself (e.g. git clone https://huggingface.co/<model>) first';
    if (!existsSync(dir)) throw new UserError(`backbone.path: model folder not found: ${dir}`, fixFolder);
    if (!statSync(dir).isDirectory()) {
      throw new UserError(`backbone.path: ${dir} is a file, not a transformers.js model folder`, 'point backbone.path at the folder holding config.json and onnx/; for a bare .onnx file use backbone: {use: onnx, path: FILE}');
    }
    if (!existsSync(join(dir, 'config.json'))) throw new UserError(`backbone.path: ${dir} has no config.json`, fixFolder);
    const config = readJson(join(dir, 'config.json'), 'model config');
    const hasTok = existsSync(join(dir, 'tokenizer.json'));
    const hasPre = existsSync(join(dir, 'preprocessor_config.json'));
    const task: HfTask = o.task ?? (hasPre && !hasTok ? 'image-classification' : 'text-classification');

    // Local files only, whatever the process-wide transformers.js settings were.
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    const local = { local_files_only: true };

    let tokenizer: HfTokenizerLike | undefined;
    let processor: HfImageProcessorLike | undefined;
    let preConfig: Record<string, unknown> | undefined;
    if (task === 'text-classification') {
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
        if (!existsSync(join(dir, f))) throw new UserError(`backbone.path: ${dir} has no ${f} (needed for task text-classification)`, fixFolder);
      }
      try {
        tokenizer = (await AutoTokenizer.from_pretrained(dir, local)) as unknown as HfTokenizerLike;
      } catch (e) {
        throw new UserError(`could not load the tokenizer in ${dir}: ${(e as Error).message}`, 'check tokenizer.json / tokenizer_config.json (Hugging Face tokenizers format)', { cause: e });
      }
    } else {
      if (!hasPre) throw new UserError(`backbone.path: ${dir} has no preprocessor_config.json (needed for task image-classification)`, fixFolder);
      preConfig = readJson(join(dir, 'preprocessor_config.json'), 'preprocessor config');
      try {
        processor = (await AutoImageProcessor.from_pretrained(dir, local)) as unknown as HfImageProcessorLike;
      } catch (e) {
        throw new UserError(`could not load the image processor in ${dir}: ${(e as Error).message}`, 'check preprocessor_config.json', { cause: e });
      }
    }

    const tjsConfig = (config['transformers.js_config'] ?? {}) as Record<string, unknown>;
    const dtype = o.dtype ?? (typeof tjsConfig.dtype === 'string' && tjsConfig.dtype in DTYPE_SUFFIX ? tjsConfig.dtype : 'fp32');
    const base = o.file ?? 'model';
    const file = join(dir, 'onnx', `${base}${DTYPE_SUFFIX[dtype]}.onnx`);
    if (!existsSync(file)) {
      const onnxDir = join(dir, 'onnx');
      const have = existsSync(onnxDir) ? readdirSync(onnxDir).filter((f) => f.endsWith('.onnx')) : [];
      const dtypes = Object.entries(DTYPE_SUFFIX)
        .filter(([, s]) => have.includes(`${base}${s}.onnx`))
        .map(([d]) => d);
      throw new UserError(
        `backbone.dtype: ${dtype} needs ${file}, which does not exist`,
        have.length ? `the folder has ${have.join(', ')}; set backbone.dtype to one of: ${dtypes.join(', ') || '(none match; set backbone.file)'}` : `export the model to ONNX into ${onnxDir} (e.g. optimum-cli export onnx)`,
      );
    }
    const device: HfDevice = o.device ?? 'cpu';

    // Graph wiring: logits output, pooled hidden state (classifier input by default), per-token states.
    const bytes = new Uint8Array(readFileSync(file));
    const graph = readGraph(bytes);
    const names = tensorNames(graph);
    const outputName = o.output ?? (graph.outputs.includes('logits') ? 'logits' : graph.outputs[0]);
    if (!graph.outputs.includes(outputName) && !names.has(outputName)) {
      throw new UserError(`backbone.output: no tensor '${outputName}' in ${file}`, `graph outputs are: ${graph.outputs.join(', ')}`);
    }
    const classifier = findClassifier(graph, outputName);
    let hiddenName: string | undefined;
    if (o.hidden !== false) hiddenName = o.hidden ?? classifier?.input;
    const embeddingsName = o.embeddings;
    for (const [key, name] of [['hidden', hiddenName], ['embeddings', embeddingsName]] as const) {
      if (name !== undefined && !names.has(name)) {
        const close = [...names].filter((n) => n.toLowerCase().includes(name.toLowerCase().slice(0, 6))).slice(0, 5);
        throw new UserError(`backbone.${key}: no tensor '${name}' in ${file}`, `name an intermediate tensor of the graph${close.length ? ` (close: ${close.join(', ')})` : ''}, or leave backbone.${key} out`);
      }
    }
    const extra = [outputName, hiddenName, embeddingsName].filter((n): n is string => n !== undefined && !graph.outputs.includes(n));
    const session =
      extra.length === 0 ? await createOrtSession(file, device, file) : await createOrtSession(await exposeIntermediates(bytes, extra), device, file);

    const xInput =
      task === 'text-classification'
        ? session.inputNames.includes('input_ids') ? 'input_ids' : session.inputNames[0]
        : session.inputNames.includes('pixel_values') ? 'pixel_values' : session.inputNames[0];
    const halfInputs = new Set<string>();
    const meta = (session as unknown as { inputMetadata?: Array<{ name: string; type?: string; isTensor?: boolean }> }).inputMetadata;
    for (const m of meta ?? []) if (m.type === 'float16') halfInputs.add(m.name);

    const labels = config.id2label && typeof config.id2label === 'object'
      ? Object.entries(config.id2label as Record<string, string>).sort((a, b) => Number(a[0]) - Number(b[0])).map(([, v]) => v)
      : undefined;

    const details: HfModelDetails = { dir, task, modelType: String(config.model_type ?? ''), file, dtype, device, labels, xInput, outputName, hiddenName, embeddingsName };
    let removal: TokenRemovalOptions | undefined;
    let probe: Inputs;
    if (tokenizer) {
      const posMax = typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings : Infinity;
      const tokMax = Number.isFinite(tokenizer.model_max_length) ? tokenizer.model_max_length : Infinity;
      details.maxLength = o.maxLength ?? Math.min(posMax, tokMax, 512);
      if (o.maxLength !== undefined && o.maxLength > posMax) {
        throw new UserError(`backbone.maxLength ${o.maxLength} exceeds the model's max_position_embeddings ${posMax}`, `set backbone.maxLength ≤ ${posMax}`);
      }
      removal = {
        removal: o.removal ?? 'pad+attention',
        padTokenId: tokenizer.pad_token_id ?? 0,
        maskTokenId: tokenizer.mask_token_id ?? undefined,
        specialIds: tokenizer.all_special_ids.filter((id) => id !== (tokenizer!.pad_token_id ?? 0) && id !== tokenizer!.mask_token_id),
        keepSegmentB: o.keepSegmentB ?? true,
      };
      const enc = encodeTexts(tokenizer, [''], undefined, Math.min(details.maxLength, 8));
      probe = { x: enc.input_ids, attention_mask: enc.attention_mask, token_type_ids: enc.token_type_ids };
    } else {
      const size = (preConfig?.size ?? {}) as Record<string, number>;
      const imageSize = typeof config.image_size === 'number' ? config.image_size : undefined;
      const h = size.height ?? size.shortest_edge ?? imageSize ?? 224;
      const w = size.width ?? size.shortest_edge ?? imageSize ?? 224;
      const c = typeof config.num_channels === 'number' ? config.num_channels : 3;
      details.imageShape = [c, h, w];
      if (typeof config.patch_size === 'number') details.patchSize = config.patch_size;
      probe = { x: { data: new Float32Array(c * h * w), shape: [1, c, h, w] } };
    }

    const info: BackboneInfo = { outputDim: 0 };
    const self = new HfBackbone(details, session, o.maxBatch ?? 32, tokenizer, processor, removal, o, info, halfInputs, await onnxDelegateLoader());
    const out = await self.forward(probe, { outputs: ['hidden', 'embeddings'].filter((k) => (k === 'hidden' ? hiddenName : embeddingsName) !== undefined) });
    info.outputDim = out.output.shape[1];
    if (out.hidden) info.hiddenDim = out.hidden.shape[1];
    if (out.embeddings) info.embeddingDim = out.embeddings.shape[2];
    if (details.imageShape) info.inputShape = details.imageShape;
    else if (details.maxLength) info.inputShape = [details.maxLength];
    if (classifier && hiddenName === classifier.input && classifier.shape[0] === info.outputDim) {
      info.classifierWeight = { data: classifier.weight, shape: classifier.shape };
    }
    if (labels && labels.length !== info.outputDim) {
      throw new UserError(`config.json id2label has ${labels.length} labels but the model outputs ${info.outputDim}`, 'fix id2label in config.json');
    }
    return self;
  }

  /** The `x` graph input's rows: text [L] int64 ids; image [C, H, W] pixel_values. */
  async forward(inputs: Inputs, options: ForwardOptions = {}): Promise<BackboneOutputs> {
    const want = new Set(options.outputs ?? []);
    for (const w of want) {
      if (w === 'hidden' && !this.details.hiddenName) throw new UserError('this hf backbone exposes no hidden state', 'set backbone.hidden to an ONNX tensor name (e.g. the pooled [CLS] state)');
      if (w === 'embeddings' && !this.details.embeddingsName) throw new UserError('this hf backbone exposes no per-feature embeddings', 'set backbone.embeddings to an ONNX tensor name of shape [B, L, k] (e.g. the last hidden state)');
      if (w !== 'hidden' && w !== 'embeddings') throw new UserError(`unknown backbone output '${w}'`, 'ask for hidden or embeddings');
    }
    const n = inputs.x.shape[0];
    const fetch = [this.details.outputName];
    if (want.has('hidden')) fetch.push(this.details.hiddenName!);
    if (want.has('embeddings')) fetch.push(this.details.embeddingsName!);
    const parts: Record<string, { data: Float32Array[]; dims: number[] }> = {};
    for (let s = 0; s < n; s += this.maxBatch) {
      const e = Math.min(n, s + this.maxBatch);
      const res = await this.session.run(this.feeds(inputs, s, e), [...new Set(fetch)]);
      for (const name of new Set(fetch)) {
        const t = res[name];
        (parts[name] ??= { data: [], dims: [...t.dims] }).data.push(toFloat32(t));
      }
      for (const t of Object.values(res)) t.dispose?.();
    }
    const cat = (name: string): FloatTensor => {
      const p = parts[name];
      const data = new Float32Array(p.data.reduce((a, d) => a + d.length, 0));
      let o = 0;
      for (const d of p.data) {
        data.set(d, o);
        o += d.length;
      }
      return { data, shape: [n, ...p.dims.slice(1)] };
    };
    const out: BackboneOutputs = { output: cat(this.details.outputName) };
    if (out.output.shape.length !== 2) out.output = { data: out.output.data, shape: [n, out.output.data.length / Math.max(1, n)] };
    if (want.has('hidden')) {
      const h = cat(this.details.hiddenName!);
      out.hidden = h.shape.length === 2 ? h : firstPosition(h);
    }
    if (want.has('embeddings')) {
      let e = cat(this.details.embeddingsName!);
      if (e.shape.length !== 3) throw new UserError(`backbone.embeddings '${this.details.embeddingsName}' has shape [${e.shape.join(', ')}], expected [B, L, k]`, 'name a per-token state tensor');
      if (this.details.patchSize && this.details.imageShape) {
        const [, h, w] = this.details.imageShape;
        const patches = Math.floor(h / this.details.patchSize) * Math.floor(w / this.details.patchSize);
        if (e.shape[1] > patches) e = dropLeading(e, e.shape[1] - patches);
      }
      out.embeddings = e;
    }
    return out;
  }

  private feeds(inputs: Inputs, s: number, e: number): Record<string, OrtTensor> {
    const ort = loadOrt();
    const feeds: Record<string, OrtTensor> = {};
    const rows = e - s;
    const slice = (t: TensorData): TensorData => {
      const row = t.shape.slice(1).reduce((a, b) => a * b, 1);
      return { data: t.data.subarray(s * row, e * row) as Float32Array | BigInt64Array, shape: [rows, ...t.shape.slice(1)] };
    };
    const x = slice(inputs.x);
    for (const name of this.session.inputNames) {
      let t: TensorData | undefined = name === this.details.xInput ? x : inputs[name] ? slice(inputs[name]) : undefined;
      if (!t && (name === 'token_type_ids' || name === 'attention_mask' || name === 'position_ids') && x.data instanceof BigInt64Array) {
        const L = x.shape[1];
        const d = new BigInt64Array(rows * L);
        if (name === 'attention_mask') d.fill(1n);
        if (name === 'position_ids') for (let i = 0; i < d.length; i++) d[i] = BigInt(i % L);
        t = { data: d, shape: [rows, L] };
      }
      if (!t) throw new UserError(`the model needs input '${name}' but the inputs have ${Object.keys(inputs).join(', ')}`, 'encode the data with the hf backbone (backbone.encode) or give that input');
      if (this.details.task === 'text-classification' && !(t.data instanceof BigInt64Array)) {
        throw new UserError(`text input '${name}' must be int64 token ids, got float32`, 'encode the texts with the hf backbone (it tokenises texts into int64 input_ids)');
      }
      if (t.data instanceof Float32Array && this.floatInputsHalf.has(name)) {
        feeds[name] = new ort.Tensor('float16', floatToHalf(t.data) as unknown as Float32Array, t.shape);
      } else {
        feeds[name] = new ort.Tensor(t.data instanceof Float32Array ? 'float32' : 'int64', t.data, t.shape);
      }
    }
    return feeds;
  }

  /**
   * Text: tokenise `texts` (+ `textPairs`) to x = input_ids [N, L], attention_mask, token_type_ids; rationale
   * character spans → token feature masks [N, L]. Image: raw images → pixel_values with the model's preprocessor;
   * object masks [N, H, W] → patch masks.
   */
  async encode(split: DatasetSplit): Promise<{ inputs: Inputs; featureMasks?: Float32Array }> {
    if (this.tokenizer) {
      const enc = this.encodeTexts(split.texts, split.textPairs);
      // special_tokens_mask: 1 on [CLS]/[SEP]-style tokens (not padding). They are not features: the tokens feature space
      // leaves them out of validFeatures and the attention masker never removes them.
      const special = new BigInt64Array(enc.segments.length);
      for (let i = 0; i < special.length; i++) special[i] = enc.segments[i] === 0 && enc.attention_mask.data[i] !== 0n ? 1n : 0n;
      const inputs: Inputs = {
        x: enc.input_ids,
        attention_mask: enc.attention_mask,
        token_type_ids: enc.token_type_ids,
        special_tokens_mask: { data: special, shape: [...enc.input_ids.shape] },
      };
      const featureMasks = split.rationales ? rationaleMasks(enc.spans, split.rationales, this.details.maxLength!) : split.featureMasks;
      return featureMasks ? { inputs, featureMasks } : { inputs };
    }
    const x = split.inputs.x;
    const { ...aux } = split.inputs;
    delete (aux as Partial<Inputs>).x;
    let pixelValues: FloatTensor;
    if (this.opts.preprocess === false) {
      if (!(x.data instanceof Float32Array)) throw new UserError('image inputs must be float32', 'load images as floats');
      pixelValues = x as FloatTensor;
    } else {
      pixelValues = await preprocessImages(this.imageProcessor!, x, this.opts.pixelRange ?? 'auto');
    }
    const inputs: Inputs = { ...aux, x: pixelValues };
    let featureMasks = split.featureMasks;
    if (!featureMasks && split.inputMasks && this.details.patchSize && this.details.imageShape) {
      const [, h, w] = this.details.imageShape;
      featureMasks = patchMasks(split.inputMasks, [h, w], this.details.patchSize);
    }
    return featureMasks ? { inputs, featureMasks } : { inputs };
  }

  /** Tokenise texts to the backbone's fixed length, keeping each token's character span. */
  encodeTexts(texts: string[] | undefined, pairs?: Array<string | null | undefined>): EncodedTexts {
    if (!this.tokenizer) throw new UserError('this hf backbone is an image model; it has no tokenizer', 'use a text-classification model folder');
    if (!texts) throw new UserError('the data split has no texts to tokenise', 'use a text data set (texts, optional textPairs and rationales)');
    return encodeTexts(this.tokenizer, texts, pairs, this.details.maxLength!);
  }

  /** Remove tokens as configured (backbone.removal, keepSegmentB): R rows, row r = example rows[r] masked by masks[r]. */
  removeFeatures(inputs: Inputs, masks: Float32Array, rows: ArrayLike<number>): Inputs {
    if (!this.removal) throw new UserError('token removal applies to text models only', 'use a pixel masker for image models');
    return removeTokens(inputs, masks, rows, this.removal);
  }

  /** The configured token removal as a core Masker. */
  masker(): Masker {
    if (!this.removal) throw new UserError('token removal applies to text models only', 'use a pixel masker for image models');
    return tokenMasker(this.removal);
  }

  /**
   * Vector-Jacobian product, delegated to @sop/backbone-onnx's gradient engine on the same ONNX file (loaded on first
   * use). `wrt`: 'x' (pixel_values; not for token ids) and/or initializer names.
   */
  async vjp(inputs: Inputs, request: VjpRequest): Promise<VjpResult> {
    if (!this.gradients) {
      throw new UserError('gradients are not available: @sop/backbone-onnx (OnnxBackbone with vjp) could not be loaded', 'use an attributor that needs no gradients (e.g. lime, shap, rise)');
    }
    const wrt = request.wrt ?? ['x'];
    if (this.details.task === 'text-classification' && wrt.includes('x')) {
      throw new UserError('vjp wrt x is undefined for token ids (they are discrete)', 'differentiate with respect to an initializer (e.g. the word-embedding matrix), or use a perturbation attributor');
    }
    if (this.details.dtype !== 'fp32') {
      throw new UserError(`gradients need the fp32 model, but backbone.dtype is ${this.details.dtype}`, 'set backbone.dtype: fp32');
    }
    this.delegate ??= this.gradients({
      path: join(this.details.dir, 'onnx', `${this.opts.file ?? 'model'}.onnx`),
      input: this.details.xInput,
      output: this.details.outputName,
      maxBatch: this.maxBatch,
      cacheDir: join(tmpdir(), 'sop-hf-cache'),
      executionProviders: [this.details.device],
    });
    const d = await this.delegate;
    const feeds: Inputs = { x: inputs.x };
    const all = this.feeds(inputs, 0, inputs.x.shape[0]);
    for (const name of this.session.inputNames) {
      if (name === this.details.xInput) continue;
      const f = all[name];
      feeds[name] = { data: f.data as Float32Array | BigInt64Array, shape: [...f.dims] };
    }
    return d.vjp!(feeds, { ...request, wrt });
  }

  async dispose(): Promise<void> {
    await this.session.release();
    if (this.delegate) await (await this.delegate).dispose?.();
  }
}

type OnnxDelegateLoader = (options: Record<string, unknown>) => Promise<Backbone>;

/** @sop/backbone-onnx's OnnxBackbone.load, when that package provides it (it owns the ONNX gradient engine). */
async function onnxDelegateLoader(): Promise<OnnxDelegateLoader | undefined> {
  try {
    const mod = (await import('@sop/backbone-onnx')) as unknown as { OnnxBackbone?: { load?: (o: Record<string, unknown>) => Promise<Backbone> } };
    const load = mod.OnnxBackbone?.load;
    if (typeof load !== 'function') return undefined;
    return (o) => load.call(mod.OnnxBackbone, o);
  } catch {
    return undefined;
  }
}

function firstPosition(t: FloatTensor): FloatTensor {
  const [n, L, ...rest] = t.shape;
  const k = rest.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) out.set(t.data.subarray(i * L * k, i * L * k + k), i * k);
  return { data: out, shape: [n, k] };
}

function dropLeading(t: FloatTensor, drop: number): FloatTensor {
  const [n, L, k] = t.shape;
  const keep = L - drop;
  const out = new Float32Array(n * keep * k);
  for (let i = 0; i < n; i++) out.set(t.data.subarray((i * L + drop) * k, (i + 1) * L * k), i * keep * k);
  return { data: out, shape: [n, keep, k] };
}

/** Factory for `backbone: {use: hf, path, task?, dtype?, device?, hidden?, embeddings?, removal?, keepSegmentB?, maxLength?}`. */
export const hfBackboneFactory: BackboneFactory = {
  name: 'hf',
  async create(options, _context: BackboneContext): Promise<Backbone> {
    return HfBackbone.load(options);
  },
};
