import type { GeneratedGroups, GenerateOptions, GroupComponentContext, GroupGenerator, GroupGeneratorFactory } from '../group-generator.js';
import type { Inputs } from '../inputs.js';
import type { FeatureSpace } from '../feature-space.js';
import { sizeOf } from '../tensor.js';
import type { Rng } from '../rng.js';
import { UserError } from '../errors.js';
import {
  Tensor,
  parameter,
  noGrad,
  isGradEnabled,
  add,
  scale,
  matmul,
  matmulNT,
  reshape,
  indexSelect,
  concat,
  blur,
  topkMass,
  xavierUniform,
  normalInit,
} from '../autograd/index.js';
import { firstRows } from '../inputs.js';
import { ParamCache } from './param-cache.js';
import { kernels, genLogitsKernel, genTopkKernel, type GenLogitsOperands } from '../kernels/index.js';

export interface AttentionGeneratorOptions {
  /** Generator heads (trained one after another, all used at inference). Default 1. */
  heads?: number;
  /** 'even' (fixed evenly spaced query features, default) or 'random' (m random queries per training step). */
  queries?: 'even' | 'random';
  /** 'projection' (linear projection of raw feature values + position embedding, default) or 'backbone' (the backbone's `embeddings` output, frozen). */
  embeddings?: 'projection' | 'backbone';
  /** Width of the projection embeddings and of the query/key space. Default 32. */
  embedDim?: number;
  /** Learned position embedding added to the projection embeddings. Default true. */
  positionEmbedding?: boolean;
  /** γ_g. Default 1/√embedDim (the reference has no 1/√d factor but uses 0.06 at width 768). */
  groupGenScale?: number;
  /** Gaussian blur of the attention logits over the feature grid; off by default. */
  blur?: { kernel: number; sigma: number } | false;
}

/**
 * The reference's group generator (methods §2.1, §9.2–9.3): per-feature embeddings E (a learned projection of each
 * feature's raw values plus a position embedding, or the backbone's own per-feature states), m query features
 * (evenly spaced, or random), logits γ_g·(E_q W_q)(E W_k)ᵀ per head, optional Gaussian blur over the feature grid,
 * softmax over features, top-k binarisation to masks, scale c = 2·Σ_top a − 1 (the only gradient path).
 * Parameters: proj.weight, proj.bias, pos (projection mode) and heads.<h>.query / heads.<h>.key.
 */
export class AttentionGroupGenerator implements GroupGenerator {
  readonly name = 'attention';
  readonly numFeatures: number;
  readonly numHeads: number;
  readonly queryMode: 'even' | 'random';
  readonly embeddingMode: 'projection' | 'backbone';
  readonly embedDim: number;
  readonly inputEmbedDim: number;
  readonly valueDim: number;
  readonly gammaG: number;
  readonly blurOpt: { kernel: number; sigma: number } | false;
  readonly params: Record<string, Tensor> = {};
  private readonly cache = new ParamCache();

  constructor(
    readonly context: GroupComponentContext,
    options: AttentionGeneratorOptions = {},
  ) {
    const { backbone, space, sample, rng } = context;
    const d = space.numFeatures;
    this.numFeatures = d;
    this.numHeads = options.heads ?? 1;
    this.queryMode = options.queries ?? 'even';
    this.embeddingMode = options.embeddings ?? 'projection';
    this.embedDim = options.embedDim ?? 32;
    this.gammaG = options.groupGenScale ?? 1 / Math.sqrt(this.embedDim);
    this.blurOpt = options.blur ?? false;
    checkInt(this.numHeads, 'model.heads', 1, 64, 'e.g. heads: 1');
    checkInt(this.embedDim, 'model.embedDim', 1, 1 << 16, 'e.g. embedDim: 32');
    if (!['even', 'random'].includes(this.queryMode)) throw new UserError(`model.queries: unknown '${this.queryMode}'`, 'use even or random');
    if (!['projection', 'backbone'].includes(this.embeddingMode)) throw new UserError(`model.embeddings: unknown '${this.embeddingMode}'`, 'use projection or backbone');
    if (this.blurOpt && !(this.blurOpt.kernel >= 1 && this.blurOpt.sigma > 0)) throw new UserError('model.blur: needs kernel ≥ 1 and sigma > 0', 'write e.g. blur: {kernel: 3, sigma: 1}');
    if (this.embeddingMode === 'projection') {
      const v = space.featureValues(firstRows(sample, 1));
      this.valueDim = v.shape[2];
      this.inputEmbedDim = this.embedDim;
      this.params['proj.weight'] = parameter(xavierUniform([this.valueDim, this.embedDim], rng).data, [this.valueDim, this.embedDim]);
      this.params['proj.bias'] = parameter(new Float32Array(this.embedDim), [this.embedDim]);
      if (options.positionEmbedding ?? true) this.params['pos'] = parameter(normalInit([d, this.embedDim], 1, rng).data, [d, this.embedDim]);
    } else {
      if (!backbone.capabilities.embeddings || !backbone.info.embeddingDim) {
        throw new UserError(`model.embeddings: backbone '${backbone.name}' exposes no per-feature embeddings`, 'use embeddings: projection (the default), or expose an embeddings output from the backbone');
      }
      this.valueDim = 0;
      this.inputEmbedDim = backbone.info.embeddingDim;
    }
    for (let h = 0; h < this.numHeads; h++) {
      this.params[`heads.${h}.query`] = parameter(xavierUniform([this.inputEmbedDim, this.embedDim], rng).data, [this.inputEmbedDim, this.embedDim]);
      this.params[`heads.${h}.key`] = parameter(xavierUniform([this.inputEmbedDim, this.embedDim], rng).data, [this.inputEmbedDim, this.embedDim]);
    }
  }

