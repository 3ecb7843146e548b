import type { FeatureSpace } from '../feature-space.js';
import type { Inputs } from '../inputs.js';
import { UserError } from '../errors.js';
import { PatchesSpace } from '../features/patches.js';
import { ColumnsSpace } from '../features/columns.js';
import { kernels, maskRowsKernel } from '../kernels/index.js';
import { checkMasks, checkRowShape } from '../features/common.js';
import { takeRows, type FloatTensor, type TensorData } from '../tensor.js';

/** Copy every auxiliary input (all keys but `x` and `skip`) for the requested rows. */
export function takeAux(inputs: Inputs, rows: ArrayLike<number>, skip: readonly string[] = []): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const [k, v] of Object.entries(inputs)) {
    if (k === 'x' || skip.includes(k)) continue;
    out[k] = takeRows(v, rows);
  }
  return out;
}

/**
 * The masked inputs: x = `data` (rows.length rows shaped as x's) with every auxiliary input taken for `rows`. Built
 * property by property: an object spread (`{ ...aux, x }`) costs tens of µs per call once the backbone's work has
 * evicted V8's code between predictions (see docs/results/sop-bench.md, "Seventh pass").
 */
export function withX(inputs: Inputs, rows: ArrayLike<number>, data: Float32Array): Inputs {
  const out = takeAux(inputs, rows);
  const shape = inputs.x.shape.slice();
  shape[0] = rows.length;
  out.x = { data, shape };
  return out as Inputs;
}

/** x as float32 (UserError for int64 ids, which cannot be blended). */
export function floatX(inputs: Inputs, masker: string): Float32Array {
  if (!(inputs.x.data instanceof Float32Array)) {
    throw new UserError(`masker '${masker}' needs float inputs but x is int64 (token ids)`, 'use masker: attention (or pad) for token inputs');
  }
  return inputs.x.data;
}

/**
 * Blend toward a baseline in one pass over the expanded mask: out = base + (x - base)·M, computed in the mask's
 * buffer. `baseline(r)` returns the baseline row for output row r (or undefined for zeros). `scratch` (see
 * {@link Masker.apply}): core's PatchesSpace path writes the masked x into it when it is long enough.
 */
export function blend(
  inputs: Inputs,
  masks: Float32Array,
  rows: ArrayLike<number>,
  space: FeatureSpace,
  masker: string,
  baseline?: (r: number) => Float32Array | undefined,
  scratch?: Float32Array,
): Inputs {
  const x = floatX(inputs, masker);
  if (space instanceof PatchesSpace && space.expand === PatchesSpace.prototype.expand) return blendPatches(inputs, x, masks, rows, space, baseline, scratch);
  if (space instanceof ColumnsSpace && space.expand === ColumnsSpace.prototype.expand) {
    // one feature per value: the kernel with the identity map (same values as expand-then-blend)
    checkRowShape(inputs, space.rowShape, 'columns');
    const d = space.numFeatures;
    checkMasks(masks, rows, d, inputs.x.shape[0], 'columns');
    const fast = blendKernel(x, masks, rows, d, identityMap(d), 1, baseline, scratch);
    if (fast) return withX(inputs, rows, fast);
  }
  const M: FloatTensor = space.expand(masks, rows, inputs);
  const row = x.length / inputs.x.shape[0];
  // write into the expanded buffer; copy first if a space handed back the caller's masks themselves
  const out = M.data === masks ? M.data.slice() : M.data;
  if (out.length !== rows.length * row) throw new UserError(`masker '${masker}': the feature space expanded masks to [${M.shape.join(', ')}], which does not match x rows of ${row} values`, 'use a feature space built for these inputs');
  for (let r = 0; r < rows.length; r++) {
    const xo = rows[r] * row;
    const o = r * row;
    const base = baseline?.(r);
    if (base) for (let j = 0; j < row; j++) out[o + j] = base[j] + (x[xo + j] - base[j]) * out[o + j];
    else for (let j = 0; j < row; j++) out[o + j] *= x[xo + j];
  }
  return withX(inputs, rows, out);
}

/**
 * {@link blend} for core's PatchesSpace in one pass: each output element reads its pixel's feature mask value through
 * the space's pixel → feature map (no expanded mask buffer). Same values as expand-then-blend, bit for bit.
 */
