/**
 * Vector-Jacobian products of an ONNX model file, run in onnxruntime-node: builds (once per wrt set) the gradient
 * model with buildGradientModel, caches it on disk (next to the model under `.sop-cache/`, or in the OS temp dir when
 * that folder is not writable; never touching the user's file), and keeps one InferenceSession per wrt set.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { type FloatTensor, type TensorData, UserError, writeFileAtomic } from '@sop/core';
import * as ort from 'onnxruntime-node';
import { GRAD_BUILDER_VERSION, type GradientSignature, buildGradientModel, gradientSignature } from './build-gradient.js';
import { GraphInfo, topoSort } from './graph-info.js';
import { type ModelProto, floatValues, onnx, tensorDims, valueInfoShape } from './proto.js';

export interface VjpOptions {
  /** The model output to differentiate. */
  output: string;
  /** Default inputs/initializers to differentiate with respect to. */
  wrt: string[];
  sessionOptions?: ort.InferenceSession.SessionOptions;
  /** Folder for generated gradient models (default: `<model dir>/.sop-cache`, falling back to the OS temp dir). */
  cacheDir?: string;
  /**
   * Whether wrt weights become feedable inputs (default true). false keeps them constant (faster; feeding them is then
   * an error): see GradientModelOptions.weightsAsInputs.
   */
  weightsAsInputs?: boolean;
}

export interface VjpOutput {
  /** Every float output of the forward model, flat. */
  outputs: Record<string, Float32Array>;
  /** Gradient per wrt name, shaped like that input/initializer. */
  grads: Record<string, FloatTensor>;
}

export interface OnnxVjp {
  /**
   * Forward + vector-Jacobian product. `feeds` are the model inputs (and optionally values for wrt initializers, to
   * use instead of the stored weights); `cotangent` is shaped like the output (a flat array is reshaped using the
   * output's declared shape, its one unknown dim inferred from the length).
   */
  vjp(feeds: Record<string, TensorData>, cotangent: Float32Array | FloatTensor, wrt?: string[]): Promise<VjpOutput>;
  /** Path of the gradient model used for a wrt set (built on first use). */
  gradientModelPath(wrt?: string[]): Promise<string>;
  dispose(): Promise<void>;
}

interface Prepared {
  session: ort.InferenceSession;
  signature: GradientSignature;
  path: string;
  /** Names of the gradient outputs (the other float outputs are the forward model's). */
  gradNames: Set<string>;
  inputNames: Set<string>;
}

