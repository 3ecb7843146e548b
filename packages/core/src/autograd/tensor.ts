/**
 * The small reverse-mode autograd engine's value type. A Tensor is a Float32Array with a row-major shape, an optional
 * gradient buffer and a backward closure. Ops (in `ops.ts` and siblings) create new Tensors that remember their
 * parents while grad mode is on; `backward()` runs the closures in reverse topological order, accumulating into
 * `.grad` of every tensor with `requiresGrad`.
 */
import { sizeOf, type FloatTensor } from '../tensor.js';

let gradEnabled = true;

/** Run `fn` without recording a graph (inference, parameter updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Async version of {@link noGrad}; only safe when nothing else builds graphs concurrently. */
export async function noGradAsync<T>(fn: () => Promise<T>): Promise<T> {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return await fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

export class Tensor {
  grad: Float32Array | null = null;
  /** Parents in the graph (empty for leaves). */
  parents: Tensor[] = [];
  /** Propagates `this.grad` into the parents' grads. Set by ops. */
  backwardFn: (() => void) | null = null;
  /** Optional name (parameters). */
  name?: string;

  constructor(
    public data: Float32Array,
    public shape: number[],
    public requiresGrad = false,
  ) {
    if (sizeOf(shape) !== data.length) {
      throw new Error(`Tensor: shape [${shape}] needs ${sizeOf(shape)} values, got ${data.length}`);
    }
  }

  static from(data: ArrayLike<number>, shape: number[], requiresGrad = false): Tensor {
    return new Tensor(Float32Array.from(data), shape, requiresGrad);
  }

  static zeros(shape: number[], requiresGrad = false): Tensor {
    return new Tensor(new Float32Array(sizeOf(shape)), shape, requiresGrad);
  }

  static fromData(t: FloatTensor, requiresGrad = false): Tensor {
    return new Tensor(t.data, [...t.shape], requiresGrad);
  }

  get size(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Plain tensor view for package edges. */
  toData(): FloatTensor {
    return { data: this.data, shape: [...this.shape] };
  }

  /** A leaf copy with no graph. */
  detach(): Tensor {
    return new Tensor(this.data, [...this.shape], false);
  }

  item(): number {
    if (this.data.length !== 1) throw new Error(`item() on a tensor of shape [${this.shape}]`);
    return this.data[0];
  }

  /** Accumulate `g` into this.grad (allocating it on first use). */
  accumulate(g: Float32Array): void {
    if (!this.grad) this.grad = new Float32Array(this.data.length);
    const d = this.grad;
    for (let i = 0; i < d.length; i++) d[i] += g[i];
  }

  zeroGrad(): void {
    this.grad = null;
  }

  /**
   * Backpropagate from this tensor. With no `seed`, the tensor must be a scalar and the seed is 1.
   */
  backward(seed?: Float32Array): void {
    if (!seed && this.data.length !== 1) throw new Error('backward() without a seed needs a scalar tensor');
    const order: Tensor[] = [];
    const seen = new Set<Tensor>();
    // iterative DFS post-order
    const stack: Array<[Tensor, number]> = [[this, 0]];
    seen.add(this);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [t, i] = top;
      if (i < t.parents.length) {
        top[1]++;
        const p = t.parents[i];
        if (!seen.has(p) && (p.requiresGrad || p.parents.length)) {
          seen.add(p);
          stack.push([p, 0]);
        }
      } else {
        order.push(t);
        stack.pop();
      }
    }
    this.grad = seed ? Float32Array.from(seed) : new Float32Array([1]);
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      if (t.backwardFn && t.grad) t.backwardFn();
      // free intermediate grads to save memory (keep leaves' grads)
      if (t.parents.length && t !== this) t.grad = null;
    }
  }
}

/**
 * Create an op result. If grad mode is on and any parent needs a gradient, the result records its parents and
 * `backward` (which reads `out.grad` and calls `parent.accumulate(...)` on parents that need it).
 */
export function result(data: Float32Array, shape: number[], parents: Tensor[], backward: (out: Tensor) => void): Tensor {
  const needs = gradEnabled && parents.some((p) => p.requiresGrad);
  const out = new Tensor(data, shape, needs);
  if (needs) {
    out.parents = parents;
    out.backwardFn = () => backward(out);
  }
  return out;
}

/**
 * A trainable leaf. A Float32Array carrying extra own properties (e.g. the `.data`/`.shape` of the init helpers'
 * arrays) is copied into a plain one, so that hot loops only ever see one array shape (monomorphic in V8).
 */
export function parameter(data: Float32Array, shape: number[], name?: string): Tensor {
  const plain = Object.getPrototypeOf(data) === Float32Array.prototype && !Object.hasOwn(data, 'data') && !Object.hasOwn(data, 'shape');
  const t = new Tensor(plain ? data : new Float32Array(data), shape, true);
  t.name = name;
  return t;
}
