import { describe, expect, it } from 'vitest';
import { MlpBackbone, ScoresActivation, ScoresActivationModel, mlpBackboneFactory } from '../src/models/index.js';
import { Tensor, mse, sum, mul } from '../src/autograd/index.js';
import { Rng } from '../src/rng.js';

function randn(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

describe('ScoresActivation', () => {
  it('starts uniform (w = 1/d) and as the identity with scaleByD', () => {
    const a = new ScoresActivation(4);
    expect(Array.from(a.weights())).toEqual([0.25, 0.25, 0.25, 0.25]);
    const b = new ScoresActivation(4, { scaleByD: true });
    const y = b.apply(Tensor.from([1, 2, 3, 4], [1, 4]));
    expect(Array.from(y.data)).toEqual([1, 2, 3, 4]);
  });

  for (const [T, byD] of [[1, false], [0.5, false], [2, true]] as const) {
    it(`softmax backward: ∂L/∂s = (w ⊙ (g − ⟨g, w⟩)) / T ${byD ? '× d' : ''} with g_i = Σ_k x_ki ∂L/∂y_ki (T=${T})`, () => {
      const rng = new Rng(5);
      const d = 6;
      const B = 5;
      const layer = new ScoresActivation(d, { temperature: T, scaleByD: byD });
      layer.s.data.set(randn(d, rng));
      const x = new Tensor(randn(B * d, rng), [B, d]);
      const gy = randn(B * d, rng); // L = Σ y ⊙ gy, so ∂L/∂y = gy
      const L = sum(mul(layer.apply(x), new Tensor(gy, [B, d])));
      L.backward();
      // closed form
      const z = Array.from(layer.s.data, (v) => v / T);
      const mx = Math.max(...z);
      const e = z.map((v) => Math.exp(v - mx));
      const Z = e.reduce((a, b) => a + b, 0);
      const w = e.map((v) => v / Z);
      const g = Array.from({ length: d }, (_, i) => {
        let s = 0;
        for (let k = 0; k < B; k++) s += x.data[k * d + i] * gy[k * d + i];
        return s;
      });
      const gw = g.reduce((a, gi, i) => a + gi * w[i], 0);
      const factor = (byD ? d : 1) / T;
      for (let i = 0; i < d; i++) expect(layer.s.grad![i]).toBeCloseTo(factor * w[i] * (g[i] - gw), 5);
    });
  }

  it('ranking = argsort(w) descending with feature names', () => {
    const layer = new ScoresActivation(3);
    layer.s.data.set([0.1, 2, -1]);
    expect(layer.ranking(['a', 'b', 'c']).map((r) => r.feature)).toEqual(['b', 'a', 'c']);
  });

  it('trains jointly with the MLP (gradients reach s and the weights)', () => {
    const mlp = new MlpBackbone({ inputDim: 4, outputDim: 2, hidden: [8], seed: 1 });
    const model = new ScoresActivationModel(new ScoresActivation(4), mlp);
    const x = new Tensor(randn(12, new Rng(2)), [3, 4]);
    const loss = mse(model.forwardTensor(x), Tensor.zeros([3, 2]));
    loss.backward();
    expect(Math.max(...Array.from(model.layer.s.grad!, Math.abs))).toBeGreaterThan(0);
    expect(Math.max(...Array.from(mlp.weights[0].grad!, Math.abs))).toBeGreaterThan(0);
  });
});

describe('MLP backbone', () => {
  it('forward = Linear→ReLU→Linear with PyTorch layout; hidden and classifierWeight exposed', async () => {
    const mlp = new MlpBackbone({ inputDim: 3, outputDim: 2, hidden: [4], seed: 0 });
    const x = Float32Array.from([0.5, -1, 2, 1, 0, -0.5]);
    const out = await mlp.forward({ x: { data: x, shape: [2, 3] } }, { outputs: ['hidden'] });
    const [W1, W2] = mlp.weights;
    const [b1, b2] = mlp.biases;
    b1.data.fill(0);
    for (let b = 0; b < 2; b++) {
      const h = Array.from({ length: 4 }, (_, j) => Math.max(0, x[b * 3] * W1.data[j * 3] + x[b * 3 + 1] * W1.data[j * 3 + 1] + x[b * 3 + 2] * W1.data[j * 3 + 2] + b1.data[j]));
      for (let j = 0; j < 4; j++) expect(out.hidden!.data[b * 4 + j]).toBeCloseTo(h[j], 5);
      for (let c = 0; c < 2; c++) {
        let z = b2.data[c];
        for (let j = 0; j < 4; j++) z += W2.data[c * 4 + j] * h[j];
        expect(out.output.data[b * 2 + c]).toBeCloseTo(z, 5);
      }
    }
    expect(mlp.info.classifierWeight!.shape).toEqual([2, 4]);
    expect(mlp.info.hiddenDim).toBe(4);
  });

  it('flattens image rows and rejects a wrong row size with a UserError', async () => {
    const mlp = (await mlpBackboneFactory.create({ use: 'mlp', baseDir: '.', hidden: [3] }, { inputShape: [1, 2, 2], numOutputs: 2, seed: 0 })) as MlpBackbone;
    const out = await mlp.forward({ x: { data: new Float32Array(8), shape: [2, 1, 2, 2] } });
    expect(out.output.shape).toEqual([2, 2]);
    await expect(mlp.forward({ x: { data: new Float32Array(6), shape: [2, 3] } })).rejects.toThrow(/4/);
    await expect(mlpBackboneFactory.create({ use: 'mlp', baseDir: '.', activation: 'swish' }, { inputShape: [2], numOutputs: 2, seed: 0 })).rejects.toThrow(/activation/);
  });
});
