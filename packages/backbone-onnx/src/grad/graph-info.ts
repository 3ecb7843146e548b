/**
 * A light static type and shape inference over an ONNX graph: element types (to know which tensors can carry a
 * gradient), ranks and, where cheap, dims (numbers or symbolic names), plus the values of small constant tensors
 * (initializers, Constant nodes). Exported models rarely carry value_info, and several gradient rules need ranks
 * (MatMul's transposes, BatchNormalization's channel broadcast); dims that cannot be inferred are `null`.
 */
import {
  DT,
  type Dim,
  type IGraphProto,
  type INodeProto,
  type ITensorProto,
  attrInt,
  attrInts,
  findAttr,
  num,
  tensorDims,
  tensorValues,
  valueInfoShape,
} from './proto.js';

export interface TensorInfo {
  elemType?: number;
  /** Undefined when even the rank is unknown. */
  shape?: Dim[];
}

export interface ConstValue {
  dims: number[];
  values: number[];
}

const SAME_SHAPE = new Set([
  'Abs', 'Neg', 'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Erf', 'Exp', 'Log',
  'Sqrt', 'Reciprocal', 'Softplus', 'Softsign', 'Gelu', 'FastGelu', 'Sin', 'Cos', 'Floor', 'Ceil', 'Round', 'Sign', 'Not',
  'Cast', 'CastLike', 'Identity', 'Dropout', 'Softmax', 'LogSoftmax', 'LayerNormalization', 'BatchNormalization',
  'InstanceNormalization', 'LRN', 'Clip', 'IsNaN', 'IsInf', 'CumSum', 'Mish', 'ThresholdedRelu', 'Shrink', 'SkipLayerNormalization',
  'QuickGelu', 'BiasGelu',
]);
const BROADCAST = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Where', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or',
  'Xor', 'Max', 'Min', 'Sum', 'Mean', 'PRelu', 'Mod', 'BitShift',
]);
const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin']);
const BOOL_OUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);

function combineDims(d: Dim, v: Dim): Dim {
  if (v === 1) return d;
  if (d === 1 || d === v) return v;
  // A known size other than 1 wins over an unknown or symbolic one (which must then be 1 or equal).
  if (typeof d === 'number') return d;
  if (typeof v === 'number') return v;
  return null;
}

function broadcastDims(shapes: (Dim[] | undefined)[]): Dim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const rank = Math.max(0, ...shapes.map((s) => s!.length));
  const out: Dim[] = [];
  for (let k = 0; k < rank; k++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const i = s!.length - rank + k;
      if (i >= 0) d = combineDims(d, s![i]);
    }
    out.push(d);
  }
  return out;
}

export class GraphInfo {
  readonly infos = new Map<string, TensorInfo>();
  readonly consts = new Map<string, ConstValue>();
  readonly initializers = new Map<string, ITensorProto>();
  /** Values of small integer tensors (shape arithmetic), possibly symbolic: numbers, dim names, or null. */
  readonly sym = new Map<string, Dim[]>();

  constructor(graph: IGraphProto, sortedNodes: INodeProto[]) {
    for (const t of graph.initializer ?? []) {
      const name = t.name ?? '';
      this.initializers.set(name, t);
      this.infos.set(name, { elemType: t.dataType ?? undefined, shape: tensorDims(t) });
      const size = tensorDims(t).reduce((a, b) => a * b, 1);
      if (size <= 64) {
        const values = tensorValues(t);
        if (values) this.consts.set(name, { dims: tensorDims(t), values });
      }
    }
    for (const v of [...(graph.input ?? []), ...(graph.valueInfo ?? []), ...(graph.output ?? [])]) {
      const vi = valueInfoShape(v);
      const prev = this.infos.get(v.name ?? '');
      this.infos.set(v.name ?? '', { elemType: vi.elemType ?? prev?.elemType, shape: vi.shape ?? prev?.shape });
    }
    for (const node of sortedNodes) this.inferNode(node);
  }

  get(name: string): TensorInfo {
    return this.infos.get(name) ?? {};
  }

