import { readFileSync } from 'node:fs';
import { onnx } from './src/grad/proto.js';
import { GraphInfo, topoSort } from './src/grad/graph-info.js';
const m = onnx.ModelProto.decode(readFileSync('/work/main/fixtures/onnx/shapes-vit.onnx'));
const nodes = topoSort(m.graph!);
const info = new GraphInfo(m.graph!, nodes);
for (const n of nodes) {
  if (n.opType === 'Constant') continue;
  console.log(n.opType, n.name, (n.input??[]).map(i => `${i}:${JSON.stringify(info.shape(i))}`).join(' '), '->', (n.output??[]).map(i => `${i}:${JSON.stringify(info.shape(i))}`).join(' '));
}
