/**
 * Gradient rules for layers: MatMul, Gemm, Conv (grad w.r.t. input as a Conv with flipped weights or a ConvTranspose,
 * w.r.t. weight as a correlation), BatchNormalization (inference), LayerNormalization, MaxPool (non-overlapping
 * windows as elementwise masks, otherwise through its Indices output), AveragePool (stride 1 as an AveragePool) and
 * the global pools.
 */
import { UserError } from '@sop/core';
import type { Emitter } from './emitter.js';
import { DT, type Dim, attrFloat, attrInt, attrInts, attrString, findAttr, floatTensor } from './proto.js';
import type { GradRule, RuleContext } from './rule.js';

const range = (a: number, b: number): number[] => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

/** Swap the last two axes of a rank-r tensor. */
function swapLast(e: Emitter, x: string, r: number): string {
  const perm = range(0, r);
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return e.op1('Transpose', [x], { perm });
}

const matMul: GradRule = (c) => {
  const { e } = c;
  const a = c.x(0);
  const b = c.x(1);
  const g = c.g(0)!;
  const ra = c.requireRank(a);
  const rb = c.requireRank(b);
  const nulls = (r: number): null[] => new Array<null>(r).fill(null);
  let da: string | undefined;
  let db: string | undefined;
  if (ra === 1 && rb === 1) {
    if (c.need(0)) da = e.mul(g, b);
    if (c.need(1)) db = e.mul(g, a);
  } else if (ra === 1) {
    const gu = e.unsqueeze(g, [-2]);
    if (c.need(0)) da = e.unbroadcast(e.op1('MatMul', [gu, swapLast(e, b, rb)]), a, nulls(rb));
    if (c.need(1)) db = e.unbroadcast(e.op1('MatMul', [e.unsqueeze(a, [-1]), gu]), b, nulls(rb));
  } else if (rb === 1) {
    const gu = e.unsqueeze(g, [-1]);
    if (c.need(0)) da = e.unbroadcast(e.op1('MatMul', [gu, e.unsqueeze(b, [0])]), a, nulls(ra));
    if (c.need(1)) db = e.unbroadcast(e.squeeze(e.op1('MatMul', [swapLast(e, a, ra), gu]), [-1]), b, nulls(ra - 1));
  } else {
    const r = Math.max(ra, rb);
    const yShape = c.shapeOf(c.y(0)) ?? nulls(r);
    if (c.need(0)) {
      const t = e.op1('MatMul', [g, swapLast(e, b, rb)]);
      da = rb === 2 ? t : e.unbroadcast(t, a, batchShaped(yShape, c.shapeOf(a), r));
    }
    if (c.need(1)) {
      if (rb === 2 && ra > 2) {
        const fa = e.op1('Flatten', [a], { axis: ra - 1 });
        const fg = e.op1('Flatten', [g], { axis: ra - 1 });
        db = e.op1('Gemm', [fa, fg], { transA: 1 });
      } else {
        const t = e.op1('MatMul', [swapLast(e, a, ra), g]);
        db = ra === 2 && rb === 2 ? t : e.unbroadcast(t, b, batchShaped(yShape, c.shapeOf(b), r));
      }
    }
  }
  return [da, db];
};

/** Static shape of a MatMul operand gradient before un-broadcasting: the output's batch dims + the operand's matrix dims. */
function batchShaped(yShape: (number | string | null)[], operand: (number | string | null)[] | undefined, r: number) {
  const tail = operand ? operand.slice(-2) : [null, null];
  return [...yShape.slice(0, r - 2), ...tail];
}

const gemm: GradRule = (c) => {
  const { e } = c;
  const a = c.x(0);
  const b = c.x(1);
  const g = c.g(0)!;
  const transA = attrInt(c.node, 'transA', 0);
  const transB = attrInt(c.node, 'transB', 0);
  const alpha = attrFloat(c.node, 'alpha', 1);
  const beta = attrFloat(c.node, 'beta', 1);
  const al = alpha === 1 ? undefined : { float: alpha };
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (c.need(0)) {
    out[0] = transA
      ? e.op1('Gemm', [b, g], { transA: transB, transB: 1, alpha: al })
      : e.op1('Gemm', [g, b], { transA: 0, transB: 1 - transB, alpha: al });
  }
  if (c.need(1)) {
    out[1] = transB
      ? e.op1('Gemm', [g, a], { transA: 1, transB: transA, alpha: al })
      : e.op1('Gemm', [a, g], { transA: 1 - transA, transB: 0, alpha: al });
  }
  if (c.x(2) && c.need(2)) {
    const gb = beta === 1 ? g : e.mul(g, e.f(beta));
    out[2] = e.unbroadcast(gb, c.x(2), c.shapeOf(c.y(0)) ?? [null, null]);
  }
  return out;
};

