import type { GroupComponentContext } from '../group-generator.js';
import type { GroupSelector, GroupSelectorFactory } from '../group-selector.js';
import { UserError } from '../errors.js';
import { ParamCache } from './param-cache.js';
import { Tensor, parameter, matmul, matmulNT, scale, sparsemax, normalInit, eye, isGradEnabled } from '../autograd/index.js';
import { kernels, selectSparsemaxKernel, selectCombineKernel, padColumns, matmulPaddedKernel, sparsemaxCombineKernel, type SelectCombined } from '../kernels/index.js';

export interface SparsemaxSelectorOptions {
  /** γ_s. Default 1. */
  groupSelScale?: number;
  /** 'hidden' (backbone's pooled state), 'output' (the group's output vector) or 'auto' (default: hidden when the backbone exposes it and has a classifier weight matrix). */
  selectorKeys?: 'auto' | 'hidden' | 'output';
}

/**
 * The reference's group selector (methods §2.3, §9.4): one sparse cross-attention head. Class queries come from the
 * backbone's classifier weight matrix when it has one (else random, or the identity for output keys, so that the
 * initial logit is the group's own class score); query/key projections start as identities; α = sparsemax over the
 * m groups of γ_s⟨W_q q_c, W_k h_j⟩, separately per class. Parameters: classQueries, query, key.
 */
export class SparsemaxGroupSelector implements GroupSelector {
  readonly name = 'sparsemax';
  readonly keys: 'hidden' | 'output';
  readonly keyDim: number;
  readonly gammaS: number;
  readonly params: Record<string, Tensor> = {};
  private readonly cache = new ParamCache();

  constructor(context: GroupComponentContext, options: SparsemaxSelectorOptions = {}) {
    const { backbone, rng } = context;
    this.gammaS = options.groupSelScale ?? 1;
    const sel = options.selectorKeys ?? 'auto';
    if (!['auto', 'hidden', 'output'].includes(sel)) throw new UserError(`model.selectorKeys: unknown '${sel}'`, 'use auto, hidden or output');
    const cw = backbone.info.classifierWeight;
    const canHidden = backbone.capabilities.hidden && !!backbone.info.hiddenDim;
    if (sel === 'hidden' && !canHidden) throw new UserError(`model.selectorKeys: backbone '${backbone.name}' exposes no hidden state`, 'use selectorKeys: output (or auto)');
    this.keys = sel === 'output' ? 'output' : sel === 'hidden' ? 'hidden' : canHidden && cw && cw.shape[1] === backbone.info.hiddenDim ? 'hidden' : 'output';
    const C = context.numOutputs;
    if (this.keys === 'hidden') {
      const k = backbone.info.hiddenDim!;
      this.keyDim = k;
      let q: Float32Array;
      if (cw && cw.shape[0] === C && cw.shape[1] === k) q = Float32Array.from(cw.data);
      else q = normalInit([C, k], 1 / Math.sqrt(k), rng).data; // no classifier matrix: random class queries
      this.params.classQueries = parameter(q, [C, k]);
    } else {
      this.keyDim = C;
      // identity: the initial logit of group j for class c is the group's own class score z_{j,c}
      this.params.classQueries = parameter(Float32Array.from(eye(C).data), [C, C]);
    }
    this.params.query = parameter(Float32Array.from(eye(this.keyDim).data), [this.keyDim, this.keyDim]);
    this.params.key = parameter(Float32Array.from(eye(this.keyDim).data), [this.keyDim, this.keyDim]);
  }

  parameters(): Record<string, Tensor> {
    return this.params;
  }

  /** γ_s·W_k·(Q_c W_q)ᵀ [k, C] (reused at inference while the parameters are unchanged). */
  private projection(): Tensor {
    const { classQueries, query, key } = this.params;
    return this.cache.get('u', [classQueries, query, key], () => {
      const qp = matmul(classQueries, query); // [C, k]
      return scale(matmulNT(key, qp), this.gammaS);
    });
  }

  select(keys: Tensor): Tensor {
    // S = γ_s (H W_k)(Q_c W_q)ᵀ, evaluated as H (γ_s W_k (Q_c W_q)ᵀ): [k, C] instead of projecting all B·m keys
    const u = this.projection();
    const kern = isGradEnabled() ? null : kernels();
    if (kern && keys.ndim === 3) {
      // inference: the [B·m, k] × [k, C] product and the sparsemax in one WebAssembly call
      const [B, m, k] = keys.shape;
      const C = u.shape[1];
      return new Tensor(selectSparsemaxKernel(kern, keys.data, B, m, k, u.data, C), [B, m, C]);
    }
    return sparsemax(matmul(keys, u), 1); // α over groups, per class [B, m, C]
  }

  /**
   * Inference with the kernels: α for keys [B, m, k] and SOP's combination with the group outputs z and scales c
   * ([B, m, C], [B, m]) in one WebAssembly call (see SopModel.combine); undefined when grad is on or without the
   * kernels (then `select` and the combination run separately). Same values as the separate calls.
   */
  selectAndCombine(keys: Tensor, z: Float32Array, scales: Float32Array): SelectCombined | undefined {
    const kern = isGradEnabled() ? null : kernels();
    if (!kern || keys.ndim !== 3) return undefined;
    const [B, m, k] = keys.shape;
    const u = this.projection();
    return selectCombineKernel(kern, keys.data, B, m, k, u.data, u.shape[1], z, scales);
  }

  /** u laid out by padColumns for chunkedSelect, and the projection it was made from. */
  private padded?: { u: Tensor; uT: Float32Array };

  /**
   * {@link selectAndCombine} for keys that arrive in row blocks (SopModel.runGroups: the backbone's hidden states,
   * chunk by chunk, multiplied while they are still in cache): `score` writes the scores S = keys·u of `rows` key rows
   * into S at row `at`; `combine` then gives α and the combination from all B·m rows of S. Same values as
   * selectAndCombine on the whole keys. Undefined when grad is on or without the kernels.
   */
  chunkedSelect(): ChunkedSelect | undefined {
    const kern = isGradEnabled() ? null : kernels();
    if (!kern) return undefined;
    const u = this.projection();
    const [k, C] = u.shape;
    // padded once per projection (the cache returns the same tensor while the parameters are unchanged)
    if (this.padded?.u !== u) this.padded = { u, uT: padColumns(u.data, k, C) };
    const uT = this.padded.uT;
    return {
      numOutputs: C,
      score: (keys, rows, S, at) => matmulPaddedKernel(kern, keys, rows, k, uT, C, S, at * C),
      combine: (S, B, m, z, scales) => sparsemaxCombineKernel(kern, S, B, m, C, z, scales),
    };
  }
}

/** See {@link SparsemaxGroupSelector.chunkedSelect}. */
export interface ChunkedSelect {
  /** C: scores per key row. */
  numOutputs: number;
  /** S[at .. at + rows) = keys [rows, k] · u. */
  score(keys: Float32Array, rows: number, S: Float32Array, at: number): void;
  /** α and SOP's combination from the scores S [B·m, C], the group outputs z [B, m, C] and scales c [B, m]. */
  combine(S: Float32Array, B: number, m: number, z: Float32Array, scales: Float32Array): SelectCombined;
}

export const sparsemaxSelectorFactory: GroupSelectorFactory = {
  name: 'sparsemax',
  create: (context, options) => new SparsemaxGroupSelector(context, options as SparsemaxSelectorOptions),
};