  rank(name: string): number | undefined {
    return this.infos.get(name)?.shape?.length;
  }

  shape(name: string): Dim[] | undefined {
    return this.infos.get(name)?.shape;
  }

  elemType(name: string): number | undefined {
    return this.infos.get(name)?.elemType;
  }

  constValues(name: string): number[] | undefined {
    return this.consts.get(name)?.values;
  }

  /** Known (possibly symbolic) values of a small int tensor, flattened. */
  symValues(name: string): Dim[] | undefined {
    return this.consts.get(name)?.values ?? this.sym.get(name);
  }

  private set(name: string | undefined, info: TensorInfo): void {
    if (!name) return;
    const prev = this.infos.get(name);
    // value_info from the file wins for dims it knows.
    this.infos.set(name, { elemType: prev?.elemType ?? info.elemType, shape: prev?.shape ?? info.shape });
  }

  /** Output spatial sizes of a Conv/pool node when the input's are known numbers (explicit pads only). */
  private poolDims(node: INodeProto, x: Dim[], w: Dim[] | undefined): Dim[] {
    const nsp = x.length - 2;
    const unknown = x.slice(2).map(() => null);
    const kernel = attrInts(node, 'kernel_shape') ?? (w && w.slice(2).every((d) => typeof d === 'number') ? (w.slice(2) as number[]) : undefined);
    const autoPad = findAttr(node, 'auto_pad');
    if (!kernel || kernel.length !== nsp || (autoPad && autoPad.s && new TextDecoder().decode(autoPad.s) !== 'NOTSET')) return unknown;
    const strides = attrInts(node, 'strides') ?? kernel.map(() => 1);
    const dil = attrInts(node, 'dilations') ?? kernel.map(() => 1);
    const pads = attrInts(node, 'pads') ?? new Array<number>(2 * nsp).fill(0);
    const ceil = attrInt(node, 'ceil_mode', 0) === 1;
    return x.slice(2).map((n, i) => {
      if (typeof n !== 'number') return null;
      const span = n + pads[i] + pads[i + nsp] - ((kernel[i] - 1) * dil[i] + 1);
      let o = (ceil ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1;
      if (ceil && (o - 1) * strides[i] >= n + pads[i]) o -= 1;
      return o;
    });
  }

  /** Propagate values of small integer tensors (shape computations), symbolically where dims are named. */
  private inferValues(node: INodeProto): void {
    const op = node.opType ?? '';
    const ins = node.input ?? [];
    const out = node.output?.[0];
    if (!out || this.consts.has(out)) return;
    const v = (i: number): Dim[] | undefined => (ins[i] ? this.symValues(ins[i]) : undefined);
    const set = (vals: Dim[] | undefined): void => {
      if (!vals || vals.length > 16) return;
      if (vals.every((d) => typeof d === 'number')) {
        const r = this.shape(out);
        this.consts.set(out, { dims: r ? (r.map((d) => d ?? vals.length) as number[]) : [vals.length], values: vals as number[] });
      } else this.sym.set(out, vals);
    };
    const t = this.elemType(out);
    if (t !== undefined && t !== DT.INT64 && t !== DT.INT32 && t !== DT.BOOL) return;
    const bin = (f: (a: Dim, b: Dim) => Dim): void => {
      const a = v(0);
      const b = v(1);
      if (!a || !b) return;
      const n = Math.max(a.length, b.length);
      if (a.length !== n && a.length !== 1) return;
      if (b.length !== n && b.length !== 1) return;
      set(Array.from({ length: n }, (_, i) => f(a[a.length === 1 ? 0 : i], b[b.length === 1 ? 0 : i])));
    };
    const num2 = (a: Dim, b: Dim): boolean => typeof a === 'number' && typeof b === 'number';
    switch (op) {
      case 'Shape': {
        const x = this.shape(ins[0]);
        if (!x) return;
        const start = attrInt(node, 'start', 0);
        const end = attrInt(node, 'end', x.length);
        return set(x.slice(start < 0 ? start + x.length : start, end < 0 ? end + x.length : end));
      }
      case 'Gather': {
        const d = v(0);
        const idx = ins[1] ? this.constValues(ins[1]) : undefined;
        if (!d || !idx || attrInt(node, 'axis', 0) !== 0) return;
        return set(idx.map((i) => d[i < 0 ? i + d.length : i] ?? null));
      }
      case 'Unsqueeze':
      case 'Squeeze':
      case 'Identity':
      case 'Cast':
      case 'Reshape':
      case 'Flatten':
        return set(v(0));
      case 'Concat': {
        const parts = ins.map((_, i) => v(i));
        if (parts.some((p) => !p)) return;
        return set(parts.flatMap((p) => p!));
      }
      case 'Slice': {
        const d = v(0);
        const st = ins[1] ? this.constValues(ins[1]) : undefined;
        const en = ins[2] ? this.constValues(ins[2]) : undefined;
        const steps = ins[4] ? this.constValues(ins[4]) : [1];
        if (!d || !st || !en || st.length !== 1 || !steps || steps[0] !== 1) return;
        const n = d.length;
        const c = (q: number): number => Math.min(Math.max(q < 0 ? q + n : q, 0), n);
        return set(d.slice(c(st[0]), c(en[0])));
      }
      case 'Add':
        return bin((a, b) => (num2(a, b) ? (a as number) + (b as number) : a === 0 ? b : b === 0 ? a : null));
      case 'Sub':
        return bin((a, b) => (num2(a, b) ? (a as number) - (b as number) : b === 0 ? a : null));
      case 'Mul':
        return bin((a, b) => (num2(a, b) ? (a as number) * (b as number) : a === 1 ? b : b === 1 ? a : null));
      case 'Div':
        return bin((a, b) => (num2(a, b) && b !== 0 ? Math.trunc((a as number) / (b as number)) : b === 1 ? a : null));
      case 'Equal':
        return bin((a, b) => (num2(a, b) ? (a === b ? 1 : 0) : (typeof a === 'string' && typeof b === 'number' && b < 0) || (typeof b === 'string' && typeof a === 'number' && a < 0) ? 0 : a !== null && a === b ? 1 : null));
      case 'Where': {
        const cnd = v(0);
        const a = v(1);
        const b = v(2);
        if (!cnd || !a || !b) return;
        const n = Math.max(cnd.length, a.length, b.length);
        const at = (arr: Dim[], i: number): Dim => arr[arr.length === 1 ? 0 : i];
        return set(Array.from({ length: n }, (_, i) => {
          const k = at(cnd, i);
          const x = at(a, i);
          const y = at(b, i);
          return k === 1 ? x : k === 0 ? y : x === y ? x : null;
        }));
      }
      case 'ConstantOfShape': {
        const shape = v(0);
        const value = findAttr(node, 'value')?.t;
        const fill = value ? (tensorValues(value)?.[0] ?? 0) : 0;
        if (!shape || shape.length !== 1 || typeof shape[0] !== 'number') return;
        return set(new Array<Dim>(shape[0]).fill(fill));
      }
      default:
        return;
    }
  }

  private inferNode(node: INodeProto): void {
    const op = node.opType ?? '';
    const ins = node.input ?? [];
    const outs = node.output ?? [];
    const s = (i: number): Dim[] | undefined => (ins[i] ? this.shape(ins[i]) : undefined);
    const t0 = ins.map((n) => (n ? this.elemType(n) : undefined)).find((t) => t !== undefined);

    if (op === 'Constant') {
      const value = findAttr(node, 'value');
      if (value?.t) {
        const dims = tensorDims(value.t);
        this.set(outs[0], { elemType: value.t.dataType ?? DT.FLOAT, shape: dims });
        const vals = dims.reduce((a, b) => a * b, 1) <= 64 ? tensorValues(value.t) : undefined;
        if (vals && outs[0]) this.consts.set(outs[0], { dims, values: vals });
        return;
      }
      const vf = findAttr(node, 'value_float');
      const vi = findAttr(node, 'value_int');
      const vfs = findAttr(node, 'value_floats');
      const vis = findAttr(node, 'value_ints');
      if (vf) this.set(outs[0], { elemType: DT.FLOAT, shape: [] });
      if (vi) {
        this.set(outs[0], { elemType: DT.INT64, shape: [] });
        this.consts.set(outs[0], { dims: [], values: [num(vi.i as number)] });
      }
      if (vfs) this.set(outs[0], { elemType: DT.FLOAT, shape: [(vfs.floats ?? []).length] });
      if (vis) {
        const vals = (vis.ints ?? []).map((v) => num(v as number));
        this.set(outs[0], { elemType: DT.INT64, shape: [vals.length] });
        this.consts.set(outs[0], { dims: [vals.length], values: vals });
      }
      return;
    }

    // Element types.
    let elemType: number | undefined = t0;
    if (op === 'Cast') elemType = attrInt(node, 'to');
    else if (INT64_OUT.has(op)) elemType = DT.INT64;
    else if (BOOL_OUT.has(op)) elemType = DT.BOOL;
    else if (op === 'ConstantOfShape') elemType = findAttr(node, 'value')?.t?.dataType ?? DT.FLOAT;
    else if (op === 'Where') elemType = ins[1] ? this.elemType(ins[1]) : undefined;
    else if (op === 'CastLike') elemType = ins[1] ? this.elemType(ins[1]) : undefined;
    else if (op === 'RandomNormal' || op === 'RandomUniform' || op === 'EyeLike') elemType = attrInt(node, 'dtype', DT.FLOAT);
    for (let k = 0; k < outs.length; k++) this.set(outs[k], { elemType });
    if ((op === 'MaxPool' || op === 'TopK') && outs[1]) this.set(outs[1], { elemType: DT.INT64 });
    if (op === 'Dropout' && outs[1]) this.set(outs[1], { elemType: DT.BOOL });

    this.inferValues(node);

    // Shapes.
    const out = (shape: Dim[] | undefined): void => this.set(outs[0], { elemType, shape });
    const axesOf = (inputIndex: number, attr = 'axes'): number[] | undefined =>
      attrInts(node, attr) ?? (ins[inputIndex] ? this.constValues(ins[inputIndex]) : undefined);
    const x = s(0);
    switch (true) {
      case SAME_SHAPE.has(op):
        out(x);
        return;
      case BROADCAST.has(op):
        out(broadcastDims(ins.map((n) => (n ? this.shape(n) : []))));
        return;
      case op === 'MatMul': {
        const a = s(0);
        const b = s(1);
        if (!a || !b) return;
        if (a.length === 1 && b.length === 1) return out([]);
        if (a.length === 1) return out([...b.slice(0, -2), b[b.length - 1]]);
        if (b.length === 1) return out(a.slice(0, -1));
        const batch = broadcastDims([a.slice(0, -2), b.slice(0, -2)]);
        return out(batch ? [...batch, a[a.length - 2], b[b.length - 1]] : undefined);
      }
      case op === 'Gemm': {
        const a = s(0);
        const b = s(1);
        const m = a ? (attrInt(node, 'transA', 0) ? a[1] : a[0]) : null;
        const n = b ? (attrInt(node, 'transB', 0) ? b[0] : b[1]) : null;
        return out([m ?? null, n ?? null]);
      }
      case op === 'Conv' || op === 'ConvTranspose' || op === 'MaxPool' || op === 'AveragePool' || op === 'LpPool': {
        if (!x) return;
        const w = s(1);
        const c = op === 'Conv' ? (w ? w[0] : null) : op === 'ConvTranspose' ? null : x[1];
        const spatial = op === 'ConvTranspose' ? x.slice(2).map(() => null) : this.poolDims(node, x, w);
        const shape = [x[0], c, ...spatial];
        out(shape);
        if (op === 'MaxPool' && outs[1]) this.set(outs[1], { elemType: DT.INT64, shape });
        return;
      }
      case op === 'GlobalAveragePool' || op === 'GlobalMaxPool':
        return out(x ? [x[0], x[1], ...x.slice(2).map(() => 1)] : undefined);
      case op === 'Flatten': {
        if (!x) return out([null, null]);
        const axis = attrInt(node, 'axis', 1);
        const a = axis < 0 ? axis + x.length : axis;
        const prod = (d: Dim[]): Dim => (d.every((v) => typeof v === 'number') ? (d as number[]).reduce((p, q) => p * q, 1) : d.length === 1 ? d[0] : null);
        return out([prod(x.slice(0, a)), prod(x.slice(a))]);
      }
      case op === 'Reshape': {
        const target = this.symValues(ins[1]);
        if (target) {
          const dims: Dim[] = target.map((v, i) => (v === 0 ? (x ? (x[i] ?? null) : null) : v === -1 ? null : v));
          const minus = target.indexOf(-1);
          if (minus >= 0 && x && x.every((d) => typeof d === 'number') && dims.every((d, i) => i === minus || typeof d === 'number')) {
            const total = (x as number[]).reduce((a, b) => a * b, 1);
            const rest = dims.reduce<number>((a, d, i) => (i === minus ? a : a * (d as number)), 1);
            if (rest > 0) dims[minus] = total / rest;
          } else if (minus >= 0 && x) {
            // -1 standing for exactly the dims of x that the other targets do not use, e.g. [batch, 32, -1] from
            // [batch, 32, 4, 4] or [batch, -1] from [batch, 16]: product of x's remaining numeric dims.
            const others = dims.filter((_, i) => i !== minus);
            const rest = [...x];
            let ok = true;
            for (const d of others) {
              const k = rest.findIndex((r) => r === d && d !== null);
              if (k < 0) {
                ok = false;
                break;
              }
              rest.splice(k, 1);
            }
            if (ok && rest.every((r) => typeof r === 'number')) dims[minus] = (rest as number[]).reduce((a, b) => a * b, 1);
            else if (ok && rest.length === 1) dims[minus] = rest[0];
          }
          return out(dims);
        }
        const ss = s(1);
        if (ss && typeof ss[0] === 'number') return out(new Array<Dim>(ss[0]).fill(null));
        return;
      }
      case op === 'Transpose': {
        if (!x) return;
        const perm = attrInts(node, 'perm') ?? x.map((_, i) => x.length - 1 - i);
        return out(perm.map((p) => x[p]));
      }
      case op === 'Squeeze': {
        const axes = axesOf(1);
        if (!x) return;
        if (!axes) {
          if (x.every((d) => d !== null)) return out(x.filter((d) => d !== 1));
          return;
        }
        const norm = axes.map((a) => (a < 0 ? a + x.length : a));
        return out(x.filter((_, i) => !norm.includes(i)));
      }
      case op === 'Unsqueeze': {
        const axes = axesOf(1);
        if (!x || !axes) return;
        const r = x.length + axes.length;
        const norm = axes.map((a) => (a < 0 ? a + r : a));
        const res: Dim[] = [];
        let j = 0;
        for (let i = 0; i < r; i++) res.push(norm.includes(i) ? 1 : x[j++]);
        return out(res);
      }
      case op.startsWith('Reduce') || op === 'ArgMax' || op === 'ArgMin': {
        if (!x) return;
        const keep = attrInt(node, 'keepdims', 1);
        let axes: number[] | undefined;
        if (op === 'ArgMax' || op === 'ArgMin') axes = [attrInt(node, 'axis', 0)];
        else {
          axes = attrInts(node, 'axes');
          if (!axes && ins[1]) {
            axes = this.constValues(ins[1]);
            if (!axes) return out(keep ? x.map(() => null) : undefined);
          }
        }
        if (!axes || axes.length === 0) {
          if (attrInt(node, 'noop_with_empty_axes', 0) && axes) return out(x);
          return out(keep ? x.map(() => 1) : []);
        }
        const norm = axes.map((a) => (a < 0 ? a + x.length : a));
        return out(keep ? x.map((d, i) => (norm.includes(i) ? 1 : d)) : x.filter((_, i) => !norm.includes(i)));
      }
      case op === 'Concat': {
        const shapes = ins.map((n) => this.shape(n));
        const first = shapes.find((v) => v !== undefined);
        if (!first) return;
        const axisRaw = attrInt(node, 'axis', 0);
        const axis = axisRaw < 0 ? axisRaw + first.length : axisRaw;
        let total: Dim = 0;
        for (const sh of shapes) {
          const d = sh ? sh[axis] : null;
          total = typeof total === 'number' && typeof d === 'number' ? total + d : null;
        }
        return out(first.map((d, i) => (i === axis ? total : d)));
      }
      case op === 'Split': {
        if (!x) return;
        for (const o of outs) this.set(o, { elemType, shape: x.map(() => null) });
        return;
      }
      case op === 'Slice': {
        if (!x) return;
        const starts = this.constValues(ins[1]);
        const ends = this.constValues(ins[2]);
        const axes = ins[3] ? this.constValues(ins[3]) : starts?.map((_, i) => i);
        const steps = ins[4] ? this.constValues(ins[4]) : starts?.map(() => 1);
        const dims: Dim[] = [...x];
        if (!starts || !ends || !axes || !steps) return out(x.map(() => null));
        axes.forEach((axRaw, k) => {
          const ax = axRaw < 0 ? axRaw + x.length : axRaw;
          const n = x[ax];
          if (typeof n !== 'number') {
            dims[ax] = null;
            return;
          }
          const step = steps[k];
          const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);
          let st = starts[k] < 0 ? starts[k] + n : starts[k];
          let en = ends[k] < 0 ? ends[k] + n : ends[k];
          if (step > 0) {
            st = clamp(st, 0, n);
            en = clamp(en, 0, n);
            dims[ax] = Math.max(0, Math.ceil((en - st) / step));
          } else {
            st = clamp(st, 0, n - 1);
            en = clamp(en, -1, n - 1);
            dims[ax] = Math.max(0, Math.ceil((st - en) / -step));
          }
        });
        if (outs[0] && this.consts.has(ins[0]) && x.length === 1 && steps.every((v) => v === 1) && typeof dims[0] === 'number') {
          const vals = this.constValues(ins[0])!;
          const a0 = starts[0] < 0 ? Math.max(0, starts[0] + vals.length) : Math.min(starts[0], vals.length);
          this.consts.set(outs[0], { dims: [dims[0]], values: vals.slice(a0, a0 + dims[0]) });
        }
        return out(dims);
      }
      case op === 'Tile': {
        if (!x) return;
        const reps = ins[1] ? this.constValues(ins[1]) : undefined;
        if (!reps || reps.length !== x.length) return out(x.map(() => null));
        return out(x.map((d, i) => (reps[i] === 1 ? d : typeof d === 'number' ? d * reps[i] : null)));
      }
      case op === 'Resize': {
        if (!x) return;
        const axes = (attrInts(node, 'axes') ?? x.map((_, i) => i)).map((a) => (a < 0 ? a + x.length : a));
        const scales = ins[2] ? this.constValues(ins[2]) : undefined;
        const sizes = ins[3] ? this.symValues(ins[3]) : undefined;
        const dims: Dim[] = x.map(() => null);
        const policy = findAttr(node, 'keep_aspect_ratio_policy');
        if (scales && scales.length > 0 && scales.length === axes.length) {
          dims.splice(0, dims.length, ...x);
          axes.forEach((a, k) => {
            const d = x[a];
            dims[a] = scales[k] === 1 ? d : typeof d === 'number' ? Math.floor(Math.fround(d * Math.fround(scales[k]))) : null;
          });
        } else if (sizes && sizes.length === axes.length && !policy) {
          dims.splice(0, dims.length, ...x);
          axes.forEach((a, k) => (dims[a] = sizes[k]));
        }
        return out(dims);
      }
      case op === 'DepthToSpace' || op === 'SpaceToDepth': {
        if (!x || x.length !== 4) return out(x ? x.map(() => null) : undefined);
        const b = attrInt(node, 'blocksize', 0);
        const [n, ch, h, w] = x;
        const mul = (d: Dim, k: number): Dim => (typeof d === 'number' && b > 0 ? d * k : null);
        const div = (d: Dim, k: number): Dim => (typeof d === 'number' && b > 0 && d % k === 0 ? d / k : null);
        const bb = b * b;
        return op === 'DepthToSpace' ? out([n, div(ch, bb), mul(h, b), mul(w, b)]) : out([n, mul(ch, bb), div(h, b), div(w, b)]);
      }
      case op === 'Pad' || op === 'Upsample' || op === 'TopK':
        return out(x ? x.map(() => null) : undefined);
      case op === 'Gather': {
        const idx = s(1);
        if (!x || !idx) return;
        const axisRaw = attrInt(node, 'axis', 0);
        const axis = axisRaw < 0 ? axisRaw + x.length : axisRaw;
        return out([...x.slice(0, axis), ...idx, ...x.slice(axis + 1)]);
      }
      case op === 'GatherElements' || op === 'ScatterElements' || op === 'ScatterND':
        return out(op === 'GatherElements' ? s(1) : x);
      case op === 'Expand': {
        const target = this.symValues(ins[1]);
        if (target) return out(broadcastDims([x, target]));
        const ss = s(1);
        if (x && ss && typeof ss[0] === 'number') return out(new Array<Dim>(Math.max(x.length, ss[0])).fill(null));
        return;
      }
      case op === 'Shape': {
        if (!x) return out([null]);
        const start = attrInt(node, 'start', 0);
        const end = attrInt(node, 'end', x.length);
        const a = start < 0 ? start + x.length : start;
        const b = end < 0 ? end + x.length : Math.min(end, x.length);
        const dims = x.slice(a, b);
        if (outs[0] && dims.every((d) => typeof d === 'number')) this.consts.set(outs[0], { dims: [dims.length], values: dims as number[] });
        return out([Math.max(0, b - a)]);
      }
      case op === 'Size':
        return out([]);
      case op === 'ConstantOfShape': {
        const target = this.symValues(ins[0]);
        if (target) return out(target);
        const ss = s(0);
        if (ss && typeof ss[0] === 'number') return out(new Array<Dim>(ss[0]).fill(null));
        return;
      }
      case op === 'Range':
        return out([null]);
      case op === 'NonZero':
        return out(x ? [x.length, null] : undefined);
      case op === 'OneHot': {
        const idx = s(0);
        return out(idx ? [...idx, null] : undefined);
      }
      default:
        return;
    }
  }
}

