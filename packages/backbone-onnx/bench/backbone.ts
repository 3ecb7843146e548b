/**
 * OnnxBackbone.forward vs a raw onnxruntime `session.run` on the same batch and the same session: interleaved
 * repetitions (alternating order), median times, overhead ratio = median of per-pair ratios (target ≤ 1.05). The backbone's extra work is input
 * validation, ort.Tensor wrapping and output conversion. Run directly: `npx tsx packages/backbone-onnx/bench/backbone.ts`.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import { OnnxBackbone } from '../src/backbone.js';

const FIXTURES = resolve(import.meta.dirname, '../../../fixtures/onnx');

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function compare(model: string, rowShape: number[], batch: number, reps: number, hidden?: string): Promise<Record<string, number | string>> {
  // one intra-op thread: less scheduler noise on a shared machine; both sides use the same session anyway
  const b = await OnnxBackbone.load({ path: resolve(FIXTURES, model), maxBatch: batch, hidden, threads: 1 });
  const n = batch * rowShape.reduce((a, c) => a * c, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = ((i * 2654435761) % 1000) / 1000; // deterministic, no Math.random
  const shape = [batch, ...rowShape];
  const outputs = hidden ? ['hidden'] : undefined;
  const fetches = [b.outputName, ...(hidden ? [hidden] : [])];
  const raw = async () => {
    const r = await b.session.run({ [b.inputName]: new ort.Tensor('float32', data, shape) }, fetches);
    return r[b.outputName].data as Float32Array;
  };
  const fw = async () => (await b.forward({ x: { data, shape } }, { outputs })).output.data;
  for (let i = 0; i < 3; i++) {
    await raw();
    await fw();
  }
  const tRaw: number[] = [];
  const tFw: number[] = [];
  for (let i = 0; i < reps; i++) {
    const order = i % 2 === 0 ? [raw, fw] : [fw, raw];
    for (const f of order) {
      const t0 = performance.now();
      await f();
      (f === raw ? tRaw : tFw).push(performance.now() - t0);
    }
  }
  await b.dispose();
  const mr = median(tRaw);
  const mf = median(tFw);
  // pairs run back to back, so the median of per-pair ratios is robust to load changes on a shared machine
  const pairRatios = tFw.map((t, i) => t / tRaw[i]);
  return {
    model,
    batch,
    outputs: fetches.join('+'),
    rawMs: +mr.toFixed(3),
    backboneMs: +mf.toFixed(3),
    overheadUs: +((mf - mr) * 1000).toFixed(1),
    overheadRatio: +median(pairRatios).toFixed(4),
    reps,
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const cases = [
    await compare('digits-cnn.onnx', [1, 8, 8], 64, 300, 'hidden'),
    await compare('shapes-vit.onnx', [1, 16, 16], 64, 150, 'hidden'),
    await compare('shapes-vit.onnx', [1, 16, 16], 256, 60),
    await compare('shapes-vit.onnx', [1, 16, 16], 16, 200, 'hidden'),
    await compare('tabular-mlp.onnx', [30], 64, 400),
  ];
  return {
    unit: 'ms per forward (median of interleaved repetitions); overheadRatio = backbone / raw session.run (target <= 1.05)',
    cases,
    // tiny models (tabular-mlp: ~40 µs per call) show the fixed per-call cost (µs) rather than a ratio that matters
    worstOverheadRatio: Math.max(...cases.map((c) => c.overheadRatio as number)),
    worstOverheadRatioExcludingTiny: Math.max(...cases.filter((c) => (c.rawMs as number) > 0.5).map((c) => c.overheadRatio as number)),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then((r) => console.log(JSON.stringify(r, null, 2)));
}