function hash(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function createVjp(modelPath: string, options: VjpOptions): Promise<OnnxVjp> {
  if (!existsSync(modelPath)) {
    throw new UserError(`ONNX model not found: ${modelPath}`, 'check the model path');
  }
  const bytes = readFileSync(modelPath);
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new UserError(`cannot read ONNX model ${modelPath}: ${(err as Error).message}`, 'check that the file is a valid .onnx model', {
      cause: err,
    });
  }
  const modelHash = hash(bytes);
  // Static shape of the output (declared or inferred, possibly symbolic) and the declared input shapes, to shape a
  // flat cotangent: symbols are bound from the fed inputs' actual dims.
  const graph = model.graph ?? {};
  const outputShape = new GraphInfo(graph, topoSort(graph)).shape(options.output);
  const inputShapes = new Map((graph.input ?? []).map((v) => [v.name ?? '', valueInfoShape(v).shape]));
  const sessions = new Map<string, Promise<Prepared>>();
  const initializers = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const storedParams = new Map<string, ort.Tensor>();
  const stored = (name: string): ort.Tensor => {
    let t = storedParams.get(name);
    if (!t) {
      const proto = initializers.get(name);
      const data = proto ? floatValues(proto) : undefined;
      if (!proto || !data) {
        throw new UserError(`cannot read the stored value of weight "${name}" (not a float32 initializer)`, `feed "${name}" explicitly`);
      }
      t = new ort.Tensor('float32', data, tensorDims(proto));
      storedParams.set(name, t);
    }
    return t;
  };

  const cacheDirs = (): string[] => {
    if (options.cacheDir) return [options.cacheDir];
    return [join(dirname(modelPath), '.sop-cache'), join(tmpdir(), 'sop-grad-cache')];
  };

  async function prepare(wrt: string[]): Promise<Prepared> {
    const weightsAsInputs = options.weightsAsInputs ?? true;
    const key = hash(JSON.stringify({ v: GRAD_BUILDER_VERSION, model: modelHash, output: options.output, wrt, weightsAsInputs }));
    const file = `${basename(modelPath).replace(/\.onnx$/i, '')}.grad-${key.slice(0, 16)}.onnx`;
    let path: string | undefined;
    for (const dir of cacheDirs()) {
      if (existsSync(join(dir, file))) {
        path = join(dir, file);
        break;
      }
    }
    let gradBytes: Uint8Array | undefined;
    if (!path) {
      const grad = buildGradientModel(model, { output: options.output, wrt, weightsAsInputs });
      gradBytes = onnx.ModelProto.encode(grad).finish();
      for (const dir of cacheDirs()) {
        try {
          writeFileAtomic(join(dir, file), gradBytes);
          path = join(dir, file);
          break;
        } catch {
          // not writable: try the next folder
        }
      }
    }
    const data = gradBytes ?? readFileSync(path!);
    const signature = gradientSignature(onnx.ModelProto.decode(data));
    if (!signature) throw new UserError(`cached gradient model ${path} has no signature`, `delete ${path} and retry`);
    // Errors only by default (onnxruntime warnings about the generated graph are not actionable for users).
    const session = await ort.InferenceSession.create(data, { logSeverityLevel: 3, ...options.sessionOptions });
    return { session, signature, path: path ?? '(in memory)', gradNames: new Set(Object.values(signature.grads)), inputNames: new Set(session.inputNames) };
  }

  let defaultPrepared: Promise<Prepared> | undefined;
  function get(wrt: string[] | undefined): Promise<Prepared> {
    // The default wrt set (every call of a typical caller) skips building the key.
    if (wrt === undefined && defaultPrepared) return defaultPrepared;
    const list = [...new Set(wrt ?? options.wrt)].sort();
    const key = list.join('\u0000');
    let p = sessions.get(key);
    if (!p) {
      p = prepare(list);
      sessions.set(key, p);
      p.catch(() => {
        sessions.delete(key);
        if (defaultPrepared === p) defaultPrepared = undefined;
      });
    }
    if (wrt === undefined) defaultPrepared = p;
    return p;
  }

  function cotangentTensor(cot: Float32Array | FloatTensor, feeds: Record<string, TensorData>): ort.Tensor {
    if (!(cot instanceof Float32Array)) return new ort.Tensor('float32', cot.data, cot.shape);
    const bound = new Map<string, number>();
    for (const [name, t] of Object.entries(feeds)) {
      (inputShapes.get(name) ?? []).forEach((d, i) => {
        if (typeof d === 'string' && t.shape[i] !== undefined) bound.set(d, t.shape[i]);
      });
    }
    const dims = (outputShape ?? []).map((d) => (typeof d === 'number' && d > 0 ? d : typeof d === 'string' ? (bound.get(d) ?? null) : null));
    const known = dims.reduce<number>((a, d) => (d === null ? a : a * d), 1);
    const unknown = dims.filter((d) => d === null).length;
    if (!outputShape || unknown > 1 || (unknown === 1 && cot.length % known !== 0) || (unknown === 0 && cot.length !== known)) {
      throw new UserError(
        `cannot shape a flat cotangent of length ${cot.length} for output "${options.output}"` +
          (outputShape ? ` of shape [${outputShape.map((d) => d ?? '?').join(', ')}]` : ''),
        'pass the cotangent as {data, shape} shaped like the output',
      );
    }
    return new ort.Tensor('float32', cot, dims.map((d) => d ?? cot.length / known));
  }

  return {
    async vjp(feeds, cotangent, wrt) {
      const { session, signature, gradNames, inputNames } = await get(wrt);
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        if (!inputNames.has(name) || name === signature.cotangent) {
          const allowed = session.inputNames.filter((n) => n !== signature.cotangent);
          throw new UserError(`the gradient model has no input "${name}"`, `feed only ${allowed.join(', ')} (a weight must be in wrt to be fed)`);
        }
        ortFeeds[name] = new ort.Tensor(t.data instanceof Float32Array ? 'float32' : 'int64', t.data, t.shape);
      }
      for (const p of signature.params) if (!(p in ortFeeds)) ortFeeds[p] = stored(p);
      ortFeeds[signature.cotangent] = cotangentTensor(cotangent, feeds);
      let res: ort.InferenceSession.OnnxValueMapType;
      try {
        res = await session.run(ortFeeds);
      } catch (err) {
        throw new UserError(`onnxruntime failed to run the gradient model: ${(err as Error).message}`, 'check the input names, shapes and dtypes', {
          cause: err,
        });
      }
      const outputs: Record<string, Float32Array> = {};
      for (const name of session.outputNames) {
        const v = res[name] as ort.Tensor;
        if (!gradNames.has(name) && v.type === 'float32') outputs[name] = v.data as Float32Array;
      }
      const grads: Record<string, FloatTensor> = {};
      for (const [w, name] of Object.entries(signature.grads)) {
        const v = res[name] as ort.Tensor;
        grads[w] = { data: v.data as Float32Array, shape: [...v.dims] };
      }
      return { outputs, grads };
    },
    async gradientModelPath(wrt) {
      return (await get(wrt)).path;
    },
    async dispose() {
      const all = [...sessions.values()];
      sessions.clear();
      defaultPrepared = undefined;
      for (const p of all) {
        try {
          await (await p).session.release();
        } catch {
          // already failed or released
        }
      }
    },
  };
}