/** Kahn topological order of a graph's nodes (ONNX requires it already, but be robust to files that are not). */
export function topoSort(graph: IGraphProto): INodeProto[] {
  const nodes = graph.node ?? [];
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => o && producer.set(o, i)));
  const indeg = new Array<number>(nodes.length).fill(0);
  const users = nodes.map(() => [] as number[]);
  nodes.forEach((n, i) => {
    const deps = new Set<number>();
    for (const name of [...(n.input ?? []), ...subgraphInputs(n)]) {
      const p = name ? producer.get(name) : undefined;
      if (p !== undefined && p !== i) deps.add(p);
    }
    indeg[i] = deps.size;
    for (const p of deps) users[p].push(i);
  });
  const queue: number[] = [];
  indeg.forEach((d, i) => d === 0 && queue.push(i));
  const order: INodeProto[] = [];
  while (queue.length > 0) {
    const i = queue.shift()!;
    order.push(nodes[i]);
    for (const u of users[i]) if (--indeg[u] === 0) queue.push(u);
  }
  if (order.length !== nodes.length) return [...nodes];
  return order;
}

/** Outer-scope names read by a node's subgraphs (If/Loop/Scan bodies). */
function subgraphInputs(node: INodeProto): string[] {
  const out: string[] = [];
  for (const a of node.attribute ?? []) {
    for (const g of [a.g, ...(a.graphs ?? [])]) {
      if (!g) continue;
      const local = new Set<string>([...(g.input ?? []).map((v) => v.name ?? ''), ...(g.initializer ?? []).map((t) => t.name ?? '')]);
      for (const n of g.node ?? []) {
        for (const o of n.output ?? []) local.add(o);
        for (const i of n.input ?? []) if (i && !local.has(i)) out.push(i);
      }
    }
  }
  return out;
}
