/**
 * The ONNX Runtime that transformers.js itself runs on (its own `onnxruntime-node` dependency), so that the hf
 * backbone and transformers.js agree on the runtime version and execution providers.
 */
import { createRequire } from 'node:module';
import { UserError } from '@sop/core';

export interface OrtTensor {
  readonly type: string;
  readonly data: unknown;
  readonly dims: readonly number[];
  dispose?(): void;
}

export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>, fetches?: readonly string[]): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface OrtModule {
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: readonly number[]) => OrtTensor;
  InferenceSession: { create(model: string | Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
}

let cached: OrtModule | undefined;

export function loadOrt(): OrtModule {
  if (cached) return cached;
  const here = createRequire(import.meta.url);
  const tjs = here.resolve('@huggingface/transformers');
  cached = createRequire(tjs)('onnxruntime-node') as OrtModule;
  return cached;
}

export type HfDevice = 'cpu' | 'cuda';

/** Create a session on `device`; a CUDA failure is a UserError that says what to install and how to fall back. */
export async function createOrtSession(model: string | Uint8Array, device: HfDevice, what: string): Promise<OrtSession> {
  const ort = loadOrt();
  const options: Record<string, unknown> = {
    executionProviders: device === 'cuda' ? ['cuda'] : ['cpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  };
  try {
    return await ort.InferenceSession.create(model, options);
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    if (device === 'cuda') {
      throw new UserError(
        `backbone.device: cuda: could not start ONNX Runtime's CUDA execution provider for ${what}: ${msg}`,
        'install the CUDA build of onnxruntime-node (reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12; needs CUDA 12 and cuDNN 9 on the library path), or set backbone.device: cpu',
        { cause: e },
      );
    }
    throw new UserError(`could not load ONNX model ${what}: ${msg}`, 'check that the file is a valid ONNX export (re-export it, or pick another dtype)', { cause: e });
  }
}
