/** Test support for the gradient tests (not exported from the package): single-op ONNX graphs, forward runs, finite differences. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { onnx } from './proto.js';
import type { IModelProto, INodeProto, ITensorProto, IValueInfoProto, ModelProto, AttrValue } from './proto.js';
import { makeAttrs } from './proto.js';
import { buildGradientModel, gradientSignature } from './build-gradient.js';

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

/** One node built from an op type, inputs, outputs and attributes. */
export function opNode(opType: string, input: string[], output: string[], attrs: Record<string, AttrValue | undefined> = {}): INodeProto {
  return { opType, input, output, attribute: makeAttrs(attrs) };
}

/** A small graph whose output `y` is differentiated with respect to its float inputs. */
export interface OpCase {
  name: string;
  nodes: INodeProto[];
  /** Float inputs (all differentiated unless `wrt` says otherwise) with the shapes they are fed with. */
  inputs: Record<string, number[]>;
  /** Declared input shapes where they differ from the fed ones (symbolic dims). */
  declared?: Record<string, (number | string)[]>;
  initializers?: ITensorProto[];
  wrt?: string[];
  opset?: number;
  /** Transform the random input values (e.g. keep them positive or away from zero). */
  values?: (name: string, v: Float32Array) => Float32Array;
  eps?: number;
  tol?: number;
}

/**
 * Build the gradient graph of `c`, check that it reproduces the forward output exactly and that each gradient has the
 * input's shape and matches central finite differences of the forward graph (relative error below `c.tol`, 2e-3).
 */
export async function checkOpCase(c: OpCase): Promise<void> {
  const inputs: InputSpec[] = Object.entries(c.inputs).map(([name, shape]) => ({ name, shape: c.declared?.[name] ?? shape }));
  const model = makeModel({ nodes: c.nodes, inputs, outputs: ['y'], initializers: c.initializers, opset: c.opset ?? 17 });
  const wrt = c.wrt ?? Object.keys(c.inputs);
  const grad = buildGradientModel(model, { output: 'y', wrt });
  const sig = gradientSignature(grad)!;
  const fwd = await session(model);
  const gs = await session(grad);
  const feeds: Feeds = {};
  Object.entries(c.inputs).forEach(([name, shape], k) => {
    const v = rand(shape.reduce((a, b) => a * b, 1), 17 + 31 * k);
    feeds[name] = { data: c.values ? c.values(name, v) : v, shape };
  });
  const out = (await fwd.run(toOrt(feeds))).y;
  const cot = rand([...out.dims].reduce((a, b) => a * b, 1), 99);
  const res = await gs.run(toOrt({ ...feeds, [sig.cotangent]: { data: cot, shape: [...out.dims] } }));
  expect(relErr(res.y.data as Float32Array, out.data as Float32Array)).toBe(0);
  for (const w of wrt) {
    const g = res[sig.grads[w]];
    expect([...g.dims], `shape of d/d${w}`).toEqual(c.inputs[w]);
    const fd = await finiteDiff(fwd, feeds, 'y', cot, w, c.eps ?? 1e-2);
    expect(relErr(g.data as Float32Array, fd), `d/d${w}`).toBeLessThan(c.tol ?? 2e-3);
  }
}
