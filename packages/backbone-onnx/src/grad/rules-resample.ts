/**
 * Gradient rules for ops that repeat or rearrange elements: Tile (sum over the repeats), Resize (nearest with integer
 * scales as a sum over each output block; other nearest modes and linear through per-axis interpolation matrices),
 * DepthToSpace/SpaceToDepth (each other's inverse permutation) and CumSum (the reverse cumulative sum).
 */
import { UserError } from '@sop/core';
import type { Emitter } from './emitter.js';
import { type Dim, attrInt, attrInts, attrString } from './proto.js';
import type { GradRule, RuleContext } from './rule.js';

const range = (a: number, b: number): number[] => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

/**
 * Sum `g` over blocks: axis i of `g` holds factors[i]·d_i elements, laid out as [factor, d] (Tile: the repeat index
 * outermost) or [d, factor] (nearest upsampling: each element repeated in place); the result is shaped like `x`.
 */
function blockSum(e: Emitter, g: string, x: string, xs: Dim[] | undefined, factors: number[], factorFirst: boolean): string {
  if (factors.every((f) => f === 1)) return g;
  const rank = factors.length;
  const gatherIdx: number[] = [];
  const reduce: number[] = [];
  factors.forEach((f, i) => {
    if (f === 1) {
      gatherIdx.push(i);
      return;
    }
    reduce.push(gatherIdx.length + (factorFirst ? 0 : 1));
    if (factorFirst) gatherIdx.push(rank + i, i);
    else gatherIdx.push(i, rank + i);
  });
  let target: string;
  if (xs && xs.length === rank && xs.every((d) => typeof d === 'number')) {
    const all = [...(xs as number[]), ...factors];
    target = e.i64(gatherIdx.map((k) => all[k]));
  } else {
    const both = e.op1('Concat', [e.shape(x), e.i64(factors)], { axis: 0 });
    target = e.op1('Gather', [both, e.i64(gatherIdx)], { axis: 0 });
  }
  return e.reduceSum(e.op1('Reshape', [g, target]), reduce, false);
}

const tile: GradRule = (c) => {
  const { e } = c;
  const x = c.x(0);
  const rank = c.requireRank(x);
  const reps = c.constOf(c.x(1));
  if (reps) {
    if (reps.length !== rank) {
      throw new UserError(
        `cannot differentiate Tile node "${c.node.name ?? ''}": ${reps.length} repeats for an input of rank ${rank}`,
        'check the model: Tile needs one repeat count per input axis',
      );
    }
    return [blockSum(e, c.g(0)!, x, c.shapeOf(x), reps, true)];
  }
  // Repeats computed at run time: split every axis into [repeat, size] from Shape(x) and the repeats tensor.
  const both = e.op1('Concat', [e.shape(x), c.x(1)], { axis: 0 });
  const target = e.op1('Gather', [both, e.i64(range(0, rank).flatMap((i) => [rank + i, i]))], { axis: 0 });
  return [e.reduceSum(e.op1('Reshape', [c.g(0)!, target]), range(0, rank).map((i) => 2 * i), false)];
};

/** Source coordinate of output index `o` along an axis (ONNX Resize, computed in float32 as onnxruntime does). */
function sourceCoord(ctm: string, o: number, scale: number, inLen: number, outLen: number): number {
  const f = Math.fround;
  const s = f(scale);
  switch (ctm) {
    case 'half_pixel':
      return f(f(f(o + 0.5) / s) - 0.5);
    case 'pytorch_half_pixel':
      return outLen > 1 ? f(f(f(o + 0.5) / s) - 0.5) : 0;
    case 'asymmetric':
      return f(o / s);
    case 'tf_half_pixel_for_nn':
      return f(f(o + 0.5) / s);
    case 'align_corners':
      return outLen === 1 ? 0 : f(f(o * (inLen - 1)) / (outLen - 1));
    case 'half_pixel_symmetric': {
      const adjustment = f(outLen / f(s * inLen));
      const offset = f(f(inLen / 2) * f(1 - adjustment));
      return f(offset + f(f(f(o + 0.5) / s) - 0.5));
    }
    default:
      throw new Error(`unexpected coordinate_transformation_mode ${ctm}`);
  }
}

function nearestIndex(mode: string, xo: number, inLen: number): number {
  const fl = Math.floor(xo);
  const tie = xo === fl + 0.5;
  let i: number;
  if (mode === 'floor') i = fl;
  else if (mode === 'ceil') i = Math.ceil(xo);
  else if (mode === 'round_prefer_ceil') i = tie ? fl + 1 : Math.round(xo);
  else i = tie ? fl : Math.round(xo);
  return Math.min(Math.max(i, 0), inLen - 1);
}

