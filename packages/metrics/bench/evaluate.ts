import type { Backbone, Explanation, ExplainOptions, FaithfulExplainer, FeatureSpace, Inputs, Masker } from '@sop/core';
import { builtinMetric, encodePng, evaluate, groupLeakage } from '../src/index.js';

/**
 * Throughput of the evaluation runner's masking path (insertion/deletion + a masked sparsity sweep) on a linear
 * backbone with ImageNet-like sizes (d = 196 features, C = 10), the leakage probe, and the PNG encoder.
 */
export async function run(): Promise<Record<string, unknown>> {
  const n = 200;
  const d = 196;
  const c = 10;
  const x = Float32Array.from({ length: n * d }, (_, k) => Math.sin(k * 0.37));
  const w = Float32Array.from({ length: d * c }, (_, k) => Math.cos(k * 0.11));
  let rows = 0;
  const backbone: Backbone = {
    name: 'linear',
    info: { outputDim: c },
    capabilities: { vjp: false, hidden: false, embeddings: false },
    async forward(inputs: Inputs) {
      const b = inputs.x.shape[0];
      const xs = inputs.x.data as Float32Array;
      rows += b;
      const out = new Float32Array(b * c);
      for (let i = 0; i < b; i++) for (let j = 0; j < d; j++) for (let k = 0; k < c; k++) out[i * c + k] += xs[i * d + j] * w[j * c + k];
      return { output: { data: out, shape: [b, c] } };
    },
  };
  const space: FeatureSpace = {
    kind: 'columns',
    numFeatures: d,
    grid: [d],
    featureNames: () => [],
    expand: (m, r) => ({ data: Float32Array.from(m), shape: [r.length, d] }),
    aggregate: (a) => a,
    featureValues: (i) => ({ data: new Float32Array(0), shape: [i.x.shape[0], d, 0] }),
  };
  const masker: Masker = {
    name: 'zero',
    apply(inputs, masks, r) {
      const out = new Float32Array(r.length * d);
      const xs = inputs.x.data as Float32Array;
      for (let q = 0; q < r.length; q++) for (let j = 0; j < d; j++) out[q * d + j] = xs[r[q] * d + j] * masks[q * d + j];
      return { x: { data: out, shape: [r.length, d] } };
    },
  };
  const explainer: FaithfulExplainer = {
    name: 'grad-x-input-F',
    faithfulByConstruction: false,
    async explain(inputs: Inputs, o: ExplainOptions): Promise<Explanation> {
      const outputs = (await backbone.forward(inputs)).output.data;
      const attributions = new Float32Array(n * d);
      for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) attributions[i * d + j] = x[i * d + j] * w[j * c];
      return { outputs, numOutputs: c, attributions, numFeatures: d, targets: new Int32Array(n), featureMasks: new Float32Array(n * d), meta: { method: 'g', evaluations: n, keep: o.keep } };
    },
  };
  const labels = Float32Array.from({ length: n }, (_, i) => i % c);
  const t0 = performance.now();
  await evaluate({
    explainers: [explainer],
    backbone,
    space,
    masker,
    inputs: { x: { data: x, shape: [n, d] } },
    labels,
    task: 'classification',
    modality: 'image',
    numOutputs: c,
    metrics: ['error', 'insertion', 'deletion', 'sparsity-curve'].map((m) => builtinMetric(m)!),
    sweepMode: 'mask',
  });
  const evalMs = performance.now() - t0;
  const masks = Float32Array.from({ length: n * 20 * 49 }, (_, k) => ((k * 2654435761) >>> 0) % 5 === 0 ? 1 : 0);
  const t1 = performance.now();
  groupLeakage(masks, 20, 49, labels, c, { seed: 0 });
  const leakMs = performance.now() - t1;
  const img = Uint8Array.from({ length: 224 * 224 * 3 }, (_, k) => (k * 31) & 255);
  const t2 = performance.now();
  for (let r = 0; r < 10; r++) encodePng({ width: 224, height: 224, channels: 3, data: img });
  const pngMs = (performance.now() - t2) / 10;
  return { examples: n, features: d, backboneRows: rows, evaluateMs: Math.round(evalMs), rowsPerSecond: Math.round((rows / evalMs) * 1000), leakageProbeMs: Math.round(leakMs), png224Ms: Number(pngMs.toFixed(2)) };
}
