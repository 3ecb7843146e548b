/** Test support for the gradient tests (not exported from the package): single-op ONNX graphs, forward runs, finite differences. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from './proto.js';
import type { IModelProto, INodeProto, ITensorProto, IValueInfoProto, ModelProto } from './proto.js';

export const repoRoot = join(import.meta.dirname, '..', '..', '..', '..');
export const gradFixtures = join(repoRoot, 'fixtures', 'grad');

export function tempCache(): string {
  return mkdtempSync(join(tmpdir(), 'sop-grad-test-'));
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-12);
}

export interface InputSpec {
  name: string;
  shape: (number | string)[];
  type?: 'float32' | 'int64' | 'bool';
}

const elem = (t: InputSpec['type']): number => (t === 'int64' ? 7 : t === 'bool' ? 9 : 1);

function vi(name: string, shape: (number | string)[] | undefined, type: InputSpec['type'] = 'float32'): IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: elem(type),
        shape: shape ? { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : undefined,
      },
    },
  };
}

/** A model from nodes; `outputs` are declared without shapes. */
export function makeModel(opts: {
  nodes: INodeProto[];
  inputs: InputSpec[];
  outputs: string[];
  initializers?: ITensorProto[];
  opset?: number;
}): ModelProto {
  const m: IModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: opts.opset ?? 17 }],
    producerName: 'sop-test',
    graph: {
      name: 'g',
      node: opts.nodes.map((n, i) => ({ name: n.name ?? `n${i}`, domain: '', ...n })),
      input: opts.inputs.map((i) => vi(i.name, i.shape, i.type)),
      output: opts.outputs.map((o) => vi(o, undefined)),
      initializer: opts.initializers ?? [],
    },
  };
  return onnx.ModelProto.create(m as IModelProto);
}

export async function session(model: IModelProto): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
}

export type Feeds = Record<string, { data: Float32Array | BigInt64Array | Uint8Array; shape: number[] }>;

export function toOrt(feeds: Feeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) {
    const type = v.data instanceof Float32Array ? 'float32' : v.data instanceof BigInt64Array ? 'int64' : 'bool';
    out[k] = new ort.Tensor(type, v.data, v.shape);
  }
  return out;
}

/** Deterministic pseudo-random floats in [-1, 1) (tests only). */
export function rand(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/**
 * Central finite differences of <cot, f(x)> w.r.t. the float input `wrt`, run in float32 by onnxruntime: returns
 * the numeric gradient. `eps` is relative to float32 precision (use a few 1e-3 for smooth ops).
 */
export async function finiteDiff(
  sess: ort.InferenceSession,
  feeds: Feeds,
  output: string,
  cot: Float32Array,
  wrt: string,
  eps = 1e-2,
): Promise<Float64Array> {
  const base = feeds[wrt].data as Float32Array;
  const grad = new Float64Array(base.length);
  const dot = async (data: Float32Array): Promise<number> => {
    const res = await sess.run(toOrt({ ...feeds, [wrt]: { data, shape: feeds[wrt].shape } }));
    const y = res[output].data as Float32Array;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * cot[i];
    return s;
  };
  for (let i = 0; i < base.length; i++) {
    const p = base.slice();
    const m = base.slice();
    p[i] += eps;
    m[i] -= eps;
    grad[i] = ((await dot(p)) - (await dot(m))) / (2 * eps);
  }
  return grad;
}
