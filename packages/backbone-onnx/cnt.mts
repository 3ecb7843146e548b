import { readFileSync } from 'node:fs';
import { buildGradientModel, onnx } from './src/grad/index.js';
const [path, out] = [process.argv[2], process.argv[3] ?? 'logits'];
const m = onnx.ModelProto.decode(readFileSync(path));
const g = buildGradientModel(m, { output: out, wrt: ['x'] });
const c = new Map<string, number>();
for (const n of g.graph!.node!.slice(m.graph!.node!.length)) c.set(n.opType!, (c.get(n.opType!) ?? 0) + 1);
console.log(m.graph!.node!.length, g.graph!.node!.length, JSON.stringify([...c].sort((a, b) => b[1] - a[1])));