interface ConvGeometry {
  nsp: number;
  kernel: number[];
  strides: number[];
  dilations: number[];
  padsBegin: number[];
  padsEnd: number[];
}

function geometry(c: RuleContext, kernelFallback?: number[]): ConvGeometry {
  const node = c.node;
  let kernel = attrInts(node, 'kernel_shape') ?? kernelFallback;
  if (!kernel) {
    const w = c.shapeOf(c.x(1));
    if (w && w.slice(2).every((d) => typeof d === 'number')) kernel = w.slice(2) as number[];
  }
  if (!kernel) {
    throw new UserError(
      `cannot differentiate ${node.opType} node "${node.name}": its kernel shape is unknown`,
      'export the model with kernel_shape attributes on Conv/pool nodes (torch.onnx.export does this)',
    );
  }
  const nsp = kernel.length;
  const strides = attrInts(node, 'strides') ?? kernel.map(() => 1);
  const dilations = attrInts(node, 'dilations') ?? kernel.map(() => 1);
  let pads = attrInts(node, 'pads') ?? new Array<number>(2 * nsp).fill(0);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const xs = c.shapeOf(c.x(0))?.slice(2);
    if (!xs || !xs.every((d) => typeof d === 'number')) {
      throw new UserError(
        `cannot differentiate ${node.opType} node "${node.name}": auto_pad=${autoPad} needs static spatial sizes`,
        'export the model with explicit pads (auto_pad=NOTSET), as torch.onnx.export does',
      );
    }
    pads = new Array<number>(2 * nsp).fill(0);
    (xs as number[]).forEach((n, i) => {
      const out = Math.ceil(n / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + (kernel![i] - 1) * dilations[i] + 1 - n);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + nsp] = total - pads[i];
    });
  } else if (autoPad === 'VALID') {
    pads = new Array<number>(2 * nsp).fill(0);
  }
  return { nsp, kernel, strides, dilations, padsBegin: pads.slice(0, nsp), padsEnd: pads.slice(nsp) };
}

/**
 * The adjoint of a (grouped, strided, dilated, padded) convolution applied to `z`: ConvTranspose without padding,
 * padded at the end with stride-1 zeros (rows the forward never read), then cropped to `like`'s spatial extent
 * starting at the begin pads. `like` gives the spatial sizes at run time. With static spatial sizes, a single
 * ConvTranspose with the forward pads and output_padding does all of it.
 */
function convAdjoint(e: Emitter, z: string, w: string, geo: ConvGeometry, group: number, like: string, staticSpatial?: Dim[]): string {
  const { nsp, strides, dilations, padsBegin, padsEnd, kernel } = geo;
  const sizes = staticSpatial ?? e.info.shape(like)?.slice(2);
  if (sizes && sizes.length === nsp && sizes.every((d) => typeof d === 'number' && d > 0)) {
    // Static sizes: ConvTranspose crops the forward pads itself, and output_padding restores the rows a strided
    // forward never read (its remainder, always < stride), so no Pad/Slice pass is needed.
    const outputPadding = (sizes as number[]).map((n, i) => {
      const span = n + padsBegin[i] + padsEnd[i] - (dilations[i] * (kernel[i] - 1) + 1);
      return span < 0 ? -1 : span % strides[i];
    });
    if (outputPadding.every((r) => r >= 0)) {
      return e.op1('ConvTranspose', [z, w], {
        strides,
        dilations,
        group,
        kernel_shape: kernel,
        pads: [...padsBegin, ...padsEnd],
        output_padding: outputPadding.some((r) => r > 0) ? outputPadding : undefined,
      });
    }
  }
  let full = e.op1('ConvTranspose', [z, w], { strides, dilations, group, kernel_shape: kernel });
  const extra = strides.map((s) => s - 1);
  if (extra.some((v) => v > 0)) {
    full = e.op1('Pad', [full, e.i64([0, 0, ...padsBegin.map(() => 0), 0, 0, ...extra])]);
  }
  if (padsBegin.every((p) => p === 0) && strides.every((s) => s === 1) && geo.padsEnd.every((p) => p === 0)) return full;
  const axes = range(2, 2 + nsp);
  const spatial = e.op1('Slice', [e.shape(like), e.i64([2]), e.i64([2 + nsp])]);
  const ends = e.add(spatial, e.i64(padsBegin));
  return e.op1('Slice', [full, e.i64(padsBegin), ends, e.i64(axes)]);
}

/**
 * Stride-1 convolutions: the input gradient is itself a convolution (faster in onnxruntime than ConvTranspose) of
 * the output gradient with the weights flipped and transposed per group, padded by d·(k-1) minus the forward pads.
 * Undefined when it does not apply (strides, pads larger than the dilated kernel, unknown weight shape).
 */
