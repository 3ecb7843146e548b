/**
 * Same-process A/B of saved gradient models (not part of `pnpm bench`: the leading _ keeps `sop bench` from importing it): each gradient model's `session.run` divided by
 * the plain forward's run just before it, the models' order shuffled every round, medians of the ratios. Differences
 * of a few percent between two gradient graphs only show this way on a shared host; separate bench runs drift more
 * than that. Save a gradient model with `createVjp(...).gradientModelPath()`.
 *
 *   npx tsx packages/backbone-onnx/bench/_ab-models.ts fixtures/onnx/digits-cnn.onnx 64,1,8,8 a.grad.onnx b.grad.onnx
 *
 * The forward model's first input is fed a seeded uniform [−1, 1) tensor of the given shape, and the gradient models'
 * other input (the cotangent) a seeded tensor shaped like the forward's first output. Environment: N (rounds,
 * default 300).
 */
import * as ort from 'onnxruntime-node';

const [fwdPath, shapeCsv, ...paths] = process.argv.slice(2);
if (!fwdPath || !shapeCsv || paths.length === 0) {
  console.error('usage: npx tsx packages/backbone-onnx/bench/_ab-models.ts forward.onnx N,C,H,W grad-a.onnx [grad-b.onnx ...]');
  process.exit(1);
}
const shape = shapeCsv.split(',').map(Number);
let seed = 1;
const next = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
const so: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 };
const fwd = await ort.InferenceSession.create(fwdPath, so);
const inputName = fwd.inputNames[0];
const x = new ort.Tensor('float32', Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, next), shape);
const out = (await fwd.run({ [inputName]: x }))[fwd.outputNames[0]];
const cot = new ort.Tensor('float32', Float32Array.from({ length: out.size }, next), [...out.dims]);
const sessions = await Promise.all(paths.map((p) => ort.InferenceSession.create(p, so)));
const feeds = sessions.map((s) => ({ [inputName]: x, [s.inputNames.find((k) => k !== inputName)!]: cot }));
const time = async (f: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
};
const rounds = Number(process.env.N ?? 300);
const ratios: number[][] = sessions.map(() => []);
for (let i = 0; i < rounds + 20; i++) {
  const order = sessions.map((_, k) => k);
  for (let j = order.length - 1; j > 0; j--) {
    const q = (i * 7 + j * 13) % (j + 1);
    [order[j], order[q]] = [order[q], order[j]];
  }
  for (const k of order) {
    const tf = await time(() => fwd.run({ [inputName]: x }));
    const tg = await time(() => sessions[k].run(feeds[k]));
    if (i >= 20) ratios[k].push(tg / tf);
  }
}
const median = (v: number[]): number => [...v].sort((p, q) => p - q)[v.length >> 1];
console.log(JSON.stringify(Object.fromEntries(paths.map((p, k) => [p, +median(ratios[k]).toFixed(3)])), null, 2));
