/** Small pure helpers: close-name suggestions, half floats, .npy reading. */
import { describe, expect, it } from 'vitest';
import { readNpy } from '@sop/core';
import { closeNames, floatToHalf, halfToFloat } from '../src/index.js';
import { fixture } from './helpers.js';

describe('closeNames', () => {
  it('prefers names containing the query, then small edit distances', () => {
    const names = ['/relu1/Relu_output_0', '/relu3/Relu_output_0', 'fc2.weight', 'fc2.bias', 'logits', 'hidden'];
    expect(closeNames('relu3', names)[0]).toBe('/relu3/Relu_output_0');
    expect(closeNames('fc2.weights', names)[0]).toBe('fc2.weight');
    expect(closeNames('logit', names)).toEqual(['logits']);
    expect(closeNames('zzzzzzzzzz', names)).toEqual([]);
  });
});

describe('half floats', () => {
  it('round-trip exactly representable values and round others to nearest', () => {
    for (const v of [0, 1, -2.5, 65504, 2 ** -14, 2 ** -24, -0.375, 1000.5]) expect(halfToFloat(floatToHalf(v))).toBe(v);
    expect(halfToFloat(floatToHalf(0.1))).toBe(0.0999755859375);
    expect(halfToFloat(floatToHalf(1024.5))).toBe(1024); // ties to even
    expect(halfToFloat(floatToHalf(1e6))).toBe(Infinity);
    expect(halfToFloat(floatToHalf(1e-9))).toBe(0);
    expect(Number.isNaN(halfToFloat(floatToHalf(NaN)))).toBe(true);
    expect(floatToHalf(1)).toBe(0x3c00);
  });
});

describe('readNpy', () => {
  it('reads the shapes data set written by numpy', () => {
    const x = readNpy(fixture('shapes-train-x.npy'));
    expect(x.dtype).toBe('float32');
    expect(x.shape).toEqual([1200, 1, 16, 16]);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of x.values!) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThanOrEqual(1);
    const y = readNpy(fixture('shapes-train-y.npy'));
    expect(y.dtype).toBe('int64');
    expect(new Set(Array.from(y.ints!, Number))).toEqual(new Set([0, 1, 2, 3]));
  });
});

describe('toOrtSessionOptions', () => {
  it('spinning: false turns off busy-waiting of both thread pools; unset keeps onnxruntime defaults', async () => {
    const { toOrtSessionOptions } = await import('../src/session.js');
    expect(toOrtSessionOptions({ spinning: false }).extra).toEqual({ session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } });
    expect(toOrtSessionOptions({}).extra).toBeUndefined();
    expect(toOrtSessionOptions({ spinning: true }).extra).toBeUndefined();
  });

  it('the gradient session sleeps between runs unless the config sets spinning; other settings pass through', async () => {
    const { toOrtSessionOptions, gradientSessionConfig } = await import('../src/session.js');
    expect(toOrtSessionOptions(gradientSessionConfig({})).extra).toEqual({ session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } });
    expect(toOrtSessionOptions(gradientSessionConfig({ spinning: true })).extra).toBeUndefined();
    expect(gradientSessionConfig({ threads: 3, graphOptimizationLevel: 'extended' })).toEqual({ threads: 3, graphOptimizationLevel: 'extended', spinning: false });
  });
});

describe('OnnxBackbone.parameter', () => {
  it('reads one initializer, equal to parameters()[name]; undefined for unknown names', async () => {
    const { OnnxBackbone } = await import('../src/index.js');
    const bb = await OnnxBackbone.load({ path: fixture('digits-cnn.onnx') });
    try {
      const all = bb.parameters();
      expect(Array.from(bb.parameter('conv2.bias')!.data)).toEqual(Array.from(all['conv2.bias'].data));
      expect(bb.parameter('conv2.bias')!.shape).toEqual([32]);
      expect(bb.parameter('nope')).toBeUndefined();
    } finally {
      await bb.dispose();
    }
  });
});