/** Interpolation matrix [outLen, inLen] (row-major) of one axis: y = A·x along that axis. */
function interpMatrix(mode: string, ctm: string, nearestMode: string, scale: number, inLen: number, outLen: number): number[] {
  const a = new Array<number>(outLen * inLen).fill(0);
  for (let o = 0; o < outLen; o++) {
    const xo = sourceCoord(ctm, o, scale, inLen, outLen);
    if (mode === 'nearest') {
      a[o * inLen + nearestIndex(nearestMode, xo, inLen)] = 1;
    } else {
      // Linear with edge clamping (onnxruntime clamps the source coordinate to [0, inLen-1]).
      const xc = Math.min(Math.max(xo, 0), inLen - 1);
      const x0 = Math.floor(xc);
      const x1 = Math.min(x0 + 1, inLen - 1);
      const w = Math.fround(xc - x0);
      a[o * inLen + x0] += 1 - w;
      a[o * inLen + x1] += w;
    }
  }
  return a;
}

interface ResizeAxis {
  inLen: Dim;
  outLen: Dim;
  /** The scale the coordinate transform uses (given, or outLen/inLen from sizes); undefined when unknown. */
  scale: number | undefined;
}

const NEAREST_MODES = new Set(['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil']);
const CTMS = new Set(['half_pixel', 'pytorch_half_pixel', 'asymmetric', 'tf_half_pixel_for_nn', 'align_corners', 'half_pixel_symmetric']);

const resize: GradRule = (c) => {
  const { e, node } = c;
  const name = node.name ?? '';
  const fail = (what: string, fix: string): never => {
    throw new UserError(`cannot differentiate Resize node "${name}": ${what}`, fix);
  };
  const mode = attrString(node, 'mode', 'nearest');
  const ctm = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  const nearestMode = attrString(node, 'nearest_mode', 'round_prefer_floor');
  const supportedHint = 'supported: mode nearest or linear (align_corners or not), e.g. nn.Upsample(scale_factor=2) or F.interpolate(mode="bilinear")';
  if (mode !== 'nearest' && mode !== 'linear') fail(`mode=${mode} has no gradient rule`, supportedHint);
  if (!CTMS.has(ctm)) fail(`coordinate_transformation_mode=${ctm} has no gradient rule`, supportedHint);
  if (mode === 'nearest' && !NEAREST_MODES.has(nearestMode)) fail(`nearest_mode=${nearestMode} is unknown`, supportedHint);
  const policy = attrString(node, 'keep_aspect_ratio_policy', 'stretch');
  if (policy !== 'stretch') fail(`keep_aspect_ratio_policy=${policy} has no gradient rule`, 'export with explicit scales or sizes');

  const x = c.x(0);
  const rank = c.requireRank(x);
  const xs = c.shapeOf(x) ?? new Array<Dim>(rank).fill(null);
  const axesRaw = attrInts(node, 'axes');
  const axes = axesRaw ? axesRaw.map((a) => (a < 0 ? a + rank : a)) : range(0, rank);
  const scalesName = c.x(2);
  const sizesName = c.x(3);
  const scalesVals = scalesName ? c.constOf(scalesName) : undefined;
  const sizesVals = sizesName ? c.info.symValues(sizesName) : undefined;
  const dims: ResizeAxis[] = xs.map((d) => ({ inLen: d, outLen: d, scale: 1 }));
  if (scalesName && scalesVals === undefined && !(sizesName && sizesVals)) {
    fail('its scales are computed at run time', 'export with constant scale factors (e.g. nn.Upsample(scale_factor=2))');
  }
  if (scalesVals && scalesVals.length > 0) {
    if (scalesVals.length !== axes.length) fail(`${scalesVals.length} scales for ${axes.length} axes`, 'check the model');
    axes.forEach((a, k) => {
      const s = scalesVals[k];
      const n = xs[a];
      dims[a] = { inLen: n, outLen: typeof n === 'number' ? Math.floor(Math.fround(n * Math.fround(s))) : null, scale: s };
    });
  } else if (sizesName) {
    if (!sizesVals) fail('its output sizes are computed at run time in a way the gradient builder cannot follow', 'export with constant scale factors');
    if (sizesVals!.length !== axes.length) fail(`${sizesVals!.length} sizes for ${axes.length} axes`, 'check the model');
    axes.forEach((a, k) => {
      const n = xs[a];
      const o = sizesVals![k];
      const scale = n !== null && n === o ? 1 : typeof n === 'number' && typeof o === 'number' ? o / n : undefined;
      dims[a] = { inLen: n, outLen: o, scale };
    });
  } else {
    fail('it has neither scales nor sizes', 'check the model');
  }
  if (attrInt(node, 'antialias', 0) === 1 && mode !== 'nearest' && dims.some((d) => d.scale === undefined || d.scale < 1)) {
    fail('antialiased downsampling has no gradient rule', 'export without antialias');
  }
  const g = c.g(0)!;

  // Nearest with integer scales whose transform maps each block of `scale` outputs to one input (asymmetric+floor,
  // half_pixel+round, as nn.Upsample(scale_factor=k) exports): the gradient sums each block, at any (dynamic) size.
  if (mode === 'nearest' && ['half_pixel', 'pytorch_half_pixel', 'asymmetric', 'tf_half_pixel_for_nn'].includes(ctm)) {
    const blocky = dims.every(({ scale }) => {
      if (scale === undefined || !Number.isInteger(scale) || scale < 1) return false;
      // Translation-invariant transforms: block k = 1 of a long axis decides.
      return range(0, scale).every((j) => nearestIndex(nearestMode, sourceCoord(ctm, scale + j, scale, 8, 8 * scale), 8) === 1);
    });
    if (blocky) return [blockSum(e, g, x, c.shapeOf(x), dims.map((d) => d.scale!), false)];
  }

  // General case: per axis, the transpose of the interpolation matrix (static sizes needed).
  let out = g;
  dims.forEach(({ inLen, outLen, scale }, a) => {
    // Same length at scale 1: the identity for every transform but tf_half_pixel_for_nn (checked below when static).
    if (inLen === outLen && scale === 1 && ctm !== 'tf_half_pixel_for_nn') return;
    if (typeof inLen !== 'number' || typeof outLen !== 'number' || scale === undefined) {
      fail(
        `mode=${mode} with coordinate_transformation_mode=${ctm}${mode === 'nearest' ? ` and nearest_mode=${nearestMode}` : ''} needs static sizes on resized axis ${a} (found ${inLen ?? '?'} → ${outLen ?? '?'})`,
        'run ONNX shape inference, give the model static spatial sizes, or use nearest upsampling by integer factors (asymmetric/floor or half_pixel/round)',
      );
    }
    const m = interpMatrix(mode, ctm, nearestMode, scale!, inLen as number, outLen as number);
    if (inLen === outLen && m.every((v, k) => v === (k % ((inLen as number) + 1) === 0 ? 1 : 0))) return;
    const A = e.floatConst(m, [outLen as number, inLen as number]);
    if (a === rank - 1) {
      out = e.op1('MatMul', [out, A]);
    } else if (a === rank - 2) {
      const At = e.floatConst(transpose(m, outLen as number, inLen as number), [inLen as number, outLen as number]);
      out = e.op1('MatMul', [At, out]);
    } else {
      const perm = range(0, rank);
      [perm[a], perm[rank - 1]] = [perm[rank - 1], perm[a]];
      out = e.op1('Transpose', [e.op1('MatMul', [e.op1('Transpose', [out], { perm }), A])], { perm });
    }
  });
  return [out];
};