function convInputGrad(c: RuleContext, g: string, w: string, geo: ConvGeometry, group: number): string | undefined {
  const { e } = c;
  const { nsp, kernel, dilations, padsBegin, padsEnd } = geo;
  if (geo.strides.some((s) => s !== 1)) return undefined;
  const ws = c.shapeOf(w);
  if (!ws || !ws.every((d) => typeof d === 'number')) return undefined;
  const [m, cg] = ws as number[];
  // Few input channels (e.g. the image itself): onnxruntime's blocked Conv wastes most of its lanes; ConvTranspose wins.
  if (cg * group < 8) return undefined;
  const full = kernel.map((k, i) => dilations[i] * (k - 1));
  const pb = full.map((f, i) => f - padsBegin[i]);
  const pe = full.map((f, i) => f - padsEnd[i]);
  if ([...pb, ...pe].some((p) => p < 0)) return undefined;
  const sp = range(2, 2 + nsp);
  let wt: string;
  if (group === 1) {
    wt = e.op1('Transpose', [w], { perm: [1, 0, ...sp] });
  } else {
    const w5 = e.op1('Reshape', [w, e.i64([group, m / group, cg, ...kernel])]);
    const t5 = e.op1('Transpose', [w5], { perm: [0, 2, 1, ...range(3, 3 + nsp)] });
    wt = e.op1('Reshape', [t5, e.i64([group * cg, m / group, ...kernel])]);
  }
  const flipped = e.op1('Slice', [wt, e.i64(sp.map(() => -1)), e.i64(sp.map(() => -(2 ** 62))), e.i64(sp), e.i64(sp.map(() => -1))]);
  return e.op1('Conv', [g, flipped], { dilations, group, pads: [...pb, ...pe], kernel_shape: kernel });
}

const conv: GradRule = (c) => {
  const { e } = c;
  const x = c.x(0);
  const w = c.x(1);
  const g = c.g(0)!;
  const geo = geometry(c);
  const group = attrInt(c.node, 'group', 1);
  const { nsp } = geo;
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (c.need(0)) out[0] = convInputGrad(c, g, w, geo, group) ?? convAdjoint(e, g, w, geo, group, x);
  if (c.need(1)) {
    const perm = [1, 0, ...range(2, 2 + nsp)];
    const xs = group > 1 ? splitEqual(e, x, group, c.opset) : [x];
    const gs = group > 1 ? splitEqual(e, g, group, c.opset) : [g];
    const parts = xs.map((xg, i) => {
      const r = e.op1('Conv', [e.op1('Transpose', [xg], { perm }), e.op1('Transpose', [gs[i]], { perm })], {
        strides: geo.dilations,
        dilations: geo.strides,
        pads: [...geo.padsBegin, ...geo.padsEnd],
      });
      const cropped = e.op1('Slice', [r, e.i64(geo.kernel.map(() => 0)), e.i64(geo.kernel), e.i64(range(2, 2 + nsp))]);
      return e.op1('Transpose', [cropped], { perm });
    });
    out[1] = parts.length === 1 ? parts[0] : e.op1('Concat', parts, { axis: 0 });
  }
  if (c.x(2) && c.need(2)) out[2] = e.reduceSum(g, [0, ...range(2, 2 + nsp)], false);
  return out;
};

function splitEqual(e: Emitter, x: string, parts: number, opset: number): string[] {
  return e.op('Split', [x], { axis: 1, num_outputs: opset >= 18 ? parts : undefined }, { outputs: parts });
}

const batchNorm: GradRule = (c) => {
  const { e } = c;
  if (attrInt(c.node, 'training_mode', 0) === 1) {
    throw new UserError(
      `cannot differentiate BatchNormalization node "${c.node.name}" in training mode`,
      'export the model in eval mode (model.eval()) so batch norm uses its running statistics',
    );
  }
  const [x, scale, , mean, variance] = [0, 1, 2, 3, 4].map((i) => c.x(i));
  const g = c.g(0)!;
  const r = c.requireRank(x);
  const eps = attrFloat(c.node, 'epsilon', 1e-5);
  const u = (v: string): string => (r > 2 ? e.unsqueeze(v, range(1, r - 1)) : v);
  const axes = [0, ...range(2, r)];
  const inv = e.op1('Reciprocal', [e.op1('Sqrt', [e.add(variance, e.f(eps))])]);
  const out: (string | undefined)[] = [];
  if (c.need(0)) out[0] = e.mul(g, u(e.mul(scale, inv)));
  const xc = c.need(1) || c.need(4) ? e.sub(x, u(mean)) : undefined;
  if (c.need(1)) out[1] = e.reduceSum(e.mul(g, e.mul(xc!, u(inv))), axes, false);
  const gsum = c.need(2) || c.need(3) ? e.reduceSum(g, axes, false) : undefined;
  if (c.need(2)) out[2] = gsum;
  if (c.need(3)) out[3] = e.neg(e.mul(gsum!, e.mul(scale, inv)));
  if (c.need(4)) {
    const inv3 = e.mul(inv, e.mul(inv, inv));
    out[4] = e.mul(e.reduceSum(e.mul(g, xc!), axes, false), e.mul(scale, e.mul(inv3, e.f(-0.5))));
  }
  return out;
};

