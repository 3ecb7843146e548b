/**
 * Cost of a vector-Jacobian product relative to a forward pass, per fixture: time of createVjp().vjp (forward
 * outputs + gradient w.r.t. the input, or a weight for token inputs) over the time of the plain forward session.run
 * on the same batch, timed interleaved: min and median of each, and the median of per-pair ratios. Target: ≤ 3.
 * Single-threaded sessions for stable numbers on shared cores.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import { createVjp } from '../src/grad/index.js';

const ROOT = resolve(import.meta.dirname, '../../..');

interface BenchCase {
  name: string;
  path: string;
  output: string;
  wrt: string[];
  inputs: Record<string, { shape: number[]; int?: number }>;
}

const CASES: BenchCase[] = [
  { name: 'grad/mlp_op17', path: 'fixtures/grad/mlp_op17.onnx', output: 'output', wrt: ['x'], inputs: { x: { shape: [64, 6] } } },
  { name: 'grad/cnn_op17', path: 'fixtures/grad/cnn_op17.onnx', output: 'output', wrt: ['x'], inputs: { x: { shape: [32, 2, 12, 12] } } },
  {
    name: 'grad/transformer_op17',
    path: 'fixtures/grad/transformer_op17.onnx',
    output: 'output',
    wrt: ['x'],
    inputs: { x: { shape: [32, 8, 8] }, ids: { shape: [32, 8], int: 5 } },
  },
  { name: 'onnx/digits-cnn', path: 'fixtures/onnx/digits-cnn.onnx', output: 'logits', wrt: ['x'], inputs: { x: { shape: [64, 1, 8, 8] } } },
  { name: 'onnx/shapes-vit', path: 'fixtures/onnx/shapes-vit.onnx', output: 'logits', wrt: ['x'], inputs: { x: { shape: [32, 1, 16, 16] } } },
  {
    name: 'onnx/digits-cnn (wrt x + all weights)',
    path: 'fixtures/onnx/digits-cnn.onnx',
    output: 'logits',
    wrt: ['x', 'conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias', 'conv3.weight', 'conv3.bias', 'fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'],
    inputs: { x: { shape: [64, 1, 8, 8] } },
  },
  {
    name: 'grad/transformer_op17 (wrt x + 7 weights)',
    path: 'fixtures/grad/transformer_op17.onnx',
    output: 'output',
    wrt: ['x', 'types.weight', 'pos', 'cls', 'qkv.weight', 'ln1.weight', 'ff1.bias', 'head.weight'],
    inputs: { x: { shape: [32, 8, 8] }, ids: { shape: [32, 8], int: 5 } },
  },
  { name: 'onnx/tabular-mlp', path: 'fixtures/onnx/tabular-mlp.onnx', output: 'logits', wrt: ['x'], inputs: { x: { shape: [64, 30] } } },
  {
    name: 'onnx/token-classifier (wrt tok.weight)',
    path: 'fixtures/onnx/token-classifier.onnx',
    output: 'logits',
    wrt: ['tok.weight'],
    inputs: { input_ids: { shape: [32, 12], int: 32 }, attention_mask: { shape: [32, 12], int: 2 }, token_type_ids: { shape: [32, 12], int: 2 } },
  },
];

/**
 * Forward and vjp timed interleaved (pairs of one forward and one vjp, in alternating order), so both see the same
 * load from other processes: min and median of each, and the median of the per-pair ratios (robust on shared cores).
 */