function blendPatches(
  inputs: Inputs,
  x: Float32Array,
  masks: Float32Array,
  rows: ArrayLike<number>,
  space: PatchesSpace,
  baseline?: (r: number) => Float32Array | undefined,
  scratch?: Float32Array,
): Inputs {
  checkRowShape(inputs, space.rowShape, 'patches');
  const d = space.numFeatures;
  checkMasks(masks, rows, d, inputs.x.shape[0], 'patches');
  const R = rows.length;
  const hw = space.height * space.width;
  const C = space.channels;
  const row = C * hw;
  const fast = blendKernel(x, masks, rows, d, space.pixelFeature, C, baseline, scratch);
  if (fast) return withX(inputs, rows, fast);
  const runs = pixelRuns(space.pixelFeature);
  const out = scratch && scratch.length >= R * row ? scratch.subarray(0, R * row) : new Float32Array(R * row);
  for (let r = 0; r < R; r++) {
    const base = baseline?.(r);
    if (base) blendRow(out, r * row, x, rows[r] * row, masks, r * d, space.pixelFeature, hw, C, base);
    else scaleRow(out, r * row, x, rows[r] * row, masks, r * d, runs, hw, C);
  }
  return withX(inputs, rows, out);
}

/**
 * The WebAssembly kernel for a blend through a pixel → feature map (`map` [hw], repeated over C channels), when the
 * runtime has it and every output row blends toward the same baseline (or zeros); undefined otherwise. Writes into
 * `scratch` when it is long enough. Same values as the JavaScript loops: the zero blend is one float32 product, the
 * baseline blend is computed in float64.
 */
function blendKernel(
  x: Float32Array,
  masks: Float32Array,
  rows: ArrayLike<number>,
  d: number,
  map: Int32Array,
  C: number,
  baseline: ((r: number) => Float32Array | undefined) | undefined,
  scratch: Float32Array | undefined,
): Float32Array | undefined {
  const k = kernels();
  const R = rows.length;
  // very large blends stay in JavaScript (the kernel would copy them into WebAssembly memory, capped at 2 GB)
  if (!k || R === 0 || (R * C * map.length + x.length) * 4 > KERNEL_BYTES_MAX) return undefined;
  const base = baseline?.(0);
  if (baseline) for (let r = 1; r < R; r++) if (baseline(r) !== base) return undefined;
  const n = R * C * map.length;
  const out = scratch && scratch.length >= n ? scratch.subarray(0, n) : new Float32Array(n);
  const idx = rows instanceof Int32Array ? rows : Int32Array.from(rows);
  return maskRowsKernel(k, x, idx, masks, d, map, C, base, out);
}

/** Largest blend (output + input bytes) handed to the WebAssembly kernel. */
const KERNEL_BYTES_MAX = 256 * 1024 * 1024;

const IDENTITY = new Map<number, Int32Array>();

function identityMap(d: number): Int32Array {
  let m = IDENTITY.get(d);
  if (!m) {
    m = Int32Array.from({ length: d }, (_, i) => i);
    IDENTITY.set(d, m);
  }
  return m;
}

const RUNS = new WeakMap<Int32Array, Int32Array>();

/**
 * The pixel → feature map as runs of consecutive pixels of one feature: triples (first pixel, end pixel, feature)
 * (e.g. 64 runs of 4 pixels for 4×4 patches on 16×16 images), cached per map.
 */
function pixelRuns(map: Int32Array): Int32Array {
  let runs = RUNS.get(map);
  if (runs) return runs;
  const out: number[] = [];
  for (let p = 0; p < map.length; ) {
    let e = p + 1;
    while (e < map.length && map[e] === map[p]) e++;
    out.push(p, e, map[p]);
    p = e;
  }
  runs = Int32Array.from(out);
  RUNS.set(map, runs);
  return runs;
}

/** One output row of the zero blend: out = x · M (M constant over each run of pixels of one feature). */
function scaleRow(out: Float32Array, o: number, x: Float32Array, xo: number, masks: Float32Array, mo: number, runs: Int32Array, hw: number, C: number): void {
  for (let c = 0, co = 0; c < C; c++, co += hw) {
    const oc = o + co;
    const xc = xo + co;
    for (let k = 0; k < runs.length; k += 3) {
      const v = masks[mo + runs[k + 2]];
      let p = runs[k];
      const e = runs[k + 1];
      for (; p + 4 <= e; p += 4) {
        out[oc + p] = v * x[xc + p];
        out[oc + p + 1] = v * x[xc + p + 1];
        out[oc + p + 2] = v * x[xc + p + 2];
        out[oc + p + 3] = v * x[xc + p + 3];
      }
      for (; p < e; p++) out[oc + p] = v * x[xc + p];
    }
  }
}

/** One output row of the blend toward `base`: out = base + (x − base) · M. */
function blendRow(out: Float32Array, o: number, x: Float32Array, xo: number, masks: Float32Array, mo: number, map: Int32Array, hw: number, C: number, base: Float32Array): void {
  for (let c = 0, co = 0; c < C; c++, co += hw) {
    for (let p = 0; p < hw; p++) {
      const j = co + p;
      out[o + j] = base[j] + (x[xo + j] - base[j]) * masks[mo + map[p]];
    }
  }
}
