import { describe, expect, it } from 'vitest';
import { MlpBackbone, SopModel, SopExplainer, sopAttributions, resolveTargets, sopAttributionsMax, sopFlatMasks, type SopResult } from '../src/models/index.js';
import { crossEntropy, noGrad, type Tensor } from '../src/autograd/index.js';
import { Rng } from '../src/rng.js';
import type { FeatureSpace } from '../src/feature-space.js';
import { ColumnsSpace } from '../src/features/columns.js';
import { zeroMasker } from '../src/maskers/zero.js';
import type { Masker } from '../src/masker.js';
import type { Inputs } from '../src/inputs.js';
import type { Backbone, BackboneOutputs, ForwardOptions } from '../src/backbone.js';

// the real columns space and zero masker
const columns = (d: number): FeatureSpace => new ColumnsSpace([d]);
const zero: Masker = zeroMasker;

/** Wraps a backbone and counts calls/rows. */
function counting(b: MlpBackbone): Backbone & { calls: number; rows: number } {
  const w = {
    name: b.name,
    info: b.info,
    capabilities: b.capabilities,
    calls: 0,
    rows: 0,
    async forward(inputs: Inputs, o?: ForwardOptions): Promise<BackboneOutputs> {
      w.calls++;
      w.rows += inputs.x.shape[0];
      return b.forward(inputs, o);
    },
  };
  return w;
}

function randomInputs(B: number, d: number, seed: number): Inputs {
  const rng = new Rng(seed);
  const x = new Float32Array(B * d);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  return { x: { data: x, shape: [B, d] } };
}

function tiny(opts: { d?: number; C?: number; groups?: number; keep?: number; heads?: number; maskBatchSize?: number; selectorKeys?: 'auto' | 'hidden' | 'output' } = {}) {
  const d = opts.d ?? 6;
  const C = opts.C ?? 3;
  const mlp = new MlpBackbone({ inputDim: d, outputDim: C, hidden: [5], seed: 3 });
  const bb = counting(mlp);
  const sop = new SopModel(
    { backbone: bb, space: columns(d), masker: zero, task: 'classification', numOutputs: C },
    randomInputs(2, d, 1),
    { groups: opts.groups ?? 3, keep: opts.keep ?? 0.34, heads: opts.heads ?? 1, embedDim: 4, maskBatchSize: opts.maskBatchSize, selectorKeys: opts.selectorKeys, seed: 7 },
  );
  return { d, C, mlp, bb, sop };
}

