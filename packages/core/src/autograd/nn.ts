/** Neural-network layers and losses on the autograd engine: layer norm, dropout, cross-entropy, MSE. */
import { UserError } from '../errors.js';
import type { Rng } from '../rng.js';
import { sameShape } from './broadcast.js';
import { giveGrad } from './grad.js';
import { result, type Tensor } from './tensor.js';

/** Layer normalisation over the last axis (biased variance, like torch); `gamma`/`beta` of shape [D] or null. */
export function layerNorm(x: Tensor, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): Tensor {
  if (x.ndim < 1) throw new UserError('layerNorm needs at least one dimension', 'pass a tensor of shape [..., D]');
  const D = x.shape[x.ndim - 1];
  for (const p of [gamma, beta]) {
    if (p && p.size !== D) throw new UserError(`layerNorm: affine parameter of shape [${p.shape.join(', ')}] does not match D = ${D}`, `give gamma/beta of shape [${D}]`);
  }
  const X = x.data;
  const rows = D === 0 ? 0 : X.length / D;
  const xhat = new Float32Array(X.length);
  const rstd = new Float64Array(rows);
  const y = new Float32Array(X.length);
  const G = gamma?.data;
  const Bt = beta?.data;
  for (let r = 0; r < rows; r++) {
    const base = r * D;
    let mu = 0;
    for (let j = 0; j < D; j++) mu += X[base + j];
    mu /= D;
    let v = 0;
    for (let j = 0; j < D; j++) {
      const d = X[base + j] - mu;
      v += d * d;
    }
    const rs = 1 / Math.sqrt(v / D + eps);
    rstd[r] = rs;
    for (let j = 0; j < D; j++) {
      const h = (X[base + j] - mu) * rs;
      xhat[base + j] = h;
      let o = G ? h * G[j] : h;
      if (Bt) o += Bt[j];
      y[base + j] = o;
    }
  }
  const parents = [x];
  if (gamma) parents.push(gamma);
  if (beta) parents.push(beta);
  return result(y, [...x.shape], parents, (out) => {
    const g = out.grad!;
    if (gamma?.requiresGrad) {
      const gg = new Float32Array(D);
      for (let r = 0; r < rows; r++) for (let j = 0; j < D; j++) gg[j] += g[r * D + j] * xhat[r * D + j];
      giveGrad(gamma, gg);
    }
    if (beta?.requiresGrad) {
      const gb = new Float32Array(D);
      for (let r = 0; r < rows; r++) for (let j = 0; j < D; j++) gb[j] += g[r * D + j];
      giveGrad(beta, gb);
    }
    if (x.requiresGrad) {
      const gx = new Float32Array(X.length);
      for (let r = 0; r < rows; r++) {
        const base = r * D;
        let m1 = 0;
        let m2 = 0;
        for (let j = 0; j < D; j++) {
          const gh = G ? g[base + j] * G[j] : g[base + j];
          m1 += gh;
          m2 += gh * xhat[base + j];
        }
        m1 /= D;
        m2 /= D;
        const rs = rstd[r];
        for (let j = 0; j < D; j++) {
          const gh = G ? g[base + j] * G[j] : g[base + j];
          gx[base + j] = rs * (gh - m1 - xhat[base + j] * m2);
        }
      }
      giveGrad(x, gx);
    }
  });
}

/** Inverted dropout: zero each entry with probability p and scale the rest by 1/(1−p). Identity when not training. */
export function dropout(x: Tensor, p: number, rng: Rng, training: boolean): Tensor {
  if (!(p >= 0 && p <= 1)) throw new UserError(`dropout probability ${p} is not in [0, 1]`, 'use a probability between 0 and 1');
  if (!training || p === 0) return x;
  const n = x.size;
  const mask = new Float32Array(n);
  const keep = p === 1 ? 0 : 1 / (1 - p);
  for (let i = 0; i < n; i++) mask[i] = rng.next() < p ? 0 : keep;
  const X = x.data;
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = X[i] * mask[i];
  return result(y, [...x.shape], [x], (out) => {
    const g = out.grad!;
    const gx = new Float32Array(n);
    for (let i = 0; i < n; i++) gx[i] = g[i] * mask[i];
    giveGrad(x, gx);
  });
}

/** Mean cross-entropy of logits [B, C] against integer labels; scalar result. */
export function crossEntropy(logits: Tensor, labels: Int32Array): Tensor {
  if (logits.ndim !== 2) throw new UserError(`crossEntropy expects logits [B, C], got [${logits.shape.join(', ')}]`, 'reshape the logits to [batch, classes]');
  const [B, C] = logits.shape;
  if (labels.length !== B) throw new UserError(`crossEntropy: ${labels.length} labels for a batch of ${B}`, 'give one label per row');
  const Z = logits.data;
  const probs = new Float32Array(B * C);
  let loss = 0;
  for (let b = 0; b < B; b++) {
    const lab = labels[b];
    if (lab < 0 || lab >= C) throw new UserError(`crossEntropy: label ${lab} is out of range for ${C} classes`, `use labels in [0, ${C - 1}]`);
    const base = b * C;
    let mx = -Infinity;
    for (let c = 0; c < C; c++) if (Z[base + c] > mx) mx = Z[base + c];
    let s = 0;
    for (let c = 0; c < C; c++) {
      const e = Math.exp(Z[base + c] - mx);
      probs[base + c] = e;
      s += e;
    }
    for (let c = 0; c < C; c++) probs[base + c] /= s;
    loss += mx + Math.log(s) - Z[base + lab];
  }
  const y = new Float32Array([B > 0 ? loss / B : NaN]);
  return result(y, [], [logits], (out) => {
    const g = out.grad![0] / B;
    const gz = new Float32Array(B * C);
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) gz[b * C + c] = probs[b * C + c] * g;
      gz[b * C + labels[b]] -= g;
    }
    giveGrad(logits, gz);
  });
}

/** Mean squared error over all entries; scalar result. */
export function mse(pred: Tensor, target: Tensor): Tensor {
  if (!sameShape(pred.shape, target.shape)) {
    throw new UserError(`mse: prediction [${pred.shape.join(', ')}] and target [${target.shape.join(', ')}] differ in shape`, 'give targets with the prediction’s shape');
  }
  const P = pred.data;
  const T = target.data;
  const n = P.length;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const d = P[i] - T[i];
    s += d * d;
  }
  return result(new Float32Array([s / n]), [], [pred, target], (out) => {
    const f = (2 * out.grad![0]) / n;
    const gp = new Float32Array(n);
    for (let i = 0; i < n; i++) gp[i] = (P[i] - T[i]) * f;
    if (target.requiresGrad) {
      const gt = new Float32Array(n);
      for (let i = 0; i < n; i++) gt[i] = -gp[i];
      giveGrad(target, gt);
    }
    if (pred.requiresGrad) giveGrad(pred, gp);
  });
}
