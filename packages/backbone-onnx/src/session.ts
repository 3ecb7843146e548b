/**
 * onnxruntime-node sessions: creation with readable errors (missing file, malformed model, CUDA not installed), and
 * conversion between core's TensorData and ort.Tensor with input validation (name, dtype, shape).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { UserError } from '@sop/core';
import type { TensorData } from '@sop/core';
import { floatToHalf, halfToFloat } from './proto.js';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/** Session settings shared by the backbone, inspect and (via `toOrtSessionOptions`) the gradient engine. */
export interface SessionConfig {
  /** Execution providers in order of preference. Default ['cpu']. 'cuda' needs the CUDA EP binaries (see errors). */
  executionProviders?: string[];
  /** Intra-op threads (default: onnxruntime's choice, all cores). */
  threads?: number;
  graphOptimizationLevel?: GraphOptimizationLevel;
  /** onnxruntime log level 0 (verbose) … 4 (fatal). Default 3 (errors only). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * Whether onnxruntime's pool threads busy-wait for work after a run. false puts them to sleep at once: they then no
   * longer compete with the JavaScript that runs between calls (masking, solving) or with another session's threads,
   * which matters on machines with few cores or other load, at the price of a slower wake-up on the next run.
   * Default: true for the forward session (onnxruntime's default), false for the gradient session (see
   * {@link gradientSessionConfig}); setting it applies to both.
   */
  spinning?: boolean;
}

/**
 * The settings of a backbone's gradient (vjp) session: the backbone's, with `spinning` false unless set. Gradient-based
 * attributors alternate forward and vjp calls, i.e. two sessions with a thread pool each; two pools that busy-wait
 * after every run fight over the cores. On the 2-core development machine, alternating forward + vjp with default
 * threads took 18–29% less time (digits CNN 3.7–4.2 → 2.6–3.4 ms, ViT 7.9–9.6 → 6.2–6.9 ms) with the gradient pool
 * asleep; back-to-back vjp calls alone were 8–13% faster on the ViT and 7–24% slower on the digits CNN.
 */
export function gradientSessionConfig(config: SessionConfig = {}): SessionConfig {
  return { ...config, spinning: config.spinning ?? false };
}

export const GRAPH_OPTIMIZATION_LEVELS: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

export function toOrtSessionOptions(config: SessionConfig = {}): ort.InferenceSession.SessionOptions {
  const eps = config.executionProviders && config.executionProviders.length ? config.executionProviders : ['cpu'];
  const usesGpu = eps.some((e) => e !== 'cpu');
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: eps as ort.InferenceSession.ExecutionProviderConfig[],
    // a failing CUDA EP logs a long native error before we turn it into a UserError; keep that quiet
    logSeverityLevel: config.logSeverityLevel ?? (usesGpu ? 4 : 3),
  };
  if (config.threads !== undefined) {
    opts.intraOpNumThreads = config.threads;
    opts.interOpNumThreads = 1;
  }
  if (config.graphOptimizationLevel) opts.graphOptimizationLevel = config.graphOptimizationLevel;
  if (config.spinning === false) opts.extra = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
  return opts;
}

/** The UserError for an execution provider that onnxruntime-node could not load. */
export function executionProviderError(eps: string[], cause: unknown): UserError {
  const msg = (cause as Error)?.message ?? String(cause);
  if (eps.includes('cuda') || eps.includes('tensorrt')) {
    return new UserError(
      `onnxruntime-node could not start the CUDA execution provider (${msg.split('\n')[0]})`,
      'CUDA needs (1) the CUDA EP binaries of onnxruntime-node (libonnxruntime_providers_cuda.so and ' +
        'libonnxruntime_providers_shared.so), which the onnxruntime-node install script downloads only when asked: ' +
        '`ONNXRUNTIME_NODE_INSTALL=cuda12 pnpm rebuild onnxruntime-node` (npm: `npm install onnxruntime-node --onnxruntime-node-install=cuda12`); ' +
        '(2) CUDA 12 runtime libraries (libcudart.so.12, libcublas.so.12, libcublasLt.so.12, libcufft.so.11, libcurand.so.10) ' +
        'and cuDNN 9 (libcudnn.so.9) on LD_LIBRARY_PATH (e.g. `pip install nvidia-cudnn-cu12 nvidia-cublas-cu12 ' +
        'nvidia-cuda-runtime-cu12 nvidia-cufft-cu12 nvidia-curand-cu12`, or the CUDA toolkit + cuDNN packages), and an NVIDIA driver. ' +
        "Or run on the CPU: set backbone.executionProviders: ['cpu'] (the default).",
      { cause },
    );
  }
  return new UserError(
    `onnxruntime-node could not start execution provider(s) ${eps.join(', ')}: ${msg.split('\n')[0]}`,
    "use backbone.executionProviders: ['cpu'] (the default), or install the provider's native libraries",
    { cause },
  );
}

