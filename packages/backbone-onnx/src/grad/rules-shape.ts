/**
 * Gradient rules for shape and indexing ops: reshapes, transposes, concat/split, slicing and gathering (scattered
 * back through a flat index map), expand, and the Reduce* family. Shapes are read at run time with Shape ops, so a
 * dynamic batch or sequence length works.
 */
import type { Emitter } from './emitter.js';
import { UserError } from '@sop/core';
import { FLOAT_TYPES, attrInt, attrInts, attrString, floatTensor } from './proto.js';
import type { GradRule, RuleContext } from './rule.js';

/**
 * Reshape/Flatten: reshape the gradient back. When the input shape is static apart from a leading dim it shares with
 * the output (the batch), the target is a constant (leading 0 = copy that dim) instead of a Shape op: one node fewer,
 * and onnxruntime's shape inference keeps the symbolic batch downstream.
 */
const reshapeBack: GradRule = (c) => {
  const xs = c.shapeOf(c.x(0));
  const ys = c.shapeOf(c.y(0));
  const rest = xs?.slice(1) ?? [];
  if (xs && ys && xs.length > 0 && ys.length > 0 && xs[0] !== null && xs[0] === ys[0] && rest.every((d) => typeof d === 'number' && d > 0)) {
    return [c.e.op1('Reshape', [c.g(0)!, c.e.i64([0, ...(rest as number[])])])];
  }
  return [c.e.reshapeLike(c.g(0)!, c.x(0))];
};

/** Flat indices 0..size-1 of `x`, shaped like `x` (int64). */
function iota(e: Emitter, x: string): string {
  const n = e.op1('Size', [x]);
  return e.op1('Reshape', [e.op1('Range', [e.i64([0], true), n, e.i64([1], true)]), e.shape(x)]);
}

/** Scatter `g` into zeros shaped like `x` at the flat positions `flatIdx` (same shape as `g`), adding duplicates. */
function scatterBack(e: Emitter, x: string, idx: string, g: string, accumulate: boolean): string {
  const n = e.op1('Reshape', [e.op1('Size', [x]), e.i64([1])]);
  const zeros = e.op1('ConstantOfShape', [n], { value: floatTensor('value', [1], [0]) });
  const flatI = e.op1('Reshape', [idx, e.i64([-1])]);
  const flatG = e.op1('Reshape', [g, e.i64([-1])]);
  if (accumulate) e.minOpset = Math.max(e.minOpset, 16);
  const s = e.op1('ScatterElements', [zeros, flatI, flatG], { axis: 0, reduction: accumulate ? 'add' : undefined });
  return e.reshapeLike(s, x);
}

function padVector(rank: number, axis: number, before: number, after: number): number[] {
  const pads = new Array<number>(2 * rank).fill(0);
  pads[axis] = before;
  pads[rank + axis] = after;
  return pads;
}

/** Slice with constant starts/ends/axes, unit steps and statically known sizes on the sliced axes: zero-pad back. */
function slicePad(c: RuleContext): string | undefined {
  const x = c.x(0);
  const shape = c.shapeOf(x);
  const starts = c.constOf(c.x(1));
  const ends = c.constOf(c.x(2));
  if (!shape || !starts || !ends) return undefined;
  const axes = c.x(3) ? c.constOf(c.x(3)) : starts.map((_, i) => i);
  const steps = c.x(4) ? c.constOf(c.x(4)) : starts.map(() => 1);
  if (!axes || !steps || steps.some((s) => s !== 1)) return undefined;
  const rank = shape.length;
  const pads = new Array<number>(2 * rank).fill(0);
  for (let k = 0; k < axes.length; k++) {
    const a = axes[k] < 0 ? axes[k] + rank : axes[k];
    const n = shape[a];
    if (typeof n !== 'number') return undefined;
    const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
    const st = clamp(starts[k]);
    const en = Math.max(clamp(ends[k]), st);
    pads[a] = st;
    pads[rank + a] = n - en;
  }
  return c.e.op1('Pad', [c.g(0)!, c.e.i64(pads)]);
}

function reduceAxes(c: RuleContext): { axes: number[] | string | undefined; noop: boolean } {
  let axes: number[] | string | undefined = attrInts(c.node, 'axes');
  if (axes === undefined && c.x(1)) axes = c.constOf(c.x(1)) ?? c.x(1);
  const noop = attrInt(c.node, 'noop_with_empty_axes', 0) === 1;
  if (Array.isArray(axes) && axes.length === 0) axes = undefined;
  return { axes, noop };
}

/** The output gradient broadcast back to the input's shape (for Reduce* ops). */
function expandReduced(c: RuleContext, g: string): string {
  const { e } = c;
  const { axes } = reduceAxes(c);
  const keep = attrInt(c.node, 'keepdims', 1) === 1;
  const gg = !keep && axes !== undefined ? e.unsqueeze(g, axes) : g;
  return e.op1('Expand', [gg, e.shape(c.x(0))]);
}

function isNoop(c: RuleContext): boolean {
  const { axes, noop } = reduceAxes(c);
  return noop && axes === undefined;
}

