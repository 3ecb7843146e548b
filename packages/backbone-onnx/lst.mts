import { readFileSync } from 'node:fs';
import { buildGradientModel, onnx } from './src/grad/index.js';
const m = onnx.ModelProto.decode(readFileSync(process.argv[2]));
const g = buildGradientModel(m, { output: process.argv[3] ?? 'logits', wrt: ['x'] });
for (const n of g.graph!.node!.slice(m.graph!.node!.length)) console.log(n.opType, (n.input ?? []).join(','), '->', (n.output ?? []).join(','));