/**
 * Folder holding onnxruntime-node's native libraries, and whether the CUDA EP library is there (it is downloaded at
 * install time only on request). undefined when the layout is not the expected one.
 */
export function cudaProviderInstalled(): { dir: string; installed: boolean } | undefined {
  try {
    const main = createRequire(import.meta.url).resolve('onnxruntime-node');
    const dir = join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
    if (!existsSync(dir)) return undefined;
    return { dir, installed: existsSync(join(dir, 'libonnxruntime_providers_cuda.so')) };
  } catch {
    return undefined;
  }
}

/**
 * Create an onnxruntime-node session from a file path or model bytes. Errors become UserErrors: missing file,
 * malformed/truncated model, unsupported ops, or an execution provider that cannot be loaded.
 */
export async function createSession(pathOrBytes: string | Uint8Array, config: SessionConfig = {}): Promise<ort.InferenceSession> {
  const where = typeof pathOrBytes === 'string' ? pathOrBytes : `<${pathOrBytes.length} bytes>`;
  if (typeof pathOrBytes === 'string' && !existsSync(pathOrBytes)) {
    throw new UserError(`ONNX model not found: ${pathOrBytes}`, "check backbone.path (relative paths are resolved from the config file's folder)");
  }
  const opts = toOrtSessionOptions(config);
  const requested = (opts.executionProviders ?? []).map((x) => (typeof x === 'string' ? x : x.name));
  if (requested.includes('cuda')) {
    const cuda = cudaProviderInstalled();
    if (cuda && !cuda.installed) {
      throw executionProviderError(requested, new Error(`libonnxruntime_providers_cuda.so is not installed in ${cuda.dir}`));
    }
  }
  try {
    return typeof pathOrBytes === 'string'
      ? await ort.InferenceSession.create(pathOrBytes, opts)
      : await ort.InferenceSession.create(pathOrBytes, opts);
  } catch (e) {
    const msg = (e as Error)?.message ?? String(e);
    const eps = (opts.executionProviders ?? ['cpu']).map((x) => (typeof x === 'string' ? x : x.name));
    if (/protobuf parsing failed|Protobuf parsing|No graph was found|ModelProto does not have a graph|Load model .* failed/i.test(msg)) {
      throw new UserError(
        `ONNX model ${where} is malformed or truncated (onnxruntime: ${msg.split('\n')[0]})`,
        're-export or re-download the model; check that it is not a Git LFS pointer file',
        { cause: e },
      );
    }
    if (eps.some((p) => p !== 'cpu') && /Cuda|CUDA|providers_|shared library|TensorRT|execution provider/i.test(msg)) {
      throw executionProviderError(eps, e);
    }
    throw new UserError(
      `onnxruntime-node (${ort.env.versions?.common ?? '?'}) could not load ONNX model ${where}: ${msg.split('\n')[0]}`,
      'check that the model uses standard ONNX ops at an opset onnxruntime supports (opset 7–21); re-export with a supported opset',
      { cause: e },
    );
  }
}

/** Expected type and shape of a session input/output, from onnxruntime's metadata. */
export interface ValueSpec {
  name: string;
  dtype: string;
  /** numbers for fixed dims, strings for symbolic ones; undefined if unknown. */
  shape?: Array<number | string>;
}

export function sessionInputs(session: ort.InferenceSession): ValueSpec[] {
  return specs(session.inputNames, session.inputMetadata);
}

export function sessionOutputs(session: ort.InferenceSession): ValueSpec[] {
  return specs(session.outputNames, session.outputMetadata);
}

function specs(names: readonly string[], meta: readonly ort.InferenceSession.ValueMetadata[] | undefined): ValueSpec[] {
  return names.map((name, i) => {
    const m = meta?.[i];
    if (m && m.isTensor) {
      const shape = m.shape && m.shape.length ? m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : String(d))) : undefined;
      return { name, dtype: m.type, shape };
    }
    return { name, dtype: 'unknown' };
  });
}

export function formatShape(shape: ReadonlyArray<number | string> | undefined): string {
  return shape ? `[${shape.join(', ')}]` : '[?]';
}

/**
 * Turn one TensorData into an ort.Tensor for input `spec`, checking dtype and shape. Float32 data can feed
 * float32/float64 inputs; int64 data can feed int64/int32 inputs. `label` names the input in errors (e.g. "x").
 */