async function timePair(
  fwd: () => Promise<unknown>,
  vjp: () => Promise<unknown>,
  minRuns = 40,
  budgetMs = 1200,
): Promise<{ fwd: { min: number; p50: number }; vjp: { min: number; p50: number }; ratioP50: number }> {
  for (let i = 0; i < 5; i++) {
    await fwd();
    await vjp();
  }
  const tf: number[] = [];
  const tv: number[] = [];
  const ratios: number[] = [];
  const start = performance.now();
  while (tf.length < minRuns || (performance.now() - start < budgetMs && tf.length < 400)) {
    // Alternate which runs first, so neither always inherits the other's cache state.
    const time = async (f: () => Promise<unknown>): Promise<number> => {
      const t0 = performance.now();
      await f();
      return performance.now() - t0;
    };
    const vjpFirst = tf.length % 2 === 1;
    const b0 = vjpFirst ? await time(vjp) : 0;
    const a = await time(fwd);
    const b = vjpFirst ? b0 : await time(vjp);
    tf.push(a);
    tv.push(b);
    ratios.push(b / a);
  }
  const stats = (t: number[]): { min: number; p50: number } => {
    const s = [...t].sort((x, y) => x - y);
    return { min: s[0], p50: s[Math.floor(s.length / 2)] };
  };
  return { fwd: stats(tf), vjp: stats(tv), ratioP50: stats(ratios).p50 };
}

export async function run(only?: string): Promise<Record<string, unknown>> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'sop-grad-bench-'));
  const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 };
  const result: Record<string, unknown> = {};
  try {
    for (const c of CASES) {
      if (only && !c.name.includes(only)) continue;
      const path = join(ROOT, c.path);
      if (!existsSync(path)) continue;
      let seed = 1;
      const next = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
      const feeds: Record<string, { data: Float32Array | BigInt64Array; shape: number[] }> = {};
      for (const [k, spec] of Object.entries(c.inputs)) {
        const n = spec.shape.reduce((a, b) => a * b, 1);
        feeds[k] = spec.int
          ? { data: BigInt64Array.from({ length: n }, () => BigInt(Math.floor(((next() + 1) / 2) * spec.int!))), shape: spec.shape }
          : { data: Float32Array.from({ length: n }, next), shape: spec.shape };
      }
      const fwd = await ort.InferenceSession.create(path, sessionOptions);
      const ortFeeds = Object.fromEntries(
        Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor(v.data instanceof Float32Array ? 'float32' : 'int64', v.data, v.shape)]),
      );
      const out = (await fwd.run(ortFeeds))[c.output];
      const cot = { data: Float32Array.from({ length: out.size }, next), shape: [...out.dims] };
      const t0 = performance.now();
      const vjp = await createVjp(path, { output: c.output, wrt: c.wrt, cacheDir, sessionOptions });
      await vjp.vjp(feeds, cot);
      const buildMs = performance.now() - t0;
      const { fwd: fwdT, vjp: vjpT, ratioP50 } = await timePair(
        () => fwd.run(ortFeeds),
        () => vjp.vjp(feeds, cot),
      );
      result[c.name] = {
        batch: Object.values(c.inputs)[0].shape[0],
        forward_ms_min: +fwdT.min.toFixed(3),
        vjp_ms_min: +vjpT.min.toFixed(3),
        ratio_min: +(vjpT.min / fwdT.min).toFixed(2),
        forward_ms_p50: +fwdT.p50.toFixed(3),
        vjp_ms_p50: +vjpT.p50.toFixed(3),
        ratio_p50: +(vjpT.p50 / fwdT.p50).toFixed(2),
        ratio_pairs_p50: +ratioP50.toFixed(2),
        build_and_load_ms: Math.round(buildMs),
      };
      await vjp.dispose();
      await fwd.release();
    }
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
  // The target (≤ 3) is about the per-fixture rows; the "+ weights" rows are informational.
  const perFixture = Object.entries(result).filter(([k]) => !k.includes('+'));
  if (perFixture.length > 0) {
    const worst = perFixture.reduce((a, b) => ((b[1] as { ratio_pairs_p50: number }).ratio_pairs_p50 > (a[1] as { ratio_pairs_p50: number }).ratio_pairs_p50 ? b : a));
    result.worst_per_fixture = { name: worst[0], ratio_pairs_p50: (worst[1] as { ratio_pairs_p50: number }).ratio_pairs_p50 };
  }
  return result;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // `npx tsx packages/backbone-onnx/bench/grad.ts [name filter]`
  run(process.argv[2]).then((r) => console.log(JSON.stringify(r, null, 2)));
}