  parameters(): Record<string, Tensor> {
    return this.params;
  }

  /** Candidate (head, query feature) pairs for m groups. */
  candidates(m: number, head: number | undefined, rng?: Rng): { heads: Int32Array; queries: Int32Array } {
    const d = this.numFeatures;
    const heads = new Int32Array(m);
    const queries = new Int32Array(m);
    if (head !== undefined) {
      if (this.queryMode === 'random' && rng) {
        const perm = rng.permutation(d).slice(0, m).sort();
        queries.set(perm);
      } else for (let i = 0; i < m; i++) queries[i] = Math.floor((i * d) / m);
      heads.fill(head);
    } else {
      // all heads stacked (H·d candidates), m kept at evenly spaced indices (as the reference)
      const n = this.numHeads * d;
      for (let i = 0; i < m; i++) {
        const idx = Math.floor((i * n) / m);
        heads[i] = Math.floor(idx / d);
        queries[i] = idx % d;
      }
    }
    return { heads, queries };
  }

  async generate(inputs: Inputs, options: GenerateOptions): Promise<GeneratedGroups> {
    const d = this.numFeatures;
    const n = Math.max(1, Math.min(d, Math.floor(d * options.keep + 1e-6)));
    const { heads, queries } = this.candidates(options.groups, options.head, this.queryMode === 'random' ? options.rng : undefined);
    const src: GeneratorSource = this.embeddingMode === 'backbone' ? { embeddings: await this.backboneEmbeddings(inputs) } : projectionSource(this.context.space, inputs);
    const run = <T>(f: () => T): T => (options.grad ? f() : noGrad(f));
    const gen = run(() => this.attend(src, inputs, heads, queries, n, options.deletion ?? false, options.attention ?? true));
    // (no object spread: see withX in maskers/common.ts)
    return { attention: gen.attention, masks: gen.masks, scales: gen.scales, queries, heads };
  }

  /** The backbone's per-feature embeddings [B, d, e_in] (frozen). */
  private async backboneEmbeddings(inputs: Inputs): Promise<Tensor> {
    const out = await this.context.backbone.forward(inputs, { outputs: ['embeddings'] });
    if (!out.embeddings) throw new UserError(`backbone '${this.context.backbone.name}' returned no embeddings`, 'use model.embeddings: projection');
    return Tensor.fromData(out.embeddings);
  }

  /**
   * The parameter-only products of the factored logits (see {@link headLogits}) for head h and query features qs, or
   * undefined when building E, Q and K needs fewer multiply-adds (or the embeddings come from the backbone). Reused
   * between inference calls while the parameters are unchanged.
   */
  private factoredProducts(h: number, qs: Int32Array): { G: Tensor; aBk: Tensor; Abk: Tensor; abk: Tensor } | undefined {
    if (this.embeddingMode !== 'projection') return undefined;
    const Wq = this.params[`heads.${h}.query`];
    const Wk = this.params[`heads.${h}.key`];
    const Wp = this.params['proj.weight'];
    const bias = this.params['proj.bias'];
    const pos = this.params['pos'];
    // multiply-adds per example of the two forms (the factored one wins when p is below the embedding width)
    const [p, e, d, m] = [this.valueDim, this.embedDim, this.numFeatures, qs.length];
    if (m * p * (p + 2 * d) >= d * p * e + (m + d) * e * e + m * d * e) return undefined;
    const used = pos ? [Wp, bias, pos, Wq, Wk] : [Wp, bias, Wq, Wk];
    return this.cache.get(this.productsKey(h, qs), used, () => {
      const base = pos ? add(pos, bias) : reshape(bias, [1, this.embedDim]); // [d | 1, e]
      const baseQ = pos ? indexSelect(base, 0, qs) : base; // [m | 1, e]
      const A = scale(matmul(Wp, Wq), this.gammaG); // [p, e]
      const Bk = matmul(Wp, Wk); // [p, e]
      const a = scale(matmul(baseQ, Wq), this.gammaG); // [m | 1, e]
      const bk = matmul(base, Wk); // [d | 1, e]
      return { G: matmulNT(A, Bk), aBk: matmulNT(a, Bk), Abk: matmulNT(A, bk), abk: matmulNT(a, bk) };
    });
  }

