/** Every user-fixable problem is a UserError whose message names the problem and whose fix says what to do. */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '@sop/core';
import { OnnxBackbone, createSession, inspectModel, loadModelProto, parseOnnxBackboneOptions } from '../src/index.js';
import { fixture, tempDir } from './helpers.js';

async function userError(p: Promise<unknown> | (() => unknown)): Promise<UserError> {
  try {
    if (typeof p === 'function') await p();
    else await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).fix).toBeTruthy();
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

/** xorshift bytes (deterministic, no Math.random). */
function pseudoRandomBytes(n: number, seed = 12345): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

describe('model file errors', () => {
  it('missing file names the resolved path', async () => {
    const dir = tempDir();
    const e = await userError(OnnxBackbone.load({ path: 'nope/model.onnx', baseDir: dir }));
    expect(e.message).toContain(join(dir, 'nope/model.onnx'));
    expect(e.message).toMatch(/not found/);
    expect((await userError(() => loadModelProto(join(dir, 'x.onnx')))).message).toMatch(/not found/);
    expect((await userError(createSession(join(dir, 'x.onnx')))).message).toMatch(/not found/);
  });

  it('truncated copy is reported as malformed or truncated', async () => {
    const path = join(tempDir(), 'truncated.onnx');
    const bytes = readFileSync(fixture('digits-cnn.onnx'));
    writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const e = await userError(OnnxBackbone.load({ path }));
    expect(e.message).toMatch(/malformed or truncated/);
    expect(e.message).toContain(path);
    expect(e.fix).toMatch(/re-export|download/);
    expect((await userError(inspectModel(path))).message).toMatch(/malformed or truncated/);
    // onnxruntime's own parse error is mapped too
    expect((await userError(createSession(path))).message).toMatch(/malformed or truncated/);
  });

  it('random bytes and an empty file are rejected', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'random.onnx'), pseudoRandomBytes(4096));
    writeFileSync(join(dir, 'empty.onnx'), new Uint8Array(0));
    expect((await userError(OnnxBackbone.load({ path: join(dir, 'random.onnx') }))).message).toMatch(/malformed or truncated|no graph/);
    expect((await userError(OnnxBackbone.load({ path: join(dir, 'empty.onnx') }))).message).toMatch(/empty/);
  });
});

describe('name errors list close names', () => {
  it('hidden: a misspelt intermediate', async () => {
    const e = await userError(OnnxBackbone.load({ path: fixture('digits-cnn.onnx'), hidden: '/relu3/Relu_output' }));
    expect(e.message).toContain("backbone.hidden: '/relu3/Relu_output' is not");
    expect(e.message).toContain('close names: /relu3/Relu_output_0');
    expect(e.fix).toContain('sop inspect');
  });

  it('expose and input', async () => {
    const e = await userError(OnnxBackbone.load({ path: fixture('shapes-vit.onnx'), expose: ['/patch_embed/Conv'] }));
    expect(e.message).toContain('backbone.expose');
    expect(e.message).toContain('/patch_embed/Conv_output_0');
    const i = await userError(OnnxBackbone.load({ path: fixture('token-classifier.onnx'), input: 'input_id' }));
    expect(i.message).toContain('close names: input_ids');
  });

  it('classifierWeight that is not an initializer', async () => {
    const e = await userError(OnnxBackbone.load({ path: fixture('digits-cnn.onnx'), classifierWeight: 'fc2.weights' }));
    expect(e.message).toContain('close names: fc2.weight');
  });

  it('forward with an output that was not exposed', async () => {
    const b = await OnnxBackbone.load({ path: fixture('digits-cnn.onnx') });
    const x = { data: new Float32Array(64), shape: [1, 1, 8, 8] };
    const e = await userError(b.forward({ x }, { outputs: ['/relu3/Relu_output_0'] }));
    expect(e.fix).toContain('backbone.expose');
    const h = await userError(b.forward({ x }, { outputs: ['embeddings'] }));
    expect(h.message).toMatch(/no per-feature embeddings/);
    await b.dispose();
  });

  it('output that is not [batch, C]', async () => {
    const e = await userError(OnnxBackbone.load({ path: fixture('digits-cnn.onnx'), output: '/relu3/Relu_output_0', cacheDir: tempDir() }));
    expect(e.message).toContain("backbone.output '/relu3/Relu_output_0' has shape [batch, 32, 4, 4]");
  });

  it('hidden with the wrong rank', async () => {
    const e = await userError(OnnxBackbone.load({ path: fixture('digits-cnn.onnx'), hidden: '/relu3/Relu_output_0', cacheDir: tempDir() }));
    expect(e.message).toContain('[batch, 32, 4, 4]');
    expect(e.message).toContain('[batch, k]');
  });
});