const layerNorm: GradRule = (c) => {
  const { e } = c;
  const x = c.x(0);
  const scale = c.x(1);
  const bias = c.x(2);
  const g = c.g(0);
  if (!g) return [];
  const axis = attrInt(c.node, 'axis', -1);
  const eps = attrFloat(c.node, 'epsilon', 1e-5);
  let axes: number[];
  if (axis < 0) axes = range(axis, 0);
  else axes = range(axis, c.requireRank(x));
  let mean: string;
  let inv: string;
  const node = c.node;
  if ((node.domain ?? '') === '' && c.opset >= 17) {
    // Reuse the statistics the forward kernel computes: request its optional Mean / InvStdDev outputs.
    const outs = [...(node.output ?? [])];
    while (outs.length < 3) outs.push('');
    if (!outs[1]) outs[1] = e.fresh('ln_mean');
    if (!outs[2]) outs[2] = e.fresh('ln_inv_std');
    node.output = outs;
    [mean, inv] = [outs[1], outs[2]];
  } else {
    mean = e.reduceMean(x, axes, true);
    const xc0 = e.sub(x, mean);
    const variance = e.reduceMean(e.mul(xc0, xc0), axes, true);
    inv = e.op1('Reciprocal', [e.op1('Sqrt', [e.add(variance, e.f(eps))])]);
  }
  const xhat = e.mul(e.sub(x, mean), inv);
  const yShape = c.shapeOf(c.y(0));
  const out: (string | undefined)[] = [];
  if (c.need(0)) {
    const dxhat = e.mul(g, scale);
    const m1 = e.reduceMean(dxhat, axes, true);
    const m2 = e.reduceMean(e.mul(dxhat, xhat), axes, true);
    out[0] = e.mul(inv, e.sub(e.sub(dxhat, m1), e.mul(xhat, m2)));
  }
  if (c.need(1)) out[1] = e.unbroadcast(e.mul(g, xhat), scale, yShape);
  if (bias && c.need(2)) out[2] = e.unbroadcast(g, bias, yShape);
  return out;
};

const maxPool: GradRule = (c) => {
  const { e } = c;
  const node = c.node;
  if (attrInt(node, 'storage_order', 0) !== 0) {
    throw new UserError(`cannot differentiate MaxPool node "${node.name}" with storage_order=1`, 'export with the default storage order');
  }
  const outs = node.output ?? [];
  const fast = maxPoolWindows(c);
  if (fast) return [fast];
  let indices = outs[1];
  if (!indices) {
    indices = e.fresh('maxpool_indices');
    node.output = [outs[0], indices];
  }
  const x = c.x(0);
  const n = e.op1('Reshape', [e.op1('Size', [x]), e.i64([1])]);
  const zeros = e.op1('ConstantOfShape', [n], { value: floatTensor('value', [1], [0]) });
  e.minOpset = Math.max(e.minOpset, 16);
  const flatI = e.op1('Reshape', [indices, e.i64([-1])]);
  const flatG = e.op1('Reshape', [c.g(0)!, e.i64([-1])]);
  const s = e.op1('ScatterElements', [zeros, flatI, flatG], { axis: 0, reduction: 'add' });
  return [e.reshapeLike(s, x)];
};

/**
 * 2-D MaxPool with non-overlapping windows (kernel = strides, no pads/dilations, floor mode), the usual
 * `MaxPool2d(k)`: route each window's gradient to its first maximum (ArgMax over the window, as onnxruntime's
 * Indices and PyTorch do), without the slow Indices output. Undefined when the pool is not of that form.
 */
