import { readFileSync, readdirSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { buildGradientModel, onnx } from './src/grad/index.js';
const name = process.argv[2] ?? 'digits-cnn';
const path = name.includes('/') ? name : `/work/main/fixtures/onnx/${name}.onnx`;
const outName = name.includes('/') ? 'output' : 'logits';
const m = onnx.ModelProto.decode(readFileSync(path));
const g = buildGradientModel(m, { output: outName, wrt: ['x'] });
const shape = name.includes('/') ? [32, 2, 12, 12] : name === 'digits-cnn' ? [64, 1, 8, 8] : [32, 1, 16, 16];
const C = name.includes('/') ? 5 : name === 'digits-cnn' ? 10 : 4;
const x = new ort.Tensor('float32', Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => Math.random()), shape);
const cot = new ort.Tensor('float32', Float32Array.from({ length: shape[0] * C }, () => Math.random()), [shape[0], C]);
const fwdOnly = process.argv[3] === 'fwd';
const s = await ort.InferenceSession.create(fwdOnly ? readFileSync(path) : onnx.ModelProto.encode(g).finish(), { intraOpNumThreads: 1, enableProfiling: true, profileFilePrefix: '/tmp/gprof', logSeverityLevel: 3 });
for (let i = 0; i < 100; i++) await s.run(fwdOnly ? { x } : { x, [outName + '_grad']: cot });
s.endProfiling();
await s.release();
const f = readdirSync('/tmp').filter(f => f.startsWith('gprof')).sort().pop()!;
const ev = JSON.parse(readFileSync('/tmp/' + f, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
const agg = new Map<string, number>();
for (const e of ev) if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) { const k = `${e.args?.op_name} ${e.name.replace('_kernel_time', '')}`; agg.set(k, Math.min(agg.get(k) ?? Infinity, e.dur * 30)); }
const byOp = new Map<string, number>();
for (const [k, v] of agg) { const op = k.split(' ')[0]; byOp.set(op, (byOp.get(op) ?? 0) + v); }
console.log([...byOp].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => `${k}: ${(v / 30 / 1000).toFixed(3)} ms`).join('\n'));
console.log('TOTAL', ([...byOp.values()].reduce((a, b) => a + b, 0) / 30 / 1000).toFixed(3));
console.log('---');
console.log([...agg].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => `${k}: ${(v / 30 / 1000).toFixed(3)} ms`).join('\n'));