  /**
   * Backbone embeddings E [B, d, E_in] in the factored form: the logits γ·(E_q·W_q)·(E·W_k)ᵀ are (E_q·G)·Eᵀ with
   * G = γ·W_q·W_kᵀ [E_in, E_in] (the form gen_logits computes, with zero bias terms). Undefined when building Q and K
   * needs fewer multiply-adds per example (E_in large against the key width, e.g. a 768-wide BERT). Reused between
   * inference calls while W_q and W_k are unchanged.
   */
  private embeddingProducts(h: number, m: number): { G: Tensor; operands: (emb: Tensor | GenLogitsOperands['V'], qs: Int32Array, B?: number) => GenLogitsOperands } | undefined {
    const [E, e, d] = [this.inputEmbedDim, this.embedDim, this.numFeatures];
    if (m * E * (E + d) >= (m + d) * E * e + m * d * e) return undefined;
    const Wq = this.params[`heads.${h}.query`];
    const Wk = this.params[`heads.${h}.key`];
    const G = this.cache.get(`emb:${h}`, [Wq, Wk], () => scale(matmulNT(Wq, Wk), this.gammaG));
    if (this.zeros?.length !== E) this.zeros = new Float32Array(E);
    const zeros = this.zeros;
    // gen_logits' operands for embeddings emb [B, d, E_in] (or B examples' projection embeddings, built by the kernel):
    // V = emb, p = E_in, and zero bias terms
    // (one object literal, no spread: see withX in maskers/common.ts)
    const operands = (emb: Tensor | GenLogitsOperands['V'], qs: Int32Array, B = 0): GenLogitsOperands => {
      const t = emb instanceof Tensor;
      return { V: t ? emb.data : emb, B: t ? emb.shape[0] : B, d: t ? emb.shape[1] : d, p: E, qs, G: G.data, aBk: zeros, Abk: zeros, abk: zeros.subarray(0, 1), abkCols: 1 };
    };
    return { G, operands };
  }

  /** Zero bias operands of gen_logits for {@link embeddingProducts} (E_in values; never written). */
  private zeros?: Float32Array;

  /** The last cache key of {@link factoredProducts} and what it was built from (inference repeats the same queries). */
  private lastKey?: { h: number; qs: Int32Array; key: string };

  /** `h:q0,q1,…`, the cache key of the factored products of head h for the query features qs. */
  private productsKey(h: number, qs: Int32Array): string {
    const last = this.lastKey;
    if (last && last.h === h && last.qs.length === qs.length) {
      let same = true;
      for (let i = 0; i < qs.length && same; i++) same = last.qs[i] === qs[i];
      if (same) return last.key;
    }
    const key = `${h}:${qs.join(',')}`;
    this.lastKey = { h, qs: qs.slice(), key };
    return key;
  }