describe('SOP model', () => {
  it('output equals the sum of group contributions (within 1e-5) and every §2.4 field is consistent', async () => {
    const { sop, d, C, mlp } = tiny({ d: 10, groups: 5, keep: 0.2 });
    const inputs = randomInputs(7, d, 2);
    const r = await sop.predict(inputs);
    const m = r.numGroups;
    expect(m).toBe(5);
    let maxErr = 0;
    for (let b = 0; b < 7; b++) {
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let j = 0; j < m; j++) s += r.contributions[(b * m + j) * C + c];
        maxErr = Math.max(maxErr, Math.abs(s - r.output[b * C + c]));
      }
    }
    expect(maxErr).toBeLessThan(1e-5);
    for (let b = 0; b < 7; b++) {
      for (let j = 0; j < m; j++) {
        // each group keeps exactly ⌊k·d⌋ = 2 features, c ∈ [-1, 1]
        let kept = 0;
        for (let i = 0; i < d; i++) kept += r.masks[(b * m + j) * d + i];
        expect(kept).toBe(2);
        const c = r.scales[b * m + j];
        expect(Math.abs(c)).toBeLessThanOrEqual(1 + 1e-6);
        // ẑ = c·backbone(x ⊙ M_j)
        const masked = new Float32Array(d);
        for (let i = 0; i < d; i++) masked[i] = (inputs.x.data as Float32Array)[b * d + i] * r.masks[(b * m + j) * d + i];
        const z = (await mlp.forward({ x: { data: masked, shape: [1, d] } })).output.data;
        for (let cc = 0; cc < C; cc++) expect(r.groupOutputs[(b * m + j) * C + cc]).toBeCloseTo(c * z[cc], 5);
      }
      // α: sparsemax over groups per class sums to 1
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let j = 0; j < m; j++) s += r.weights[(b * m + j) * C + c];
        expect(s).toBeCloseTo(1, 5);
      }
    }
    // evenly spaced queries ⌊i·d/m⌋
    expect(Array.from(r.queries)).toEqual([0, 2, 4, 6, 8]);
  });

  it('sends the B·m masked inputs through the backbone in chunks of maskBatchSize, with identical results', async () => {
    const a = tiny({ d: 8, groups: 4, maskBatchSize: 5 });
    const b = tiny({ d: 8, groups: 4, maskBatchSize: 1000 });
    const inputs = randomInputs(6, 8, 4);
    const ra = await a.sop.predict(inputs);
    const rb = await b.sop.predict(inputs);
    expect(a.bb.rows).toBe(24);
    expect(a.bb.calls).toBe(Math.ceil(24 / 5));
    expect(b.bb.calls).toBe(1);
    // equal up to float32 rounding (the matmul kernel blocks differently per batch size)
    for (let i = 0; i < ra.output.length; i++) expect(Math.abs(ra.output[i] - rb.output[i])).toBeLessThan(1e-6);
  });

  it('keep can change at inference; deletion uses the bottom-k features', async () => {
    const { sop, d } = tiny({ d: 10, groups: 5, keep: 0.2 });
    const inputs = randomInputs(3, d, 5);
    const r5 = await sop.predict(inputs, { keep: 0.5 });
    let kept = 0;
    for (let i = 0; i < d; i++) kept += r5.masks[i];
    expect(kept).toBe(5);
    const top = await sop.predict(inputs, { keep: 0.3 });
    const bottom = await sop.predict(inputs, { keep: 0.3, deletion: true });
    // same attention, disjoint selections for every group
    for (let g = 0; g < 15; g++) {
      let overlap = 0;
      for (let i = 0; i < d; i++) overlap += top.masks[g * d + i] * bottom.masks[g * d + i];
      expect(overlap).toBe(0);
    }
  });

  it('gradient of the loss w.r.t. generator and selector parameters matches finite differences', async () => {
    for (const keys of ['hidden', 'output'] as const) {
      const { sop, d, C } = tiny({ d: 6, C: 3, groups: 3, keep: 0.34, selectorKeys: keys });
      const inputs = randomInputs(4, d, 9);
      const labels = Int32Array.from([0, 1, 2, 1]);
      // make the selector non-trivial
      const rng = new Rng(11);
      for (const [name, p] of Object.entries(sop.params)) if (name.startsWith('selector.')) for (let i = 0; i < p.size; i++) p.data[i] += 0.3 * rng.normal();
      const params = sop.parameterTensors();
      for (const p of Object.values(params)) p.grad = null;
      const t = await sop.forward(inputs, { grad: true, head: 0 });
      const loss = crossEntropy(t.output, labels);
      loss.backward();
      const masks0 = Float32Array.from(t.masks);
      const lossAt = async (): Promise<{ l: number; masks: Float32Array }> => {
        const r = await sop.forward(inputs, { head: 0 });
        return { l: noGrad(() => crossEntropy(r.output as Tensor, labels).item()), masks: r.masks };
      };
      const eps = 1e-3;
      let checked = 0;
      for (const [name, p] of Object.entries(params)) {
        const g = p.grad ?? new Float32Array(p.size);
        for (let i = 0; i < p.size; i++) {
          const orig = p.data[i];
          p.data[i] = orig + eps;
          const up = await lossAt();
          p.data[i] = orig - eps;
          const down = await lossAt();
          p.data[i] = orig;
          const sameMasks = up.masks.every((v, k) => v === masks0[k]) && down.masks.every((v, k) => v === masks0[k]);
          if (!sameMasks) continue; // a top-k flip: not differentiable there
          const fd = (up.l - down.l) / (2 * eps);
          expect(Math.abs(fd - g[i]), `${keys} ${name}[${i}]: fd ${fd} vs autograd ${g[i]}`).toBeLessThan(3e-3 + 3e-2 * Math.abs(fd));
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(40);
      // the generator gets gradient (through c) and so does the selector
      expect(Math.max(...Array.from(params['generator.heads.0.query'].grad!).map(Math.abs))).toBeGreaterThan(0);
      expect(Math.max(...Array.from(params['selector.classQueries'].grad!).map(Math.abs))).toBeGreaterThan(0);
      void C;
    }
  });

  it('selector starts from the backbone classifier (hidden keys) so that logits ≈ class scores minus bias', async () => {
    const { sop, mlp } = tiny({ d: 6, C: 3 });
    expect(sop.keys).toBe('hidden');
    expect(Array.from(sop.params['selector.classQueries'].data)).toEqual(Array.from(mlp.weights[1].data));
  });

  it('is a FaithfulExplainer: attributions = Σ_j M_j·contribution_j, masks = union of top groups covering keep·d', async () => {
    const { sop, d, C } = tiny({ d: 10, groups: 5, keep: 0.2 });
    const ex = new SopExplainer(sop);
    const inputs = randomInputs(4, d, 12);
    const e = await ex.explain(inputs, { keep: 0.3, allClasses: true });
    expect(ex.faithfulByConstruction).toBe(true);
    const r = await sop.predict(inputs, { keep: 0.3 });
    const targets = resolveTargets(r, 'predicted');
    expect(Array.from(e.targets)).toEqual(Array.from(targets));
    expect(Array.from(e.attributions)).toEqual(Array.from(sopAttributions(r, targets)));
    for (let b = 0; b < 4; b++) {
      let count = 0;
      for (let i = 0; i < d; i++) count += e.featureMasks[b * d + i];
      expect(count).toBeGreaterThanOrEqual(3);
      // the top-weighted group is inside the mask
      let bestJ = 0;
      for (let j = 1; j < 5; j++) if (e.groups!.weights[b * 5 + j] > e.groups!.weights[b * 5 + bestJ]) bestJ = j;
      for (let i = 0; i < d; i++) if (r.masks[(b * 5 + bestJ) * d + i]) expect(e.featureMasks[b * d + i]).toBe(1);
      // g_c = Σ_j contributions = y
      for (let c = 0; c < C; c++) expect(e.allClassAttributions![b * C + c]).toBeCloseTo(e.outputs[b * C + c], 5);
    }
  });

  it('multiple heads: training uses one head, inference stacks them at evenly spaced candidates', () => {
    const { sop } = tiny({ d: 6, groups: 3, heads: 2 });
    const inf = sop.candidates(undefined);
    expect(Array.from(inf.heads)).toEqual([0, 0, 1]);
    expect(Array.from(inf.queries)).toEqual([0, 4, 2]);
    const tr = sop.candidates(1);
    expect(Array.from(tr.heads)).toEqual([1, 1, 1]);
    expect(Array.from(tr.queries)).toEqual([0, 2, 4]);
  });

  it('options: random queries, blur, backbone embeddings, 2 heads — output stays Σ contributions', async () => {
    const d = 8;
    const C = 2;
    const mlp = new MlpBackbone({ inputDim: d, outputDim: C, hidden: [6], seed: 2 });
    // a backbone exposing per-feature embeddings [B, d, 2] = (x_i, x_i²)
    const bb: Backbone = {
      name: 'emb-mlp',
      info: { ...mlp.info, embeddingDim: 2 },
      capabilities: { vjp: false, hidden: true, embeddings: true },
      async forward(inputs, o) {
        if (o?.outputs?.includes('embeddings')) {
          const x = inputs.x.data as Float32Array;
          const e = new Float32Array(x.length * 2);
          for (let i = 0; i < x.length; i++) {
            e[2 * i] = x[i];
            e[2 * i + 1] = x[i] * x[i];
          }
          return { output: (await mlp.forward(inputs)).output, embeddings: { data: e, shape: [inputs.x.shape[0], d, 2] } };
        }
        return mlp.forward(inputs, o);
      },
    };
    const sop = new SopModel({ backbone: bb, space: columns(d), masker: zero, task: 'classification', numOutputs: C }, randomInputs(2, d, 1), {
      groups: 4,
      heads: 2,
      queries: 'random',
      embeddings: 'backbone',
      blur: { kernel: 3, sigma: 1 },
      keep: 0.25,
      seed: 1,
    });
    const inputs = randomInputs(5, d, 3);
    const t = await sop.forward(inputs, { grad: true, head: 1, rng: new Rng(4) });
    expect(Array.from(t.heads)).toEqual([1, 1, 1, 1]);
    expect(new Set(t.queries).size).toBe(4);
    crossEntropy(t.output, Int32Array.from([0, 1, 0, 1, 1])).backward();
    expect(sop.params['generator.heads.1.query'].grad).not.toBeNull();
    expect(sop.params['generator.heads.0.query'].grad).toBeNull();
    const r = await sop.predict(inputs);
    for (let b = 0; b < 5; b++) {
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let j = 0; j < 4; j++) acc += r.contributions[(b * 4 + j) * C + c];
        expect(Math.abs(acc - r.output[b * C + c])).toBeLessThan(1e-5);
      }
    }
    expect(() => new SopModel({ backbone: mlp, space: columns(d), masker: zero, task: 'classification', numOutputs: C }, inputs, { embeddings: 'backbone' })).toThrow(/embeddings/);
    expect(() => new SopModel({ backbone: mlp, space: columns(d), masker: zero, task: 'classification', numOutputs: C }, inputs, { groups: 9 })).toThrow(/groups/);
  });

  it('attributions_max and flat_masks follow the groups sorted by contribution (hand-built result)', () => {
    // 1 example, 3 groups over 4 features, 1 output
    const r: SopResult = {
      batch: 1, numGroups: 3, numFeatures: 4, numOutputs: 1,
      output: Float32Array.from([0.6]),
      groupOutputs: Float32Array.from([1, 2, -1]),
      masks: Float32Array.from([1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1]),
      weights: Float32Array.from([0.2, 0.5, 0.3]),
      contributions: Float32Array.from([0.2, 1.0, -0.3]),
      scales: Float32Array.from([1, 1, 1]),
      queries: Int32Array.from([0, 1, 3]), heads: Int32Array.from([0, 0, 0]), evaluations: 3,
    };
    const t = Int32Array.from([0]);
    expect(Array.from(sopAttributions(r, t)).map((v) => +v.toFixed(5))).toEqual([0.2, 1.2, 1.0, -0.3]);
    expect(Array.from(sopAttributionsMax(r, t))).toEqual([0, 1, 1, 0]);
    // order by contribution: group 1 (rank 0), group 0 (rank 1), group 2 (rank 2)
    expect(Array.from(sopFlatMasks(r, t))).toEqual([1, 0, 0, 2]);
  });
});
