/** Shared test helpers: fixture paths, PyTorch reference files, tolerant comparisons. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import type { TensorData } from '@sop/core';

export const FIXTURES = resolve(import.meta.dirname, '../../../fixtures/onnx');

export function fixture(name: string): string {
  return join(FIXTURES, name);
}

export interface RefTensor {
  shape: number[];
  dtype: 'float32' | 'int64';
  data: number[];
}

export interface Reference {
  model: string;
  inputs: Record<string, RefTensor>;
  outputs: Record<string, RefTensor>;
  intermediates: Record<string, RefTensor>;
  lastSpatial?: string;
  classifierWeight: { name: string; shape: number[]; data?: number[] };
}

export function loadReference(name: string): Reference {
  return JSON.parse(readFileSync(fixture(`${name}.reference.json`), 'utf8')) as Reference;
}

export function toTensor(t: RefTensor): TensorData {
  return t.dtype === 'int64'
    ? { data: BigInt64Array.from(t.data.map((v) => BigInt(v))), shape: [...t.shape] }
    : { data: Float32Array.from(t.data), shape: [...t.shape] };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function expectClose(actual: { data: ArrayLike<number>; shape: number[] } | undefined, ref: RefTensor, atol = 1e-4): void {
  expect(actual).toBeDefined();
  expect(actual!.shape).toEqual(ref.shape);
  expect(maxAbsDiff(actual!.data, ref.data)).toBeLessThan(atol);
}

/** A fresh temp folder (cache dirs, copies of fixtures). */
export function tempDir(prefix = 'sop-onnx-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
