/** createVjp: on-disk cache, per-wrt sessions, flat cotangents, fed weights, errors. */
import { copyFileSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '@sop/core';
import { createVjp } from '../src/grad/index.js';
import { floatTensor, floatValues, onnx } from '../src/grad/proto.js';
import { gradFixtures, makeModel, rand, tempCache } from '../src/grad/testing.js';

const single = { intraOpNumThreads: 1 };

describe('createVjp', () => {
  it('caches the gradient model under .sop-cache next to the model and never touches the model file', async () => {
    const dir = tempCache();
    const model = join(dir, 'mlp.onnx');
    copyFileSync(join(gradFixtures, 'mlp_op17.onnx'), model);
    const before = readFileSync(model);
    const v1 = await createVjp(model, { output: 'output', wrt: ['x'], sessionOptions: single });
    const p1 = await v1.gradientModelPath();
    expect(p1.startsWith(join(dir, '.sop-cache'))).toBe(true);
    const mtime = statSync(p1).mtimeMs;
    const v2 = await createVjp(model, { output: 'output', wrt: ['x'], sessionOptions: single });
    expect(await v2.gradientModelPath()).toBe(p1);
    expect(statSync(p1).mtimeMs).toBe(mtime);
    // Another wrt set gets its own model; the order of names does not matter.
    const p2 = await v1.gradientModelPath(['ln.bias', 'x']);
    expect(p2).not.toBe(p1);
    expect(await v1.gradientModelPath(['x', 'ln.bias'])).toBe(p2);
    expect(readdirSync(join(dir, '.sop-cache')).filter((f) => f.endsWith('.onnx'))).toHaveLength(2);
    expect(readFileSync(model).equals(before)).toBe(true);
    await v1.dispose();
    await v2.dispose();
  });

  it('takes a flat cotangent (batch inferred from the output shape) and per-call wrt subsets', async () => {
    const v = await createVjp(join(gradFixtures, 'mlp_op13.onnx'), { output: 'output', wrt: ['x', 'l1.weight'], cacheDir: tempCache(), sessionOptions: single });
    const x = { data: rand(4 * 6, 3), shape: [4, 6] };
    const cot = rand(4 * 3, 4);
    const a = await v.vjp({ x }, cot);
    const b = await v.vjp({ x }, { data: cot, shape: [4, 3] }, ['x']);
    expect(a.grads.x.shape).toEqual([4, 6]);
    expect(a.grads['l1.weight'].shape).toEqual([16, 6]);
    expect(Object.keys(b.grads)).toEqual(['x']);
    expect(Array.from(b.grads.x.data)).toEqual(Array.from(a.grads.x.data));
    expect(a.outputs.output).toHaveLength(12);
    await expect(v.vjp({ x }, new Float32Array(7))).rejects.toThrow(UserError);
    await expect(v.vjp({ x, nope: x }, cot)).rejects.toThrow(/no input "nope"/);
    await v.dispose();
  });

  it('uses fed weight values instead of the stored ones', async () => {
    const path = join(gradFixtures, 'cnn_op17.onnx');
    const model = onnx.ModelProto.decode(readFileSync(path));
    const bias = floatValues(model.graph!.initializer!.find((t) => t.name === 'fc.bias')!)!;
    const v = await createVjp(path, { output: 'output', wrt: ['x', 'fc.bias'], cacheDir: tempCache(), sessionOptions: single });
    const x = { data: rand(2 * 2 * 12 * 12, 8), shape: [2, 2, 12, 12] };
    const cot = rand(2 * 5, 9);
    const base = await v.vjp({ x }, cot);
    const moved = await v.vjp({ x, 'fc.bias': { data: bias.map((b) => b + 1), shape: [5] } }, cot);
    base.outputs.output.forEach((o, i) => expect(moved.outputs.output[i]).toBeCloseTo(o + 1, 5));
    // d<cot, out>/d fc.bias = cot summed over the batch.
    expect(Array.from(base.grads['fc.bias'].data).map((g) => +g.toFixed(5))).toEqual(
      Array.from({ length: 5 }, (_, j) => +(cot[j] + cot[5 + j]).toFixed(5)),
    );
    await v.dispose();
  });

  it('shapes a flat cotangent with several symbolic dims from the fed inputs', async () => {
    const dir = tempCache();
    const path = join(dir, 'seq.onnx');
    const w = rand(12, 3);
    const model = makeModel({
      nodes: [{ opType: 'MatMul', input: ['x', 'w'], output: ['y'] }],
      inputs: [{ name: 'x', shape: ['batch', 'len', 4] }],
      outputs: ['y'],
      initializers: [floatTensor('w', [4, 3], w)],
    });
    writeFileSync(path, onnx.ModelProto.encode(model).finish());
    const v = await createVjp(path, { output: 'y', wrt: ['x', 'w'], sessionOptions: single });
    const x = { data: rand(2 * 5 * 4, 4), shape: [2, 5, 4] };
    const cot = rand(2 * 5 * 3, 5);
    const r = await v.vjp({ x }, cot);
    // dx = cot · wᵀ, dw = Σ xᵀ · cot
    const dx = new Float32Array(40);
    const dw = new Float32Array(12);
    for (let r0 = 0; r0 < 10; r0++) {
      for (let i = 0; i < 4; i++) {
        for (let j = 0; j < 3; j++) {
          dx[r0 * 4 + i] += cot[r0 * 3 + j] * w[i * 3 + j];
          dw[i * 3 + j] += x.data[r0 * 4 + i] * cot[r0 * 3 + j];
        }
      }
    }
    expect(r.grads.x.shape).toEqual([2, 5, 4]);
    r.grads.x.data.forEach((g, i) => expect(g).toBeCloseTo(dx[i], 5));
    r.grads.w.data.forEach((g, i) => expect(g).toBeCloseTo(dw[i], 5));
    await v.dispose();
  });

  it('differentiates initializers that are also listed as graph inputs (keep_initializers_as_inputs exports)', async () => {
    const dir = tempCache();
    const path = join(dir, 'old-style.onnx');
    const w = rand(6, 7);
    const model = makeModel({
      nodes: [{ opType: 'MatMul', input: ['x', 'w'], output: ['y'] }],
      inputs: [
        { name: 'x', shape: ['batch', 2] },
        { name: 'w', shape: [2, 3] },
      ],
      outputs: ['y'],
      initializers: [floatTensor('w', [2, 3], w)],
    });
    writeFileSync(path, onnx.ModelProto.encode(model).finish());
    const v = await createVjp(path, { output: 'y', wrt: ['w'], sessionOptions: single });
    const x = { data: Float32Array.from([1, 2, 3, 4]), shape: [2, 2] };
    const r = await v.vjp({ x }, new Float32Array(6).fill(1));
    // dw[i][j] = Σ_rows x[r][i]
    expect(Array.from(r.grads.w.data)).toEqual([4, 4, 4, 6, 6, 6]);
    expect(r.outputs.y[0]).toBeCloseTo(w[0] + 2 * w[3], 5);
    await v.dispose();
  });

  it('weightsAsInputs=false keeps weights constant: same gradients, feeding them is refused', async () => {
    const path = join(gradFixtures, 'cnn_op17.onnx');
    const wrt = ['x', 'conv2.weight', 'fc.bias'];
    const a = await createVjp(path, { output: 'output', wrt, cacheDir: tempCache(), sessionOptions: single });
    const b = await createVjp(path, { output: 'output', wrt, cacheDir: tempCache(), sessionOptions: single, weightsAsInputs: false });
    const x = { data: rand(2 * 2 * 12 * 12, 12), shape: [2, 2, 12, 12] };
    const cot = rand(10, 13);
    const ra = await a.vjp({ x }, cot);
    const rb = await b.vjp({ x }, cot);
    for (const w of wrt) rb.grads[w].data.forEach((g, i) => expect(g).toBeCloseTo(ra.grads[w].data[i], 5));
    await expect(b.vjp({ x, 'fc.bias': { data: new Float32Array(5), shape: [5] } }, cot)).rejects.toThrow(UserError);
    await a.dispose();
    await b.dispose();
  });

  it('reports a missing model file as a UserError', async () => {
    await expect(createVjp('/nonexistent/model.onnx', { output: 'y', wrt: ['x'] })).rejects.toThrow(UserError);
  });
});