export function toOrtTensor(t: TensorData, spec: ValueSpec, label: string): ort.Tensor {
  const found = t.data instanceof Float32Array ? 'float32' : t.data instanceof BigInt64Array ? 'int64' : 'unknown';
  const what = label === spec.name ? `input '${spec.name}'` : `input '${label}' (graph input '${spec.name}')`;
  if (spec.shape) {
    const ok = spec.shape.length === t.shape.length && spec.shape.every((d, i) => typeof d !== 'number' || d === t.shape[i]);
    if (!ok) {
      throw new UserError(
        `${what}: expected shape ${formatShape(spec.shape)} but found ${formatShape(t.shape)}`,
        `reshape the data to ${formatShape(spec.shape)} (batch first); check the data set's image size / column count matches the model`,
      );
    }
  }
  const dtypeError = () =>
    new UserError(
      `${what}: expected dtype ${spec.dtype} but found ${found}`,
      spec.dtype.startsWith('int')
        ? 'token ids, masks and labels fed to the model must be int64 (BigInt64Array); use a text data set / tokenizer that produces ids'
        : 'feed float32 data (Float32Array) to this input',
    );
  if (found === 'float32') {
    if (spec.dtype === 'float32' || spec.dtype === 'unknown') return new ort.Tensor('float32', t.data as Float32Array, t.shape);
    if (spec.dtype === 'float64') return new ort.Tensor('float64', Float64Array.from(t.data as Float32Array), t.shape);
    if (spec.dtype === 'float16') {
      const src = t.data as Float32Array;
      const half = new Uint16Array(src.length);
      for (let i = 0; i < src.length; i++) half[i] = floatToHalf(src[i]);
      return new ort.Tensor('float16', half, t.shape);
    }
    throw dtypeError();
  }
  if (found === 'int64') {
    if (spec.dtype === 'int64' || spec.dtype === 'unknown') return new ort.Tensor('int64', t.data as BigInt64Array, t.shape);
    if (spec.dtype === 'int32') {
      const src = t.data as BigInt64Array;
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
      return new ort.Tensor('int32', out, t.shape);
    }
    throw dtypeError();
  }
  throw dtypeError();
}

/** An ort output as float32 (float64/int outputs converted). */
export function fromOrtTensor(t: ort.Tensor): { data: Float32Array; shape: number[] } {
  const shape = t.dims.map(Number);
  const d = t.data;
  if (d instanceof Float32Array) return { data: d, shape };
  if (t.type === 'float16') {
    const bits = d as unknown as ArrayLike<number>; // Uint16Array of half bits (or Float16Array, whose values convert as-is)
    const out = new Float32Array(bits.length);
    const isBits = d instanceof Uint16Array;
    for (let i = 0; i < bits.length; i++) out[i] = isBits ? halfToFloat(bits[i]) : bits[i];
    return { data: out, shape };
  }
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) {
    const out = new Float32Array(d.length);
    for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
    return { data: out, shape };
  }
  if (ArrayBuffer.isView(d) && !(d instanceof DataView)) return { data: Float32Array.from(d as unknown as ArrayLike<number>), shape };
  throw new UserError(`graph output has non-numeric type ${t.type}`, 'choose a numeric tensor as backbone.output / hidden / embeddings');
}

/** Dummy inputs for a run whose only purpose is to learn shapes: batch `batch`, other symbolic dims `dynamicDim`. */
export function dummyFeeds(inputs: ValueSpec[], batch: number, dynamicDim = 8): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of inputs) {
    const shape = (spec.shape ?? [batch]).map((d, i) => (typeof d === 'number' ? d : i === 0 ? batch : dynamicDim));
    const n = shape.reduce((a, b) => a * b, 1);
    const isMask = /mask/i.test(spec.name);
    switch (spec.dtype) {
      case 'int64':
        feeds[spec.name] = new ort.Tensor('int64', new BigInt64Array(n).fill(isMask ? 1n : 0n), shape);
        break;
      case 'int32':
        feeds[spec.name] = new ort.Tensor('int32', new Int32Array(n).fill(isMask ? 1 : 0), shape);
        break;
      case 'float64':
        feeds[spec.name] = new ort.Tensor('float64', new Float64Array(n).fill(isMask ? 1 : 0.5), shape);
        break;
      case 'bool':
        feeds[spec.name] = new ort.Tensor('bool', new Uint8Array(n).fill(1), shape);
        break;
      default:
        feeds[spec.name] = new ort.Tensor('float32', new Float32Array(n).fill(isMask ? 1 : 0.5), shape);
    }
  }
  return feeds;
}
