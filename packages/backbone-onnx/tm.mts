import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { buildGradientModel, onnx } from './src/grad/index.js';
const name = process.argv[2] ?? 'digits-cnn';
const path = `/work/main/fixtures/onnx/${name}.onnx`;
const m = onnx.ModelProto.decode(readFileSync(path));
const g = buildGradientModel(m, { output: 'logits', wrt: ['x'] });
const shape = name === 'digits-cnn' ? [64, 1, 8, 8] : [32, 1, 16, 16];
const C = name === 'digits-cnn' ? 10 : 4;
const x = new ort.Tensor('float32', Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => Math.random()), shape);
const cot = new ort.Tensor('float32', Float32Array.from({ length: shape[0] * C }, () => Math.random()), [shape[0], C]);
const opts = { intraOpNumThreads: 1, logSeverityLevel: 3 as const };
const f = await ort.InferenceSession.create(readFileSync(path), opts);
const s = await ort.InferenceSession.create(onnx.ModelProto.encode(g).finish(), opts);
const tf: number[] = [], tg: number[] = [];
for (let i = 0; i < 200; i++) {
  let t0 = performance.now(); await f.run({ x }); tf.push(performance.now() - t0);
  t0 = performance.now(); await s.run({ x, logits_grad: cot }); tg.push(performance.now() - t0);
}
tf.sort((a, b) => a - b); tg.sort((a, b) => a - b);
console.log(name, 'fwd min/p50', tf[0].toFixed(3), tf[100].toFixed(3), 'grad min/p50', tg[0].toFixed(3), tg[100].toFixed(3), 'ratio(min)', (tg[0] / tf[0]).toFixed(2));