function maxPoolWindows(c: RuleContext): string | undefined {
  const { e } = c;
  const node = c.node;
  const kernel = attrInts(node, 'kernel_shape');
  if (!kernel || kernel.length !== 2) return undefined;
  const strides = attrInts(node, 'strides') ?? [1, 1];
  const pads = attrInts(node, 'pads') ?? [0, 0, 0, 0];
  const dil = attrInts(node, 'dilations') ?? [1, 1];
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (strides.some((s, i) => s !== kernel[i]) || pads.some((p) => p !== 0) || dil.some((d) => d !== 1)) return undefined;
  if (attrInt(node, 'ceil_mode', 0) !== 0 || (autoPad !== 'NOTSET' && autoPad !== 'VALID')) return undefined;
  const [kh, kw] = kernel;
  const x = c.x(0);
  const y = c.y(0);
  const g = c.g(0)!;
  const xs = c.shapeOf(x);
  const exact = !!xs && typeof xs[2] === 'number' && typeof xs[3] === 'number' && xs[2] % kh === 0 && xs[3] % kw === 0;
  const spatial = exact ? '' : e.op1('Slice', [e.shape(x), e.i64([2]), e.i64([4])]);
  const used = exact ? '' : e.mul(e.op1('Div', [spatial, e.i64(kernel)]), e.i64(kernel));
  if (exact) {
    const H = xs![2] as number;
    const W = xs![3] as number;
    const relu = c.producerOf(x);
    if (relu?.opType !== 'Relu' || (relu.domain ?? '') !== '' || c.isWrt(x)) return maxPoolMaskGrad(e, x, y, g, kh, kw, H, W, xs![1]);
    // x = Relu(·): the gradient reaches only each window's maximum, which is > 0 exactly when the pooled value is, so
    // the Relu mask applies at pooled resolution (a quarter of the work) and the Relu rule skips its own.
    const dx = maxPoolMaskGrad(e, x, y, e.maskMul(g, e.op1('Greater', [y, e.f(0)])), kh, kw, H, W, xs![1]);
    e.zeroWhereNonPositive.set(dx, x);
    return dx;
  }
  const xc = exact ? x : e.op1('Slice', [x, e.i64([0, 0]), used, e.i64([2, 3])]);
  const sy = e.shape(y);
  let dxc: string;
  if (kh === kw) {
    // Square windows: SpaceToDepth puts window element (i, j) in channel block i·k + j, [N, k·k, C, Ho, Wo] after a
    // free reshape; the first maximum per window is an ArgMax over that axis; DepthToSpace (DCR) undoes the layout.
    const k = kh;
    const s5 = e.op1('Concat', [e.op1('Slice', [sy, e.i64([0]), e.i64([1])]), e.i64([k * k]), e.op1('Slice', [sy, e.i64([1]), e.i64([4])])], { axis: 0 });
    const win = e.op1('Reshape', [e.op1('SpaceToDepth', [xc], { blocksize: k }), s5]);
    const arg = e.op1('ArgMax', [win], { axis: 1, keepdims: 1 });
    const mask = e.op1('Equal', [arg, e.i64Shaped(range(0, k * k), [1, k * k, 1, 1, 1])]);
    const gw = e.maskMul(e.unsqueeze(g, [1]), mask);
    dxc = e.op1('DepthToSpace', [e.op1('Reshape', [gw, e.op1('Concat', [e.op1('Slice', [sy, e.i64([0]), e.i64([1])]), e.i64([-1]), e.op1('Slice', [sy, e.i64([2]), e.i64([4])])], { axis: 0 })])], { blocksize: k, mode: 'DCR' });
  } else {
    // Window elements on a leading axis [kh·kw, N, C, Ho, Wo]: broadcasts against g then run over long spans.
    const s6 = e.op1('Concat', [e.op1('Slice', [sy, e.i64([0]), e.i64([3])]), e.i64([kh]), e.op1('Slice', [sy, e.i64([3]), e.i64([4])]), e.i64([kw])], {
      axis: 0,
    });
    const perm = [3, 5, 0, 1, 2, 4];
    const inv = [2, 3, 4, 0, 5, 1];
    const lead = e.op1('Concat', [e.i64([kh * kw]), sy], { axis: 0 });
    const win = e.op1('Reshape', [e.op1('Transpose', [e.op1('Reshape', [xc, s6])], { perm }), lead]);
    const arg = e.op1('ArgMax', [win], { axis: 0, keepdims: 1 });
    const mask = e.op1('Equal', [arg, e.i64Shaped(range(0, kh * kw), [kh * kw, 1, 1, 1, 1])]);
    const gw = e.maskMul(e.unsqueeze(g, [0]), mask);
    const back = e.op1('Transpose', [e.op1('Reshape', [gw, e.op1('Concat', [e.i64([kh, kw]), sy], { axis: 0 })])], { perm: inv });
    dxc = e.op1('Reshape', [back, e.shape(xc)]);
  }
  if (exact) return dxc;
  const rest = e.sub(spatial, used);
  const padVec = e.op1('Concat', [e.i64([0, 0, 0, 0, 0, 0]), rest], { axis: 0 });
  return e.op1('Pad', [dxc, padVec]);
}

/**
 * Non-overlapping 2-D MaxPool backward on a static H×W divisible by the window, as elementwise masks (onnxruntime's
 * blocked nearest Resize and MaxPool, Equal and Mul are far cheaper than SpaceToDepth/ArgMax/DepthToSpace): positions equal to their window's
 * maximum get a priority (window-first element highest); a second MaxPool of those priorities picks each window's
 * first maximum, exactly as PyTorch and onnxruntime's Indices route ties; the upsampled gradient flows only there.
 * The priorities are small integers, so "equal to the window's highest" is Relu(pr − (highest − 1)) ∈ {0, 1}, exactly:
 * float Sub and Relu run faster in onnxruntime than a second Equal and its Cast. The upsampled max and highest feed
 * only NCHW elementwise ops, so their shapes stay undeclared: declared, onnxruntime ran the same graph 4–5% slower
 * (its buffer plan changes). Both together: digits CNN vjp/forward 3.40–3.50 → 3.14–3.21 (bench/_ab-models.ts).
 */
