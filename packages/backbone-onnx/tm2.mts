import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { buildGradientModel, onnx } from './src/grad/index.js';
const path = process.argv[2]; const shape = JSON.parse(process.argv[3]); const out = process.argv[4]; const C = Number(process.argv[5]);
const m = onnx.ModelProto.decode(readFileSync(path));
const g = buildGradientModel(m, { output: out, wrt: ['x'] });
const x = new ort.Tensor('float32', Float32Array.from({ length: shape.reduce((a: number, b: number) => a * b) }, () => Math.random()), shape);
const cot = new ort.Tensor('float32', Float32Array.from({ length: shape[0] * C }, () => Math.random()), [shape[0], C]);
const opts = { intraOpNumThreads: 1, logSeverityLevel: 3 as const };
const f = await ort.InferenceSession.create(readFileSync(path), opts);
const s = await ort.InferenceSession.create(onnx.ModelProto.encode(g).finish(), opts);
const tf: number[] = [], tg: number[] = [];
for (let i = 0; i < 300; i++) {
  let t0 = performance.now(); await f.run({ x }); tf.push(performance.now() - t0);
  t0 = performance.now(); await s.run({ x, [out + '_grad']: cot }); tg.push(performance.now() - t0);
}
tf.sort((a, b) => a - b); tg.sort((a, b) => a - b);
console.log(path.split('/').pop(), process.env.SOP_MP_OLD ? 'old' : 'new', 'fwd min', tf[0].toFixed(3), 'grad min', tg[0].toFixed(3), 'ratio(min)', (tg[0] / tf[0]).toFixed(2));