describe('input errors name the input, expected vs found', () => {
  it('wrong shape', async () => {
    const b = await OnnxBackbone.load({ path: fixture('digits-cnn.onnx') });
    const e = await userError(b.forward({ x: { data: new Float32Array(2 * 64), shape: [2, 8, 8] } }));
    expect(e.message).toBe("input 'x': expected shape [batch, 1, 8, 8] but found [2, 8, 8]");
    const f = await userError(b.forward({ x: { data: new Float32Array(2 * 100), shape: [2, 1, 10, 10] } }));
    expect(f.message).toContain('[batch, 1, 8, 8] but found [2, 1, 10, 10]');
    await b.dispose();
  });

  it('wrong dtype, both directions', async () => {
    const b = await OnnxBackbone.load({ path: fixture('digits-cnn.onnx') });
    const e = await userError(b.forward({ x: { data: new BigInt64Array(64), shape: [1, 1, 8, 8] } }));
    expect(e.message).toBe("input 'x': expected dtype float32 but found int64");
    await b.dispose();
    const t = await OnnxBackbone.load({ path: fixture('token-classifier.onnx') });
    const ids = { data: new BigInt64Array(12), shape: [1, 12] };
    const g = await userError(t.forward({ x: { data: new Float32Array(12), shape: [1, 12] }, attention_mask: ids, token_type_ids: ids }));
    expect(g.message).toBe("input 'x' (graph input 'input_ids'): expected dtype int64 but found float32");
    const m = await userError(t.forward({ x: ids, attention_mask: { data: new Float32Array(12), shape: [1, 12] }, token_type_ids: ids }));
    expect(m.message).toContain("input 'attention_mask': expected dtype int64 but found float32");
    await t.dispose();
  });

  it('missing aux inputs and row mismatches', async () => {
    const t = await OnnxBackbone.load({ path: fixture('token-classifier.onnx') });
    const ids = { data: new BigInt64Array(24), shape: [2, 12] };
    const e = await userError(t.forward({ x: ids, attention_mask: ids }));
    expect(e.message).toContain("'token_type_ids'");
    expect(e.message).toContain('attention_mask');
    const r = await userError(t.forward({ x: ids, attention_mask: ids, token_type_ids: { data: new BigInt64Array(12), shape: [1, 12] } }));
    expect(r.message).toContain('has 1 rows but x has 2');
    await t.dispose();
  });
});

describe('config and execution providers', () => {
  it('parseOnnxBackboneOptions rejects bad values and unknown keys', async () => {
    expect((await userError(() => parseOnnxBackboneOptions({ use: 'onnx' }))).message).toContain('backbone.path is required');
    expect((await userError(() => parseOnnxBackboneOptions({ use: 'onnx', path: 'm.onnx', maxBatch: 0 }))).message).toContain('backbone.maxBatch');
    expect((await userError(() => parseOnnxBackboneOptions({ use: 'onnx', path: 'm.onnx', exposee: ['a'] }))).message).toContain('backbone.exposee: unknown option');
    expect((await userError(() => parseOnnxBackboneOptions({ use: 'onnx', path: 'm.onnx', graphOptimizationLevel: 'max' }))).message).toContain('graphOptimizationLevel');
    const ok = parseOnnxBackboneOptions({ use: 'onnx', baseDir: '/a', path: 'm.onnx', expose: 'h', threads: 2 });
    expect(ok).toMatchObject({ path: 'm.onnx', baseDir: '/a', expose: ['h'], threads: 2 });
  });

  it("executionProviders: ['cuda'] either works or says how to install CUDA support and to fall back to cpu", async () => {
    const dir = tempDir();
    copyFileSync(fixture('tabular-mlp.onnx'), join(dir, 'm.onnx'));
    try {
      const b = await OnnxBackbone.load({ path: join(dir, 'm.onnx'), executionProviders: ['cuda'] });
      await b.dispose(); // a machine with the CUDA EP installed
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      const u = e as UserError;
      expect(u.message).toMatch(/CUDA execution provider/);
      expect(u.fix).toContain('--onnxruntime-node-install=cuda12');
      expect(u.fix).toContain('libcudnn.so.9');
      expect(u.fix).toContain("executionProviders: ['cpu']");
    }
  });
});