function maxPoolMaskGrad(e: Emitter, x: string, y: string, g: string, kh: number, kw: number, H: number, W: number, channels: Dim | undefined): string {
  const xShape = e.info.shape(x);
  const up = (v: string, declare = true): string => e.upsampleNearest(v, [kh, kw], declare ? xShape : undefined);
  const prio: number[] = [];
  for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) prio.push(kh * kw - ((h % kh) * kw + (w % kw)));
  // Repeated over the channels when that stays small: onnxruntime broadcasts long spans much faster than short ones.
  const C = typeof channels === 'number' && channels * H * W <= 65536 ? channels : 1;
  const p = e.floatConst(Array.from({ length: C }, () => prio).flat(), [1, C, H, W]);
  const pr = e.mul(e.toFloat(e.op1('Equal', [x, up(y, false)])), p);
  const first = e.op1('MaxPool', [pr], { kernel_shape: [kh, kw], strides: [kh, kw] });
  const isFirst = e.op1('Relu', [e.sub(pr, up(e.sub(first, e.f(1)), false))]);
  return e.mul(up(g), isFirst);
}

const averagePool: GradRule = (c) => {
  const { e } = c;
  const node = c.node;
  const x = c.x(0);
  const geo = geometry(c);
  const { nsp, kernel } = geo;
  const kprod = kernel.reduce((a, b) => a * b, 1);
  const includePad = attrInt(node, 'count_include_pad', 0) === 1;
  if (attrInt(node, 'ceil_mode', 0) === 1) {
    const ceil = averagePoolCeil(c, geo, includePad);
    if (ceil) return [ceil];
  }
  const padded = [...geo.padsBegin, ...geo.padsEnd].some((p) => p > 0);
  // When the average excludes the padding: the number of real (non-pad) elements per window, as constants when the
  // spatial sizes are static (no run-time nodes), else as `frac` = count / kprod, an AveragePool of ones.
  let frac: string | undefined;
  let counts: { dims: number[]; values: number[] } | undefined;
  if (!includePad && padded) {
    counts = windowCounts(c.shapeOf(x)?.slice(2), c.shapeOf(c.y(0))?.slice(2), geo);
    if (!counts) {
      const spatial = e.op1('Slice', [e.shape(x), e.i64([2]), e.i64([2 + nsp])]);
      const onesShape = e.op1('Concat', [e.i64([1, 1]), spatial], { axis: 0 });
      const ones = e.op1('ConstantOfShape', [onesShape], { value: floatTensor('value', [1], [1]) });
      frac = e.op1('AveragePool', [ones], {
        kernel_shape: kernel,
        strides: geo.strides,
        pads: [...geo.padsBegin, ...geo.padsEnd],
        dilations: attrInts(node, 'dilations'),
        count_include_pad: 1,
      });
    }
  }
  const unit = geo.strides.every((s) => s === 1) && geo.dilations.every((d) => d === 1);
  if (unit && kernel.every((k, i) => geo.padsBegin[i] <= k - 1 && geo.padsEnd[i] <= k - 1)) {
    // Stride 1: the adjoint of a box sum is the box sum over the output gradient with the complementary padding
    // (k-1-pads), itself an AveragePool (fast pooling kernel, instead of a ConvTranspose per image and channel).
    const gs = counts
      ? e.mul(c.g(0)!, e.floatConst(counts.values.map((n) => kprod / n), [1, 1, ...counts.dims]))
      : frac
        ? e.div(c.g(0)!, frac)
        : c.g(0)!;
    const pads = [...kernel.map((k, i) => k - 1 - geo.padsBegin[i]), ...kernel.map((k, i) => k - 1 - geo.padsEnd[i])];
    return [e.op1('AveragePool', [gs], { kernel_shape: kernel, strides: kernel.map(() => 1), pads, count_include_pad: 1 })];
  }
  const gw = counts
    ? e.mul(c.g(0)!, e.floatConst(counts.values.map((n) => 1 / n), [1, 1, ...counts.dims]))
    : frac
      ? e.div(c.g(0)!, e.mul(frac, e.f(kprod)))
      : e.mul(c.g(0)!, e.f(1 / kprod));
  const z = e.op1('Reshape', [gw, e.i64([-1, 1, ...kernel.map(() => 0)])]);
  const w = e.fresh('avgpool_ones');
  e.initializers.push(floatTensor(w, [1, 1, ...kernel], new Array<number>(kprod).fill(1)));
  const flat = e.op1('Reshape', [x, e.i64([-1, 1, ...kernel.map(() => 0)])]);
  const back = convAdjoint(e, z, w, geo, 1, flat, c.shapeOf(x)?.slice(2));
  return [e.reshapeLike(back, x)];
};