export const shapeRules: Record<string, GradRule> = {
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Pad: (c) => {
    const { e } = c;
    const mode = attrString(c.node, 'mode', 'constant');
    if (mode !== 'constant') {
      throw new UserError(
        `cannot differentiate Pad node "${c.node.name ?? ''}" with mode=${mode}`,
        'only constant padding is differentiable here; use zero/constant padding in the model',
      );
    }
    // The adjoint of padding is cropping by the same amounts: Pad with negated pads (negative pads crop).
    const ins = c.node.input ?? [];
    const negPads = e.neg(ins[1]);
    return [e.op1('Pad', [c.g(0)!, negPads, '', ...(ins[3] ? [ins[3]] : [])])];
  },
  Transpose: (c) => {
    const perm = attrInts(c.node, 'perm');
    if (!perm) return [c.e.op1('Transpose', [c.g(0)!])];
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return [c.e.op1('Transpose', [c.g(0)!], { perm: inv })];
  },
  Expand: (c) => [c.e.unbroadcast(c.g(0)!, c.x(0), c.shapeOf(c.y(0)))],
  Concat: (c) => {
    const { e } = c;
    const ins = c.node.input ?? [];
    const axis = attrInt(c.node, 'axis', 0);
    const sizes: (number | null)[] = ins.map((n) => {
      const s = c.shapeOf(n);
      if (!s) return null;
      const d = s[axis < 0 ? axis + s.length : axis];
      return typeof d === 'number' ? d : null;
    });
    const split = sizes.every((s) => s !== null)
      ? e.i64(sizes as number[])
      : e.op1(
          'Concat',
          ins.map((n) => e.op1('Gather', [e.shape(n), e.i64([axis])])),
          { axis: 0 },
        );
    const outs = e.op('Split', [c.g(0)!, split], { axis }, { outputs: ins.length });
    return ins.map((_, i) => (c.need(i) ? outs[i] : undefined));
  },
  Split: (c) => {
    const { e } = c;
    const outs = c.node.output ?? [];
    const parts = outs.map((o, i) => c.g(i) ?? e.zerosLike(o));
    return [e.op1('Concat', parts, { axis: attrInt(c.node, 'axis', 0) })];
  },
  Slice: (c) => {
    const { e } = c;
    const x = c.x(0);
    const ins = (c.node.input ?? []).slice(1);
    const padded = slicePad(c);
    if (padded) return [padded];
    const sel = e.op1('Slice', [iota(e, x), ...ins]);
    return [scatterBack(e, x, sel, c.g(0)!, false)];
  },
  Gather: (c) => {
    const { e } = c;
    const x = c.x(0);
    const axis = attrInt(c.node, 'axis', 0);
    const idx = c.constOf(c.x(1));
    const rank = c.rankOf(x);
    if (idx && idx.length === 1 && c.rankOf(c.x(1)) === 0 && rank !== undefined) {
      // A single scalar index: pad the (unsqueezed) gradient with zeros on both sides along the axis.
      const a = axis < 0 ? axis + rank : axis;
      const n = c.shapeOf(x)?.[a];
      const i = idx[0];
      const g1 = e.unsqueeze(c.g(0)!, [a]);
      let pads: string;
      if (typeof n === 'number') {
        const ii = i < 0 ? i + n : i;
        pads = e.i64(padVector(rank, a, ii, n - 1 - ii));
      } else {
        const nRun = e.op1('Gather', [e.shape(x), e.i64([a])]);
        const before = i < 0 ? e.add(nRun, e.i64([i])) : e.i64([i]);
        const after = e.sub(e.sub(nRun, before), e.i64([1]));
        const zeros = (k: number): string[] => (k > 0 ? [e.i64(new Array<number>(k).fill(0))] : []);
        pads = e.op1('Concat', [...zeros(a), before, ...zeros(rank - 1 - a), ...zeros(a), after, ...zeros(rank - 1 - a)], { axis: 0 });
      }
      return [e.op1('Pad', [g1, pads])];
    }
    const sel = e.op1('Gather', [iota(e, x), c.x(1)], { axis });
    return [scatterBack(e, x, sel, c.g(0)!, true)];
  },
  GatherElements: (c) => {
    const { e } = c;
    const x = c.x(0);
    const sel = e.op1('GatherElements', [iota(e, x), c.x(1)], { axis: attrInt(c.node, 'axis', 0) });
    return [scatterBack(e, x, sel, c.g(0)!, true)];
  },
  ReduceSum: (c) => [isNoop(c) ? c.g(0)! : expandReduced(c, c.g(0)!)],
  ReduceMean: (c) => {
    if (isNoop(c)) return [c.g(0)!];
    const { e } = c;
    const count = e.toFloat(e.op1('Div', [e.op1('Size', [c.x(0)]), e.op1('Size', [c.y(0)])]));
    return [e.div(expandReduced(c, c.g(0)!), count)];
  },
  ReduceSumSquare: (c) => {
    const { e } = c;
    const g = isNoop(c) ? c.g(0)! : expandReduced(c, c.g(0)!);
    return [e.mul(g, e.mul(c.x(0), e.f(2)))];
  },
  ReduceMax: (c) => reduceExtreme(c),
  ReduceMin: (c) => reduceExtreme(c),
};

/** Gradient of ReduceMax/ReduceMin flows to every element equal to the extreme (ties all receive it). */
function reduceExtreme(c: RuleContext): (string | undefined)[] {
  if (isNoop(c)) return [c.g(0)!];
  const { e } = c;
  const t = c.info.elemType(c.x(0));
  if (t !== undefined && !FLOAT_TYPES.has(t)) return [];
  const yb = expandReduced(c, c.y(0));
  const mask = e.op1('Equal', [c.x(0), yb]);
  return [e.maskMul(expandReduced(c, c.g(0)!), mask)];
}