  /**
   * Attention logits γ_g·Q·Kᵀ [B, |qs|, d] of head h for the query features `qs`.
   *
   * Projection embeddings are E = V·W_p + b (b = bias + position embedding [d, e]) for the raw feature values
   * V [B, d, p], so Q = V_q·A + a and K = V·B_k + b_k with A = γ·W_p·W_q, B_k = W_p·W_k, a = γ·b_q·W_q, b_k = b·W_k. The
   * logits expand to (V_q·G + a·B_kᵀ)·Vᵀ + V_q·(A·b_kᵀ) + a·b_kᵀ with G = A·B_kᵀ [p, p]: every product with the batch
   * is then of width p (the values per feature) instead of the embedding width e, and the parameter-only products are
   * computed once per call. Same function (and gradients) as building E, Q and K; float32 rounding differs. Used when it
   * needs fewer multiply-adds (p small against e, e.g. 2×2 or 4×4 single-channel patches); otherwise E, Q and K are
   * built (e.g. 16×16×3 patches, p = 768).
   */
  headLogits(h: number, qs: Int32Array, src: { values?: Tensor; embeddings?: Tensor }): Tensor {
    const Wq = this.params[`heads.${h}.query`];
    const Wk = this.params[`heads.${h}.key`];
    if (src.embeddings) {
      const emb = src.embeddings;
      const products = this.embeddingProducts(h, qs.length);
      if (!products) {
        const Q = matmul(indexSelect(emb, 1, qs), Wq);
        const K = matmul(emb, Wk);
        return scale(matmulNT(Q, K), this.gammaG);
      }
      const kern = isGradEnabled() ? undefined : kernels();
      if (kern) return new Tensor(genLogitsKernel(kern, products.operands(emb, qs)), [emb.shape[0], qs.length, emb.shape[1]]);
      return matmulNT(matmul(indexSelect(emb, 1, qs), products.G), emb);
    }
    const V = src.values!;
    const [p, d, m] = [this.valueDim, this.numFeatures, qs.length];
    const products = this.factoredProducts(h, qs);
    if (!products) {
      let emb = add(matmul(V, this.params['proj.weight']), this.params['proj.bias']);
      if (this.params['pos']) emb = add(emb, this.params['pos']);
      return this.headLogits(h, qs, { embeddings: emb });
    }
    const { G, aBk, Abk, abk } = products;
    if (!isGradEnabled()) {
      // inference: one WebAssembly kernel for the whole product, else the same sums added in place
      const kern = kernels();
      const B = V.shape[0];
      if (kern) {
        const L = genLogitsKernel(kern, { V: V.data, B, d, p, qs, G: G.data, aBk: aBk.data, Abk: Abk.data, abk: abk.data, abkCols: abk.shape[1] });
        return new Tensor(L, [B, m, d]);
      }
      const Vq = indexSelect(V, 1, qs); // [B, m, p]
      const P = matmul(Vq, G);
      addRowsInPlace(P.data, aBk.data);
      const L = matmulNT(P, V);
      // Vq·(A·b_kᵀ) is [B, m, d], or [B, m, 1] without position embeddings (then broadcast over the features)
      const L2 = matmul(Vq, Abk).data;
      const Ld = L.data;
      if (L2.length === Ld.length) for (let i = 0; i < Ld.length; i++) Ld[i] += L2[i];
      else for (let i = 0; i < Ld.length; i++) Ld[i] += L2[Math.floor(i / d)];
      addRowsInPlace(Ld, abk.data);
      return L;
    }
    const Vq = indexSelect(V, 1, qs); // [B, m, p]
    const P = add(matmul(Vq, G), aBk); // [B, m, p]
    const L = add(matmulNT(P, V), matmul(Vq, Abk)); // [B, m, d]
    return add(L, abk);
  }

  /** Attention [B, m, d], binary masks, scale c [B, m]. */
  private attend(
    src: GeneratorSource,
    inputs: Inputs,
    heads: Int32Array,
    queries: Int32Array,
    n: number,
    deletion: boolean,
    wantAttention: boolean,
  ): { attention?: Tensor; masks: Tensor; scales: Tensor } {
    const d = this.numFeatures;
    const B = inputs.x.shape[0];
    const valid = this.context.space.validFeatures?.(inputs);
    const someInvalid = !!valid && valid.some((v) => v === 0);
    const fused = this.fusedInference(src, heads, queries, n, deletion, B, someInvalid, wantAttention);
    if (fused) return fused;
    const parts: Tensor[] = [];
    for (let h = 0; h < this.numHeads; h++) {
      let count = 0;
      for (let i = 0; i < heads.length; i++) if (heads[i] === h) count++;
      if (!count) continue;
      const qs = new Int32Array(count);
      for (let i = 0, c = 0; i < heads.length; i++) if (heads[i] === h) qs[c++] = queries[i];
      parts.push(this.headLogits(h, qs, src));
    }
    let logits = parts.length === 1 ? parts[0] : concat(parts, 1);
    if (valid && someInvalid) {
      if (isGradEnabled()) {
        const bias = new Float32Array(B * d);
        for (let i = 0; i < bias.length; i++) if (valid[i] === 0) bias[i] = -1e4;
        logits = add(logits, new Tensor(bias, [B, 1, d]));
      } else {
        // inference: the same sums in place (the logits are this call's own array)
        const L = logits.data;
        const m = L.length / (B * d);
        for (let b = 0; b < B; b++)
          for (let j = 0; j < d; j++) if (valid[b * d + j] === 0) for (let i = 0; i < m; i++) L[(b * m + i) * d + j] += -1e4;
      }
    }
    if (this.blurOpt) logits = blur(logits, this.context.space.grid, this.blurOpt.kernel, this.blurOpt.sigma);
    // a = softmax over features, M = top-n of a, c = 2·Σ_top a − 1 (one fused pass per row; c carries the gradient)
    return topkMass(logits, n, !deletion);
  }

