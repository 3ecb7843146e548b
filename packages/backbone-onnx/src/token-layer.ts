/**
 * The default GradCAM layer of a transformer: the token states [B, L, k] entering the last attention block that
 * still feeds the output. The last block's *output* tokens are no use: a classifier that reads the CLS token (or
 * any pooled token) after the last block has zero gradient w.r.t. the other tokens of that block's output. The
 * input of the last attention mixes every token into the pooled one, so its per-token gradients are informative
 * (pytorch-grad-cam's ViT recipe uses `blocks[-1].norm1` for the same reason).
 */
import { listTensors, valueInfoType } from './proto.js';
import type { Dim, IModelProto } from './proto.js';

/**
 * Find the last Softmax over an [.., L, L] score matrix (attention probabilities) on the path to `output`, then the
 * last 3-D [batch, L, k] tensor it depends on, preferring a LayerNormalization output (the pre-norm of the block).
 * Needs ranks/shapes in graph.valueInfo (see annotateShapes). Returns undefined when the graph has no attention.
 */
export function findLastTokenTensor(model: IModelProto, output: string): string | undefined {
  const g = model.graph!;
  const nodes = g.node ?? [];
  const shapes = new Map<string, Dim[] | undefined>();
  for (const t of listTensors(model)) shapes.set(t.name, t.type?.shape);
  for (const v of [...(g.valueInfo ?? []), ...(g.output ?? [])]) {
    const s = valueInfoType(v)?.shape;
    if (s) shapes.set(v.name ?? '', s);
  }
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => o && producer.set(o, i)));
  const ancestors = (root: string): Set<string> => {
    const seen = new Set<string>([root]);
    const stack = [root];
    while (stack.length) {
      const i = producer.get(stack.pop()!);
      if (i === undefined) continue;
      for (const inp of nodes[i].input ?? []) {
        if (inp && !seen.has(inp)) {
          seen.add(inp);
          stack.push(inp);
        }
      }
    }
    return seen;
  };
  const toOutput = ancestors(output);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (n.opType !== 'Softmax') continue;
    const out = n.output?.[0] ?? '';
    const s = shapes.get(out);
    if (!toOutput.has(out) || !s || s.length < 3) continue;
    const L = s[s.length - 1];
    if (typeof L !== 'number' || s[s.length - 2] !== L) continue;
    const before = ancestors(out);
    let fallback: string | undefined;
    for (let j = i - 1; j >= 0; j--) {
      for (const o of nodes[j].output ?? []) {
        const t = shapes.get(o);
        if (!o || !before.has(o) || !t || t.length !== 3 || t[1] !== L || typeof t[2] !== 'number') continue;
        if (nodes[j].opType === 'LayerNormalization') return o;
        fallback ??= o;
      }
    }
    return fallback;
  }
  return undefined;
}
