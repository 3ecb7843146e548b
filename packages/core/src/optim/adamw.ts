/**
 * AdamW with torch semantics: decoupled weight decay (p ← p − lr·wd·p), then the bias-corrected Adam update
 * p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + eps). Parameters without a gradient are skipped.
 */
import { UserError } from '../errors.js';
import type { Tensor } from '../autograd/tensor.js';

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  /** Decoupled weight decay; torch's default 0.01. */
  weightDecay?: number;
}

export interface AdamWState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private t = 0;
  private m: Float32Array[];
  private v: Float32Array[];

  constructor(
    readonly params: Tensor[],
    opts: AdamWOptions,
  ) {
    if (!(opts.lr >= 0)) throw new UserError(`AdamW learning rate ${opts.lr} is not a non-negative number`, 'set lr to e.g. 1e-3');
    this.lr = opts.lr;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    this.m = params.map((p) => new Float32Array(p.size));
    this.v = params.map((p) => new Float32Array(p.size));
  }

  /** One update with learning rate lr·lrMultiplier (the schedule's value). */
  step(lrMultiplier = 1): void {
    this.t++;
    const lr = this.lr * lrMultiplier;
    const b1 = this.beta1;
    const b2 = this.beta2;
    const bc1 = 1 - Math.pow(b1, this.t);
    const bc2 = 1 - Math.pow(b2, this.t);
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    const decay = 1 - lr * this.weightDecay;
    const eps = this.eps;
    for (let pi = 0; pi < this.params.length; pi++) {
      const p = this.params[pi];
      const g = p.grad;
      if (!g) continue;
      const w = p.data;
      const m = this.m[pi];
      const v = this.v[pi];
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        const mi = b1 * m[i] + (1 - b1) * gi;
        const vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = w[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
      }
    }
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  getState(): AdamWState {
    return { step: this.t, m: this.m.map((x) => Float32Array.from(x)), v: this.v.map((x) => Float32Array.from(x)) };
  }

  setState(s: AdamWState): void {
    if (s.m.length !== this.params.length || s.v.length !== this.params.length) {
      throw new UserError(`optimizer state has ${s.m.length} moment buffers for ${this.params.length} parameters`, 'load the state saved with the same model');
    }
    for (let i = 0; i < this.params.length; i++) {
      if (s.m[i].length !== this.params[i].size || s.v[i].length !== this.params[i].size) {
        throw new UserError(`optimizer state for parameter ${i} has the wrong size`, 'load the state saved with the same model');
      }
    }
    this.t = s.step;
    this.m = s.m.map((x) => Float32Array.from(x));
    this.v = s.v.map((x) => Float32Array.from(x));
  }
}