function transpose(m: number[], rows: number, cols: number): number[] {
  const t = new Array<number>(m.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j];
  return t;
}

const depthToSpace: GradRule = (c) => {
  const { e } = c;
  const b = attrInt(c.node, 'blocksize', 0);
  const mode = attrString(c.node, 'mode', 'DCR');
  const s = e.op1('SpaceToDepth', [c.g(0)!], { blocksize: b });
  if (mode === 'DCR') return [s];
  if (mode !== 'CRD') {
    throw new UserError(`cannot differentiate DepthToSpace node "${c.node.name ?? ''}" with mode=${mode}`, 'use mode DCR or CRD');
  }
  // CRD reads channel c·b² + (i·b + j); SpaceToDepth writes (i·b + j)·C + c: swap the two channel factors.
  const x = c.x(0);
  const xs = c.shapeOf(x);
  const tail = xs && xs.length === 4 && xs.slice(1).every((d) => typeof d === 'number') ? (xs.slice(2) as number[]) : undefined;
  const target = tail ? e.i64([0, b * b, -1, ...tail]) : e.op1('Concat', [e.i64([0, b * b, -1]), e.op1('Slice', [e.shape(x), e.i64([2]), e.i64([4])])], { axis: 0 });
  const t = e.op1('Transpose', [e.op1('Reshape', [s, target])], { perm: [0, 2, 1, 3, 4] });
  return [e.reshapeLike(t, x)];
};

const spaceToDepth: GradRule = (c) => [c.e.op1('DepthToSpace', [c.g(0)!], { blocksize: attrInt(c.node, 'blocksize', 0), mode: 'DCR' })];

const cumSum: GradRule = (c) => [
  c.e.op1('CumSum', [c.g(0)!, c.x(1)], {
    exclusive: attrInt(c.node, 'exclusive', 0) ? 1 : undefined,
    reverse: attrInt(c.node, 'reverse', 0) ? undefined : 1,
  }),
];

export const resampleRules: Record<string, GradRule> = {
  Tile: tile,
  Resize: resize,
  DepthToSpace: depthToSpace,
  SpaceToDepth: spaceToDepth,
  CumSum: cumSum,
};