/**
 * AveragePool with ceil_mode=1 whose last windows run past the end padding: the same windows as a floor-mode pool
 * with that overhang added to the end pads, so the gradient is the adjoint of that window sum scaled by 1/divisor per
 * window. The divisor counts the real elements (count_include_pad=0); with count_include_pad=1 it is read off the
 * forward op itself applied to constant ones (real count / divisor, folded by onnxruntime), so it follows
 * onnxruntime's treatment of the overhang. Undefined when no window overhangs (floor and ceil agree). Needs static
 * spatial sizes.
 */
function averagePoolCeil(c: RuleContext, geo: ConvGeometry, includePad: boolean): string | undefined {
  const { e, node } = c;
  const x = c.x(0);
  const xs = c.shapeOf(x)?.slice(2);
  const ys = c.shapeOf(c.y(0))?.slice(2);
  if (!xs || !ys || xs.length !== geo.nsp || ys.length !== geo.nsp || ![...xs, ...ys].every((d) => typeof d === 'number' && d > 0)) {
    throw new UserError(
      `cannot differentiate AveragePool node "${node.name ?? ''}" with ceil_mode=1: its spatial sizes are not static`,
      'give the model static spatial input sizes (or export the pooling layer with ceil_mode=False)',
    );
  }
  const sizes = xs as number[];
  const outs = ys as number[];
  const extra = outs.map((o, i) => {
    const reach = (o - 1) * geo.strides[i] + (geo.kernel[i] - 1) * geo.dilations[i] + 1;
    return Math.max(0, reach - (sizes[i] + geo.padsBegin[i] + geo.padsEnd[i]));
  });
  if (extra.every((v) => v === 0)) return undefined;
  const g2: ConvGeometry = { ...geo, padsEnd: geo.padsEnd.map((p, i) => p + extra[i]) };
  const counts = windowCounts(sizes, outs, g2);
  if (!counts) {
    throw new UserError(`cannot differentiate AveragePool node "${node.name ?? ''}" with ceil_mode=1: a window holds no input element`, 'check the pooling padding');
  }
  const cdims = [1, 1, ...outs];
  let scale: string;
  if (includePad) {
    const ones = e.floatConst(new Array<number>(sizes.reduce((a, b) => a * b, 1)).fill(1), [1, 1, ...sizes]);
    const probe = e.op1('AveragePool', [ones], {
      kernel_shape: geo.kernel,
      strides: geo.strides,
      pads: [...geo.padsBegin, ...geo.padsEnd],
      dilations: attrInts(node, 'dilations'),
      ceil_mode: 1,
      count_include_pad: 1,
    });
    scale = e.div(probe, e.floatConst(counts.values, cdims));
  } else {
    scale = e.floatConst(counts.values.map((n) => 1 / n), cdims);
  }
  const z = e.op1('Reshape', [e.mul(c.g(0)!, scale), e.i64([-1, 1, ...geo.kernel.map(() => 0)])]);
  const w = e.fresh('avgpool_ones');
  e.initializers.push(floatTensor(w, [1, 1, ...geo.kernel], new Array<number>(geo.kernel.reduce((a, b) => a * b, 1)).fill(1)));
  const flat = e.op1('Reshape', [x, e.i64([-1, 1, ...geo.kernel.map(() => 0)])]);
  return e.reshapeLike(convAdjoint(e, z, w, g2, 1, flat, sizes), x);
}

/**
 * Number of real (non-pad) elements in each pooling window, row-major over the static output positions; undefined
 * when the input or output spatial sizes are not static.
 */
function windowCounts(xs: Dim[] | undefined, ys: Dim[] | undefined, geo: ConvGeometry): { dims: number[]; values: number[] } | undefined {
  if (!xs || !ys || xs.length !== geo.nsp || ys.length !== geo.nsp) return undefined;
  if (![...xs, ...ys].every((d) => typeof d === 'number' && d > 0)) return undefined;
  const sizes = xs as number[];
  const outs = ys as number[];
  // Per axis: valid elements of each window (windows are separable, so the count is their product).
  const perAxis = outs.map((o, i) =>
    range(0, o).map((j) => {
      let n = 0;
      for (let k = 0; k < geo.kernel[i]; k++) {
        const p = j * geo.strides[i] - geo.padsBegin[i] + k * geo.dilations[i];
        if (p >= 0 && p < sizes[i]) n++;
      }
      return n;
    }),
  );
  let values = [1];
  for (const axis of perAxis) values = values.flatMap((v) => axis.map((n) => v * n));
  return values.every((n) => n > 0) ? { dims: outs, values } : undefined;
}

