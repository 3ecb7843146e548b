/**
 * Appends gradient nodes and constants to a graph under construction: fresh names, cached scalar/int constants,
 * cached Shape nodes, and the shared helpers the per-op rules use (elementwise arithmetic, reductions in the form the
 * graph's opset expects, and un-broadcasting a gradient back to an operand's shape).
 */
import type { GraphInfo } from './graph-info.js';
import { DT, type AttrValue, type Dim, type INodeProto, type ITensorProto, floatTensor, int64Tensor, makeAttrs } from './proto.js';

export class Emitter {
  readonly nodes: INodeProto[] = [];
  readonly initializers: ITensorProto[] = [];
  /** Smallest default-domain opset the emitted nodes need (ScatterElements with reduction: 16). */
  minOpset = 0;
  /**
   * Gradient tensors known to be zero wherever the named forward tensor is ≤ 0 (gradient name → forward tensor): a
   * Relu whose output gradient is one of these needs no mask of its own.
   */
  readonly zeroWhereNonPositive = new Map<string, string>();
  /**
   * Shapes of emitted float tensors that ONNX shape inference would lose (e.g. the batch symbol after a Resize by
   * scales), written to the graph's value_info: onnxruntime lays out convolutions in its blocked NCHWc format only
   * where it can prove that the operands of an elementwise op have equal shapes.
   */
  readonly declared = new Map<string, Dim[]>();
  private counter = 0;
  private readonly constCache = new Map<string, string>();
  private readonly shapeCache = new Map<string, string>();

  constructor(
    private readonly names: Set<string>,
    readonly opset: number,
    readonly info: GraphInfo,
  ) {}

  fresh(hint: string): string {
    let name: string;
    do name = `sop_grad/${hint}_${this.counter++}`;
    while (this.names.has(name));
    this.names.add(name);
    return name;
  }

  /** Add a node; returns its output names (fresh unless given). */
  op(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue | undefined> = {},
    options: { outputs?: number | string[]; domain?: string } = {},
  ): string[] {
    const outs = Array.isArray(options.outputs)
      ? options.outputs
      : Array.from({ length: options.outputs ?? 1 }, () => this.fresh(opType));
    this.nodes.push({
      opType,
      input: inputs,
      output: outs,
      name: this.fresh(`${opType}_node`),
      attribute: makeAttrs(attrs),
      domain: options.domain ?? '',
    });
    return outs;
  }

  op1(opType: string, inputs: string[], attrs: Record<string, AttrValue | undefined> = {}): string {
    return this.op(opType, inputs, attrs)[0];
  }

  /** A float32 scalar constant (initializer). */
  f(value: number): string {
    const key = `f:${value}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.fresh('const');
      this.initializers.push(floatTensor(name, [], [value]));
      this.constCache.set(key, name);
    }
    return name;
  }

  /** An int64 constant: 1-D by default, a scalar when `scalar`. */
  i64(values: number[], scalar = false): string {
    const key = `i:${scalar ? 's' : ''}${values.join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.fresh('const');
      this.initializers.push(int64Tensor(name, scalar ? [] : [values.length], values));
      this.constCache.set(key, name);
    }
    return name;
  }