  /**
   * Inference in one WebAssembly call (logits, softmax, top-k, scale) when the groups come from one head, the
   * embeddings are projections in the factored form, nothing is blurred and every feature is valid; undefined
   * otherwise (then the general path runs). Same values as the general path's kernels.
   */
  private fusedInference(
    src: GeneratorSource,
    heads: Int32Array,
    queries: Int32Array,
    n: number,
    deletion: boolean,
    B: number,
    someInvalid: boolean,
    wantAttention: boolean,
  ): { attention?: Tensor; masks: Tensor; scales: Tensor } | undefined {
    if (isGradEnabled() || this.blurOpt || someInvalid || heads.length === 0) return undefined;
    const h = heads[0];
    for (let i = 1; i < heads.length; i++) if (heads[i] !== h) return undefined;
    const kern = kernels();
    if (!kern) return undefined;
    const [d, m] = [this.numFeatures, queries.length];
    let operands: GenLogitsOperands;
    if (src.embeddings) {
      const products = this.embeddingProducts(h, m);
      if (!products) return undefined;
      operands = products.operands(src.embeddings, queries);
    } else {
      const products = this.factoredProducts(h, queries);
      const p = this.valueDim;
      // the feature values gathered from x in WebAssembly memory when the space describes them as a gather
      const V = src.gather && src.gather.index.length === d * p ? src.gather : src.values!.data;
      if (products) {
        const { G, aBk, Abk, abk } = products;
        operands = { V, B, d, p, qs: queries, G: G.data, aBk: aBk.data, Abk: Abk.data, abk: abk.data, abkCols: abk.shape[1] };
      } else {
        // the E/Q/K form: E = V·W_p + bias + pos built in the kernel's memory, then the logits over E as over backbone
        // embeddings (the general path's gemm, adds and gen_logits, in one call)
        const emb = this.embeddingProducts(h, m);
        if (!emb) return undefined;
        const [W, bias, pos] = [this.params['proj.weight'], this.params['proj.bias'], this.params['pos']];
        operands = emb.operands({ project: { values: V, width: p, W: W.data, bias: bias.data, pos: pos?.data } }, queries, B);
      }
    }
    const r = genTopkKernel(kern, operands, n, !deletion, wantAttention);
    return { attention: r.a && new Tensor(r.a, [B, m, d]), masks: new Tensor(r.M, [B, m, d]), scales: new Tensor(r.c, [B, m]) };
  }
}

/**
 * What the generator's logits are computed from: the backbone's per-feature embeddings, or (projection mode) the raw
 * feature values, computed on first use (the WebAssembly path gathers them from x itself when `gather` is given).
 */
interface GeneratorSource {
  values?: Tensor;
  embeddings?: Tensor;
  /** The feature values as a gather from float rows of x (FeatureSpace.featureValueIndex). */
  gather?: { x: Float32Array; index: Int32Array };
}

/** Projection-mode source: `values` = space.featureValues(inputs), computed when first read. */
function projectionSource(space: FeatureSpace, inputs: Inputs): GeneratorSource {
  let values: Tensor | undefined;
  const x = inputs.x.data;
  const B = inputs.x.shape[0];
  const index = space.featureValueIndex?.(inputs);
  const whole = x instanceof Float32Array && B > 0 && x.length === B * sizeOf(inputs.x.shape.slice(1));
  return {
    get values(): Tensor {
      return (values ??= Tensor.fromData(space.featureValues(inputs)));
    },
    gather: index && whole ? { x: x as Float32Array, index } : undefined,
  };
}

/** out[t·n + j] += b[t·n + j mod |b|]: b ([m | 1, n]) repeated over out's leading (batch) axis. */
function addRowsInPlace(out: Float32Array, b: Float32Array): void {
  const n = b.length;
  for (let o = 0; o < out.length; o += n) for (let j = 0; j < n; j++) out[o + j] += b[j];
}

export const attentionGeneratorFactory: GroupGeneratorFactory = {
  name: 'attention',
  create: (context, options) => new AttentionGroupGenerator(context, options as AttentionGeneratorOptions),
};

export function checkInt(v: number, what: string, lo: number, hi: number, hint: string): void {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new UserError(`${what}: ${v} must be an integer in [${lo}, ${hi}]`, `use ${hint}`);
}