const globalAveragePool: GradRule = (c) => {
  const { e } = c;
  const x = c.x(0);
  const xs = c.shapeOf(x);
  const spatial = xs?.slice(2);
  if (spatial && spatial.length > 0 && spatial.every((d) => typeof d === 'number' && d > 0)) {
    // Static spatial size: one broadcast Mul by 1/count over [1, 1, ...spatial] (cheaper than Div + Expand).
    const dims = spatial as number[];
    const count = dims.reduce((a, b) => a * b, 1);
    const C = xs![1];
    if (dims.length === 2 && typeof C === 'number' && C % 16 === 0 && e.opset >= 11) {
      // Channels in blocks of 16: g/count by a depthwise 1×1 Conv, spread by a nearest Resize; onnxruntime runs both
      // in its blocked NCHWc layout (an Upsample), next to the Convs around them (3–4% of a CNN's vjp here).
      const scaled = e.op1('Conv', [c.g(0)!, e.floatConst(new Array<number>(C).fill(1 / count), [C, 1, 1, 1])], { group: C, kernel_shape: [1, 1] });
      return [e.upsampleNearest(scaled, dims, xs)];
    }
    return [e.mul(c.g(0)!, e.floatConst(new Array<number>(count).fill(1 / count), [1, 1, ...dims]))];
  }
  const count = e.toFloat(e.op1('Div', [e.op1('Size', [x]), e.op1('Size', [c.y(0)])]));
  return [e.op1('Expand', [e.div(c.g(0)!, count), e.shape(x)])];
};

const globalMaxPool: GradRule = (c) => {
  const { e } = c;
  const x = c.x(0);
  const mask = e.op1('Equal', [x, c.y(0)]);
  return [e.maskMul(e.op1('Expand', [c.g(0)!, e.shape(x)]), mask)];
};

/** ConvTranspose: the input gradient is the forward Conv with the same weights and attributes. */
const convTranspose: GradRule = (c) => {
  const { e } = c;
  const node = c.node;
  if (c.need(1)) {
    throw new UserError(
      `cannot differentiate ConvTranspose node "${node.name ?? ''}" with respect to its weight`,
      'differentiate with respect to the inputs, or to weights of other layers',
    );
  }
  if (findAttr(node, 'output_shape') || attrString(node, 'auto_pad', 'NOTSET') !== 'NOTSET') {
    throw new UserError(
      `cannot differentiate ConvTranspose node "${node.name ?? ''}" with output_shape/auto_pad`,
      'export the layer with explicit pads (torch.onnx.export does)',
    );
  }
  const geo = geometry(c);
  const g = c.g(0)!;
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (c.need(0)) {
    out[0] = e.op1('Conv', [g, c.x(1)], {
      strides: geo.strides,
      dilations: geo.dilations,
      pads: [...geo.padsBegin, ...geo.padsEnd],
      group: attrInt(node, 'group', 1),
      kernel_shape: geo.kernel,
    });
  }
  if (c.x(2) && c.need(2)) out[2] = e.reduceSum(g, [0, ...range(2, 2 + geo.nsp)], false);
  return out;
};

const instanceNorm: GradRule = (c) => {
  const { e } = c;
  const [x, scale, bias] = [0, 1, 2].map((i) => c.x(i));
  const g = c.g(0)!;
  const r = c.requireRank(x);
  const eps = attrFloat(c.node, 'epsilon', 1e-5);
  const axes = range(2, r);
  const u = (v: string): string => e.unsqueeze(v, range(1, r - 1));
  const mean = e.reduceMean(x, axes, true);
  const xc = e.sub(x, mean);
  const inv = e.op1('Reciprocal', [e.op1('Sqrt', [e.add(e.reduceMean(e.mul(xc, xc), axes, true), e.f(eps))])]);
  const xhat = e.mul(xc, inv);
  const out: (string | undefined)[] = [];
  if (c.need(0)) {
    const dxhat = e.mul(g, u(scale));
    const m1 = e.reduceMean(dxhat, axes, true);
    const m2 = e.reduceMean(e.mul(dxhat, xhat), axes, true);
    out[0] = e.mul(inv, e.sub(e.sub(dxhat, m1), e.mul(xhat, m2)));
  }
  if (c.need(1)) out[1] = e.reduceSum(e.mul(g, xhat), [0, ...axes], false);
  if (bias && c.need(2)) out[2] = e.reduceSum(g, [0, ...axes], false);
  return out;
};

export const nnRules: Record<string, GradRule> = {
  MatMul: matMul,
  Gemm: gemm,
  Conv: conv,
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
  MaxPool: maxPool,
  AveragePool: averagePool,
  GlobalAveragePool: globalAveragePool,
  GlobalMaxPool: globalMaxPool,
  ConvTranspose: convTranspose,
  InstanceNormalization: instanceNorm,
};