  /** An int64 constant with the given dims. */
  i64Shaped(values: number[], dims: number[]): string {
    const key = `i:${dims.join('x')}:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.fresh('const');
      this.initializers.push(int64Tensor(name, dims, values));
      this.constCache.set(key, name);
    }
    return name;
  }

  /** A float32 constant with the given dims (1-D by default). */
  floatConst(values: number[], dims: number[] = [values.length]): string {
    const key = `ft:${dims.join('x')}:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.fresh('const');
      this.initializers.push(floatTensor(name, dims, values));
      this.constCache.set(key, name);
    }
    return name;
  }

  shape(x: string): string {
    let s = this.shapeCache.get(x);
    if (!s) {
      s = this.op1('Shape', [x]);
      this.shapeCache.set(x, s);
    }
    return s;
  }

  add(a: string, b: string): string {
    return this.op1('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op1('Sub', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op1('Mul', [a, b]);
  }
  div(a: string, b: string): string {
    return this.op1('Div', [a, b]);
  }
  neg(a: string): string {
    return this.op1('Neg', [a]);
  }

  /** `g` where `mask` holds, else 0 (Mul by the mask as float: much faster in onnxruntime than a broadcasting Where). */
  maskMul(g: string, mask: string): string {
    return this.mul(g, this.op1('Cast', [mask], { to: DT.FLOAT }));
  }

  /** Record the shape of the float tensor `name` (see `declared`); returns `name`. */
  declare(name: string, shape: Dim[] | undefined): string {
    if (shape) this.declared.set(name, shape);
    return name;
  }

  /**
   * Nearest upsampling of an [N, C, ...spatial] tensor by integer `factors` per spatial axis (Resize by scales,
   * asymmetric/floor: the form onnxruntime runs in its NCHWc layout), its result declared as `shape`.
   */
  upsampleNearest(v: string, factors: number[], shape: Dim[] | undefined): string {
    const r = this.op1('Resize', [v, '', this.floatConst([1, 1, ...factors])], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
    return this.declare(r, shape);
  }

  /** Float zeros shaped like `x`. */
  zerosLike(x: string): string {
    return this.op1('ConstantOfShape', [this.shape(x)], { value: floatTensor('value', [1], [0]) });
  }

  /** Cast to float32 (used for counts and integer exponents). */
  toFloat(x: string): string {
    return this.op1('Cast', [x], { to: DT.FLOAT });
  }

  /** Sum a list of gradient contributions. */
  sum(parts: string[]): string {
    return parts.length === 1 ? parts[0] : this.op1('Sum', parts);
  }

  /** ReduceSum (axes as an input since opset 13); `axes` undefined reduces everything. */
  reduceSum(x: string, axes: number[] | string | undefined, keepdims: boolean, noopWithEmptyAxes = false): string {
    const inputs = [x];
    if (axes !== undefined) inputs.push(typeof axes === 'string' ? axes : this.i64(axes));
    return this.op1('ReduceSum', inputs, { keepdims: keepdims ? 1 : 0, noop_with_empty_axes: noopWithEmptyAxes ? 1 : undefined });
  }

  /** ReduceMean with static axes, in the graph's opset form (attribute before 18, input from 18). */
  reduceMean(x: string, axes: number[], keepdims: boolean): string {
    if (this.opset >= 18) return this.op1('ReduceMean', [x, this.i64(axes)], { keepdims: keepdims ? 1 : 0 });
    return this.op1('ReduceMean', [x], { axes, keepdims: keepdims ? 1 : 0 });
  }

  unsqueeze(x: string, axes: number[] | string): string {
    return this.op1('Unsqueeze', [x, typeof axes === 'string' ? axes : this.i64(axes)]);
  }

  squeeze(x: string, axes: number[]): string {
    return this.op1('Squeeze', [x, this.i64(axes)]);
  }

  reshapeLike(g: string, like: string): string {
    return this.op1('Reshape', [g, this.shape(like)]);
  }

  /**
   * Sum `g` (shaped like the broadcast result, whose static shape is `gShape` when known) down to the shape of
   * `target`: over leading axes target lacks and over axes where target has size 1. Static when shapes allow it,
   * otherwise computed with Shape ops at run time (so a dynamic batch works).
   */
  unbroadcast(g: string, target: string, gShape: Dim[] | undefined): string {
    const t = this.info.shape(target);
    if (t && gShape) {
      const lead = gShape.length - t.length;
      if (lead >= 0) {
        const axes: number[] = [];
        let decided = true;
        for (let i = 0; i < gShape.length; i++) {
          if (i < lead) {
            axes.push(i);
            continue;
          }
          const td = t[i - lead];
          const gd = gShape[i];
          if (td === 1) {
            if (gd !== 1) axes.push(i);
          } else if (td === null || gd === null || (td !== gd && !(typeof td === 'number' && typeof gd === 'number'))) {
            decided = false;
            break;
          }
        }
        if (decided) {
          if (axes.length === 0) return g;
          const leadingOnly = axes.every((a) => a < lead);
          if (leadingOnly) return this.reduceSum(g, axes, false);
          return this.reshapeLike(this.reduceSum(g, axes, true), target);
        }
      }
    }
    // Run-time path: pad target's shape with leading ones to g's rank; reduce over axes where it is 1.
    const st = this.shape(target);
    let ones: string;
    const gr = gShape?.length;
    if (gr !== undefined && t !== undefined) {
      if (gr - t.length < 0) return g;
      ones = this.i64(new Array<number>(gr - t.length).fill(1));
    } else {
      const diff = this.op1('Sub', [this.op1('Size', [this.shape(g)]), this.op1('Size', [st])]);
      const diff1 = this.op1('Reshape', [this.op1('Max', [diff, this.i64([0], true)]), this.i64([1])]);
      ones = this.op1('ConstantOfShape', [diff1], { value: int64Tensor('value', [1], [1]) });
    }
    const padded = this.op1('Concat', [ones, st], { axis: 0 });
    const axes = this.op1('Reshape', [this.op1('NonZero', [this.op1('Equal', [padded, this.i64([1], true)])]), this.i64([-1])]);
    return this.op1('Reshape', [this.reduceSum(g, axes, true, true), st]);
  }
}
