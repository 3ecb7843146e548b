/**
 * What SOP reuses between inference calls must not change results: the generator's and selector's parameter-only
 * products (cached at inference while the parameters are bit-identical, recomputed after any change) and the masked
 * rows' buffer (maskers may write into a caller's scratch buffer).
 */
import { describe, expect, it } from 'vitest';
import { SopModel, sopLimits } from '../src/models/sop.js';
import { MlpBackbone } from '../src/models/mlp.js';
import { ColumnsSpace } from '../src/features/columns.js';
import { PatchesSpace } from '../src/features/patches.js';
import { zeroMasker } from '../src/maskers/zero.js';
import { MeanMasker } from '../src/maskers/mean.js';
import { Rng } from '../src/rng.js';
import type { Inputs } from '../src/inputs.js';

function model(seed = 0) {
  const d = 12;
  const rng = new Rng(7);
  const x = new Float32Array(10 * d);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const inputs: Inputs = { x: { data: x, shape: [10, d] } };
  const mlp = new MlpBackbone({ inputDim: d, outputDim: 3, hidden: [8], seed: 1 });
  mlp.setTrainable(false);
  const sop = new SopModel({ backbone: mlp, space: new ColumnsSpace([d]), masker: zeroMasker, task: 'classification', numOutputs: 3 }, inputs, {
    groups: 6,
    keep: 0.25,
    maskBatchSize: 16,
    seed,
  });
  return { sop, inputs };
}

describe('SOP reuse between inference calls', () => {
  it('recomputes cached parameter products after the parameters change', async () => {
    const { sop, inputs } = model();
    const first = await sop.predict(inputs);
    expect(Array.from((await sop.predict(inputs)).output)).toEqual(Array.from(first.output));
    // change every parameter in place (as an optimizer step does), then compare with a fresh model holding the same values
    for (const p of Object.values(sop.parameterTensors())) for (let i = 0; i < p.data.length; i++) p.data[i] += 0.05 * Math.sin(i + 1);
    const changed = await sop.predict(inputs);
    const fresh = model(3).sop;
    fresh.loadParameters(Object.fromEntries(Object.entries(sop.parameterTensors()).map(([k, t]) => [k, { data: t.data.slice(), shape: [...t.shape] }])));
    const ref = await fresh.predict(inputs);
    for (const k of ['output', 'masks', 'weights', 'scales'] as const) expect(Array.from(changed[k])).toEqual(Array.from(ref[k]));
    expect(Array.from(changed.output)).not.toEqual(Array.from(first.output));
    // the graph-recording forward (no cache, no inference kernels) gives the same masks and outputs up to float32
    // rounding (the inference kernels accumulate in another order)
    const g = await sop.forward(inputs, { grad: true });
    expect(Array.from(g.masks)).toEqual(Array.from(changed.masks));
    g.output.data.forEach((v, i) => expect(Math.abs(v - changed.output[i])).toBeLessThan(1e-5 * (1 + Math.abs(v))));
  });

  it('results of one predict are not overwritten by the next (reused group-output buffer), also when calls overlap', async () => {
    const { sop, inputs } = model();
    const first = await sop.predict(inputs);
    const copy = Object.fromEntries(Object.entries(first).filter(([, v]) => v instanceof Float32Array).map(([k, v]) => [k, Array.from(v as Float32Array)]));
    const other: Inputs = { x: { data: (inputs.x.data as Float32Array).map((v) => -2 * v), shape: inputs.x.shape } };
    const [a, b] = await Promise.all([sop.predict(other), sop.predict(inputs)]);
    await sop.predict(other);
    for (const [k, v] of Object.entries(copy)) expect(Array.from((first as unknown as Record<string, Float32Array>)[k])).toEqual(v);
    for (const k of ['output', 'weights', 'contributions', 'groupOutputs'] as const) expect(Array.from(b[k])).toEqual(copy[k]);
    expect(Array.from(a.output)).not.toEqual(copy.output);
  });

  it('zero and mean maskers on patches write into a scratch buffer, same values', () => {
    const space = new PatchesSpace([2, 6, 6], [3, 2]);
    const rng = new Rng(3);
    const x = new Float32Array(2 * 72).map(() => rng.normal());
    const inputs: Inputs = { x: { data: x, shape: [2, 2, 6, 6] } };
    const d = space.numFeatures;
    const masks = new Float32Array(5 * d).map((_, i) => (i % 3 === 0 ? 1 : i % 7 === 0 ? 0.5 : 0));
    const rows = [0, 1, 1, 0, 1];
    for (const masker of [zeroMasker, new MeanMasker(new Float32Array(72).map((_, i) => i / 72))]) {
      const plain = masker.apply(inputs, masks, rows, space);
      const scratch = new Float32Array(7 * 72).fill(NaN);
      const into = masker.apply(inputs, masks, rows, space, scratch);
      expect(into.x.data.buffer).toBe(scratch.buffer);
      expect(into.x.shape).toEqual([5, 2, 6, 6]);
      expect(Array.from(into.x.data as Float32Array)).toEqual(Array.from(plain.x.data as Float32Array));
    }
  });

  it('hidden states are returned in a fresh array that is fully written (zeros where a backbone returns too few values)', async () => {
    const { inputs } = model();
    // 60 rows × 160 hidden values: large enough for an uninitialised result array
    const mlp = new MlpBackbone({ inputDim: 12, outputDim: 3, hidden: [160], seed: 1 });
    mlp.setTrainable(false);
    const sop = new SopModel({ backbone: mlp, space: new ColumnsSpace([12]), masker: zeroMasker, task: 'classification', numOutputs: 3 }, inputs, { groups: 6, keep: 0.25, maskBatchSize: 16 });
    const backbone = mlp;
    const k = sop.keyDim;
    expect(sop.keys).toBe('hidden');
    expect(k * 60).toBeGreaterThan(8192);
    const first = await sop.predict(inputs);
    // a backbone that drops the last row of hidden state of every call: those rows stay zero, as in a zero-filled array
    const short = { name: backbone.name, info: backbone.info, capabilities: backbone.capabilities, forward: async (inp: Inputs, o?: object) => {
      const out = await backbone.forward(inp, o);
      return { ...out, hidden: { data: out.hidden!.data.slice(0, out.hidden!.data.length - k), shape: out.hidden!.shape } };
    } };
    const cut = new SopModel({ ...sop.context, backbone: short }, inputs, sop.options);
    cut.loadParameters(Object.fromEntries(Object.entries(sop.parameterTensors()).map(([n, t]) => [n, { data: t.data.slice(), shape: [...t.shape] }])));
    for (let rep = 0; rep < 2; rep++) {
      const r = await cut.predict(inputs);
      const R = r.batch * r.numGroups;
      const want = first.hidden!.slice();
      for (let row = 15; row < R; row += 16) want.fill(0, row * k, (row + 1) * k); // maskBatchSize 16
      want.fill(0, (R - 1) * k);
      expect(Array.from(r.hidden!)).toEqual(Array.from(want));
      expect(r.hidden!.buffer).not.toBe(first.hidden!.buffer);
    }
  });

  it('with the kernels, masked patch rows reach the backbone in kernel memory (written in place), whole and chunk by chunk, with the predictions of copies', async () => {
    const { KernelBuffer, kernels } = await import('../src/kernels/index.js');
    const space = new PatchesSpace([3, 8, 8], [4, 4]);
    const rng = new Rng(5);
    const inputs: Inputs = { x: { data: new Float32Array(6 * 192).map(() => rng.normal()), shape: [6, 3, 8, 8] } };
    const mlp = new MlpBackbone({ inputDim: 192, outputDim: 3, hidden: [8], seed: 1 });
    mlp.setTrainable(false);
    let inKernelMemory = 0;
    let calls = 0;
    const flat = (inp: Inputs): Inputs => ({ x: { data: inp.x.data, shape: [inp.x.shape[0], 192] } });
    const seen = { ...mlp, name: mlp.name, info: mlp.info, capabilities: mlp.capabilities, forward: (inp: Inputs, o?: object) => {
      calls++;
      if (KernelBuffer.owning(inp.x.data as Float32Array, inp.x.data.length)) inKernelMemory++;
      return mlp.forward(flat(inp), o);
    } };
    const copies = { ...seen, forward: (inp: Inputs, o?: object) => mlp.forward(flat({ x: { data: (inp.x.data as Float32Array).slice(), shape: inp.x.shape } }), o) };
    const opts = { groups: 4, keep: 0.25, maskBatchSize: 5, selectorKeys: 'output' as const, seed: 2 };
    const sop = new SopModel({ backbone: seen, space, masker: zeroMasker, task: 'classification', numOutputs: 3 }, inputs, opts);
    const ref = new SopModel({ backbone: copies, space, masker: zeroMasker, task: 'classification', numOutputs: 3 }, inputs, opts);
    const want = await ref.predict(inputs);
    const prev = sopLimits.maskAllFloats;
    const prevRows = sopLimits.kernelRowsFloats;
    try {
      for (const [limit, inKernel] of [[prev, true], [0, true], [prev, false]] as const) {
        sopLimits.maskAllFloats = limit; // 0: chunk by chunk (5 rows per masker call)
        sopLimits.kernelRowsFloats = inKernel ? prevRows : 100; // 100: the rows do not fit, a JavaScript array
        [inKernelMemory, calls] = [0, 0];
        const got = await sop.predict(inputs);
        expect(calls).toBe(5);
        expect(inKernelMemory).toBe(kernels() && inKernel ? calls : 0);
        for (const k of ['output', 'masks', 'weights', 'groupOutputs'] as const) expect(Array.from(got[k])).toEqual(Array.from(want[k]));
      }
    } finally {
      sopLimits.maskAllFloats = prev;
      sopLimits.kernelRowsFloats = prevRows;
    }
  });

  it('masking all rows up front and chunk by chunk give the same predictions', async () => {
    const { sop, inputs } = model();
    const whole = await sop.predict(inputs);
    const prev = sopLimits.maskAllFloats;
    sopLimits.maskAllFloats = 0; // force the chunked path (maskBatchSize 16 rows per masker call)
    try {
      const chunked = await sop.predict(inputs);
      for (const k of ['output', 'masks', 'weights', 'scales', 'groupOutputs'] as const) expect(Array.from(chunked[k])).toEqual(Array.from(whole[k]));
    } finally {
      sopLimits.maskAllFloats = prev;
    }
  });
});
