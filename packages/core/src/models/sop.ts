import type { Backbone } from '../backbone.js';
import type { FeatureSpace } from '../feature-space.js';
import type { Masker } from '../masker.js';
import type { Inputs } from '../inputs.js';
import type { Task } from '../dataset.js';
import { Rng } from '../rng.js';
import { UserError } from '../errors.js';
import type { FloatTensor } from '../tensor.js';
import { sliceInputs } from '../inputs.js';
import { Tensor, noGrad, mul, reshape, sum } from '../autograd/index.js';
import type { GroupGenerator, GroupGeneratorFactory } from '../group-generator.js';
import type { GroupSelector, GroupSelectorFactory } from '../group-selector.js';
import { AttentionGroupGenerator, attentionGeneratorFactory, checkInt } from './attention-generator.js';
import { SparsemaxGroupSelector, sparsemaxSelectorFactory, type ChunkedSelect } from './sparsemax-selector.js';
import { KernelBuffer, kernels, sopCombineKernel, uninitF32, type SelectCombined } from '../kernels/index.js';

/** `model: {use: sop, ...}` options (methods §2, §9). */
export interface SopOptions {
  /** m: number of groups per prediction. Default min(20, d). */
  groups?: number;
  /** k: fraction of features per group (changeable at inference). Default 0.2. */
  keep?: number;
  /** Generator heads (trained one after another, all used at inference). Default 1. */
  heads?: number;
  /** 'even' (fixed evenly spaced query features, default) or 'random' (m random queries per training step). */
  queries?: 'even' | 'random';
  /** Generator embeddings: 'projection' (linear projection of raw feature values + position embedding, default) or 'backbone' (the backbone's `embeddings` output, frozen). */
  embeddings?: 'projection' | 'backbone';
  /** Width of the projection embeddings and of the generator's query/key space. Default 32. */
  embedDim?: number;
  /** Learned position embedding added to the projection embeddings. Default true. */
  positionEmbedding?: boolean;
  /** γ_g. Default 1/√embedDim (the reference has no 1/√d factor but uses 0.06 at width 768). */
  groupGenScale?: number;
  /** γ_s. Default 1. */
  groupSelScale?: number;
  /** Gaussian blur of the generator's attention logits over the feature grid; off by default. */
  blur?: { kernel: number; sigma: number } | false;
  /** Rows of masked inputs per backbone call. Default 256. */
  maskBatchSize?: number;
  /** Selector keys: 'hidden' (backbone's pooled state), 'output' (the group's output vector) or 'auto' (default: hidden when the backbone exposes it and has a classifier weight matrix). */
  selectorKeys?: 'auto' | 'hidden' | 'output';
  seed?: number;
}

/**
 * `maskAllFloats`: masked rows are built in one masker call before the backbone runs when all B·m of them hold at most
 * this many values (default 16 MB of float32); larger batches are masked chunk by chunk (maskBatchSize rows) to bound
 * memory. `kernelRowsFloats`: the masked-rows buffer lives in WebAssembly memory (written in place by the masking
 * kernel) up to this many values (default 256 MB); beyond, or when that memory cannot grow, in a JavaScript array.
 * Mutable for tests and memory-tight deployments.
 */
export const sopLimits = { maskAllFloats: 1 << 22, kernelRowsFloats: 1 << 26 };

export interface SopContext {
  backbone: Backbone;
  space: FeatureSpace;
  masker: Masker;
  task: Task;
  numOutputs: number;
  /** A few example inputs, to size the feature-value projection. */
  sample: Inputs;
  /** Group generator / selector plugins (default: attention, sparsemax). */
  generatorFactory?: GroupGeneratorFactory;
  selectorFactory?: GroupSelectorFactory;
}

export interface SopForwardOptions {
  /** Override k for this call. */
  keep?: number;
  /** Build each group from the bottom-k features of its query (deletion curves). */
  deletion?: boolean;
  /** Training: use only this head (and its queries); omitted: all heads (inference). */
  head?: number;
  /** Random queries (training with queries: random). */
  rng?: Rng;
  /** Record a graph (training). Default false. */
  grad?: boolean;
  /** Return the generator's attention values (default true; predict, which does not report them, passes false). */
  attention?: boolean;
}

/** Autograd-level result of one SOP forward (B examples, m groups, d features, C outputs). */
export interface SopTensors {
  /** y [B, C] = Σ_j contributions. */
  output: Tensor;
  /** α ⊙ ẑ [B, m, C]. */
  contributions: Tensor;
  /** α [B, m, C] (sparsemax over groups per class). */
  weights: Tensor;
  /** ẑ = c·z [B, m, C]. */
  scaledOutputs: Tensor;
  /** c [B, m]. */
  scales: Tensor;
  /** Generator attention a [B, m, d] (values only: the generator's gradient path is `scales`); absent with `attention: false`. */
  attention?: Tensor;
  /** Binary group masks M [B, m, d]. */
  masks: Float32Array;
  /** Backbone outputs z on each group [B, m, C]. */
  rawOutputs: Float32Array;
  /** Pooled hidden states h_j [B, m, k] when the backbone exposes them. */
  hidden?: Float32Array;
  /** Query feature of each group [m]. */
  queries: Int32Array;
  /** Head of each group [m]. */
  heads: Int32Array;
  /** Backbone rows evaluated. */
  evaluations: number;
}

/** Plain SOP inference result: everything in methods §2.4, in feature space. */
export interface SopResult {
  batch: number;
  numGroups: number;
  numFeatures: number;
  numOutputs: number;
  /** y [B, C]. */
  output: Float32Array;
  /** ẑ = c·z [B, m, C] (`logits_all`). */
  groupOutputs: Float32Array;
  /** h_j [B, m, k] (`pooler_outputs_all`), when exposed. */
  hidden?: Float32Array;
  /** M [B, m, d]. */
  masks: Float32Array;
  /** α [B, m, C] (`mask_weights`). */
  weights: Float32Array;
  /** α ⊙ ẑ [B, m, C] (`group_attributions`); Σ_j gives y. */
  contributions: Float32Array;
  /** c [B, m] (`loss_scale`). */
  scales: Float32Array;
  queries: Int32Array;
  heads: Int32Array;
  evaluations: number;
}

/**
 * Sum-of-Parts over a frozen backbone: group generator (attention over per-feature embeddings, top-k binarised, scale
 * c = 2·Σ_top a − 1) → masked inputs through the backbone in chunks → group selector (sparse cross-attention from class
 * queries to group keys) → y_c = Σ_j α_{j,c} c_j z_{j,c}.
 */
export class SopModel {
  readonly numFeatures: number;
  readonly numOutputs: number;
  readonly numGroups: number;
  keep: number;
  readonly maskBatchSize: number;
  readonly task: Task;
  /** The group generator (DI slot 'generator'; default `attention`). */
  readonly generator: GroupGenerator;
  /** The group selector (DI slot 'selector'; default `sparsemax`). */
  readonly selector: GroupSelector;
  /** Generator and selector parameters, by name (`generator.<name>`, `selector.<name>`; the checkpoint names). */
  readonly params: Record<string, Tensor> = {};
  /**
   * Reused buffer for the masked rows (see runGroups), in a WebAssembly kernel instance of its own when the kernels
   * run: the masking kernel then writes the rows where the backbone reads them (no copy out of its memory).
   */
  private readonly maskedRows = new ReusedBuffer(true);
  /** Reused buffer for the group outputs z of `predict` (which returns no z). */
  private readonly zScratch = new ReusedBuffer();
  /** Example index of each masked row (r → ⌊r/m⌋), by row count (read-only). */
  private rowIndex?: Int32Array;

  constructor(
    readonly context: Omit<SopContext, 'sample'>,
    sample: Inputs,
    readonly options: SopOptions = {},
  ) {
    const { backbone, space } = context;
    const d = space.numFeatures;
    this.numFeatures = d;
    this.numOutputs = context.numOutputs;
    this.task = context.task;
    this.numGroups = options.groups ?? Math.min(20, d);
    this.keep = options.keep ?? 0.2;
    this.maskBatchSize = options.maskBatchSize ?? 256;
    checkInt(this.numGroups, 'model.groups', 1, d, `at most the number of features (${d})`);
    checkInt(this.maskBatchSize, 'model.maskBatchSize', 1, 1 << 24, 'e.g. maskBatchSize: 256');
    checkKeep(this.keep, 'model.keep');
    // one generator for both components, generator first: the initialisation is a function of the seed alone
    const rng = new Rng(options.seed ?? 0);
    const component = { backbone, space, numOutputs: context.numOutputs, sample, rng };
    this.generator = (context.generatorFactory ?? attentionGeneratorFactory).create(component, options as Record<string, unknown>);
    this.selector = (context.selectorFactory ?? sparsemaxSelectorFactory).create(component, options as Record<string, unknown>);
    for (const [prefix, part] of [['generator', this.generator], ['selector', this.selector]] as const) {
      for (const [name, p] of Object.entries(part.parameters())) {
        p.name = `${prefix}.${name}`;
        this.params[p.name] = p;
      }
    }
  }

  /** Generator heads (trained one after another by the trainer); 1 for generators without heads. */
  get numHeads(): number {
    return (this.generator as { numHeads?: number }).numHeads ?? 1;
  }

  /** What the selector's keys are: the backbone's pooled hidden state per group, or the group's output vector. */
  get keys(): 'hidden' | 'output' {
    return this.selector.keys;
  }

  get keyDim(): number {
    return this.selector.keyDim;
  }

  /** Candidate (head, query feature) pairs used by a forward (attention generator). */
  candidates(head: number | undefined, rng?: Rng): { heads: Int32Array; queries: Int32Array } {
    const g = this.generator as AttentionGroupGenerator;
    if (typeof g.candidates !== 'function') throw new UserError(`generator '${this.generator.name}' has no fixed candidates`, 'use the attention generator');
    return g.candidates(this.numGroups, head, rng);
  }

  /** Load parameters saved by {@link parameterTensors} (e.g. from a checkpoint). */
  loadParameters(tensors: Record<string, FloatTensor>): void {
    for (const [name, p] of Object.entries(this.params)) {
      const t = tensors[name];
      if (!t) throw new UserError(`SOP checkpoint: tensor '${name}' is missing`, 'the checkpoint comes from a different model config; retrain or use the matching config');
      if (t.shape.join(',') !== p.shape.join(',')) {
        throw new UserError(`SOP checkpoint: '${name}' has shape [${t.shape}] but the model needs [${p.shape}]`, 'use the same model/data config as the run that wrote it');
      }
      p.data.set(t.data);
    }
  }

  parameterTensors(): Record<string, Tensor> {
    return this.params;
  }

  /**
   * Run the backbone on the B·m masked inputs in chunks of maskBatchSize rows. When all masked rows fit in
   * `sopLimits.maskAllFloats` values they are built in one masker call before the first backbone call (the backbone then
   * gets views of consecutive chunks, back to back); otherwise each chunk is masked right before its call.
   */
  private async runGroups(inputs: Inputs, masks: Float32Array, B: number, zBuffer?: Float32Array, select?: { chunked: ChunkedSelect; S: Float32Array }): Promise<{ z: Float32Array; hidden?: Float32Array }> {
    const m = this.numGroups;
    const d = this.numFeatures;
    const C = this.numOutputs;
    const R = B * m;
    const z = zBuffer && zBuffer.length >= R * C ? zBuffer.subarray(0, R * C) : new Float32Array(R * C);
    // every row of the hidden states is written below (chunk by chunk), so its memory is not zero-filled first
    const hidden = this.keys === 'hidden' ? uninitF32(R * this.keyDim) : undefined;
    let rows = this.rowIndex;
    if (!rows || rows.length !== R) {
      rows = new Int32Array(R);
      for (let r = 0; r < R; r++) rows[r] = Math.floor(r / m);
      this.rowIndex = rows;
    }
    const outputs = this.keys === 'hidden' ? ['hidden'] : [];
    const rowSize = inputs.x.data instanceof Float32Array && B > 0 ? inputs.x.data.length / B : 0;
    const all = rowSize > 0 && R * rowSize <= sopLimits.maskAllFloats;
    // one buffer for the masked rows (all of them, or one chunk at a time: each chunk's backbone call finishes before
    // the next is masked into it); kept between calls, a fresh one while another forward of this model is using it
    const lease = rowSize > 0 ? this.maskedRows.take((all ? R : Math.min(R, this.maskBatchSize)) * rowSize) : undefined;
    const { masker, space, backbone } = this.context;
    try {
      // (the buffer's current view each time: a masking kernel writing into kernel memory may have grown it)
      const whole = all ? masker.apply(inputs, masks, rows, space, lease?.view()) : undefined;
      for (let start = 0; start < R; start += this.maskBatchSize) {
        const end = Math.min(R, start + this.maskBatchSize);
        const masked = whole ? sliceInputs(whole, start, end) : masker.apply(inputs, masks.subarray(start * d, end * d), rows.subarray(start, end), space, lease?.view());
        // backbones that can write straight into z and the hidden states do (see ForwardOptions.into)
        const into = { output: z.subarray(start * C, end * C), hidden: hidden?.subarray(start * this.keyDim, end * this.keyDim) };
        const out = await backbone.forward(masked, { outputs, into });
        if (out.output.data.length !== (end - start) * C) {
          throw new UserError(`backbone '${backbone.name}' returned output shape [${out.output.shape}] for ${end - start} rows; expected [${end - start}, ${C}]`, 'check that the data set has as many classes/outputs as the backbone');
        }
        if (out.output.data !== into.output) z.set(out.output.data, start * C);
        if (hidden) {
          if (!out.hidden) throw new UserError(`backbone '${backbone.name}' returned no hidden state`, 'set model.selectorKeys: output');
          if (out.hidden.data !== into.hidden) hidden.set(out.hidden.data, start * this.keyDim);
          // a backbone that returned fewer values leaves the rest at zero (as a zero-filled array would)
          if (out.hidden.data.length < (end - start) * this.keyDim) hidden.fill(0, start * this.keyDim + out.hidden.data.length, end * this.keyDim);
          // the selector's scores for these rows while their keys are in cache
          if (select) select.chunked.score(hidden.subarray(start * this.keyDim, end * this.keyDim), end - start, select.S, start);
        }
      }
    } finally {
      if (lease?.owned) this.maskedRows.release();
    }
    return { z, hidden };
  }

  /** One forward. With `grad`, records a graph through c (generator) and the selector. */
  async forward(inputs: Inputs, options: SopForwardOptions = {}): Promise<SopTensors> {
    return this.forwardWith(inputs, options);
  }

  /** {@link forward}; `zBuffer`: where to put the group outputs z (predict's reused buffer; z is then not kept). */
  private async forwardWith(inputs: Inputs, options: SopForwardOptions, zBuffer?: Float32Array): Promise<SopTensors> {
    const grad = options.grad ?? false;
    const run = <T>(f: () => T): T => (grad ? f() : noGrad(f));
    const B = inputs.x.shape[0];
    const m = this.numGroups;
    const keep = options.keep ?? this.keep;
    checkKeep(keep, 'keep');
    const gen = await this.generator.generate(inputs, { groups: m, keep, deletion: options.deletion, head: options.head, rng: options.rng, grad, attention: options.attention ?? true });
    const maskData = gen.masks.data;
    // inference with hidden-state keys: the selector scores each chunk's keys as they come (see chunkedSelect)
    const chunked = !grad && this.keys === 'hidden' && this.builtinSelector() ? run(() => (this.selector as SparsemaxGroupSelector).chunkedSelect()) : undefined;
    const select = chunked && { chunked, S: new Float32Array(B * m * chunked.numOutputs) };
    const { z, hidden } = await this.runGroups(inputs, maskData, B, zBuffer, select);
    const keys = new Tensor(this.keys === 'hidden' ? hidden! : z, [B, m, this.keyDim]);
    const combined = select ? this.combineScores(select.chunked.combine(select.S, B, m, z, gen.scales.data), B) : run(() => this.combine(keys, z, gen.scales, B, grad));
    // field by field, not an object spread (see withX in maskers/common.ts)
    return {
      weights: combined.weights,
      scaledOutputs: combined.scaledOutputs,
      contributions: combined.contributions,
      output: combined.output,
      scales: gen.scales,
      attention: gen.attention,
      masks: maskData,
      rawOutputs: z,
      hidden,
      queries: gen.queries,
      heads: gen.heads,
      evaluations: B * m,
    };
  }

  /**
   * The selector's weights α, then ẑ = c·z, α ⊙ ẑ and y = Σ_j α ⊙ ẑ: autograd ops (recording a graph when `grad`), or
   * at inference one WebAssembly pass with the same float32 products and the sum over groups in float64, as `sum`.
   */
  private combine(keys: Tensor, z: Float32Array, scales: Tensor, B: number, grad: boolean): { weights: Tensor; scaledOutputs: Tensor; contributions: Tensor; output: Tensor } {
    const m = this.numGroups;
    const C = this.numOutputs;
    if (!grad && this.builtinSelector()) {
      // inference: the selector and the combination in one kernel call (same values as the two below)
      const r = (this.selector as SparsemaxGroupSelector).selectAndCombine(keys, z, scales.data);
      if (r) return this.combineScores(r, B);
    }
    const weights = this.selector.select(keys); // α [B, m, C]
    const kern = grad ? null : kernels();
    if (kern) {
      const r = sopCombineKernel(kern, z, weights.data, scales.data, B, m, C);
      return { weights, scaledOutputs: new Tensor(r.scaled, [B, m, C]), contributions: new Tensor(r.contributions, [B, m, C]), output: new Tensor(r.output, [B, C]) };
    }
    const scaledOutputs = mul(new Tensor(z, [B, m, C]), reshape(scales, [B, m, 1]));
    const contributions = mul(weights, scaledOutputs);
    return { weights, scaledOutputs, contributions, output: sum(contributions, 1) };
  }

  /** combine's result as Tensors, from the selector's fused kernels (selectAndCombine, or chunkedSelect's combine). */
  private combineScores(r: SelectCombined, B: number): { weights: Tensor; scaledOutputs: Tensor; contributions: Tensor; output: Tensor } {
    const [m, C] = [this.numGroups, this.numOutputs];
    return { weights: new Tensor(r.weights, [B, m, C]), scaledOutputs: new Tensor(r.scaled, [B, m, C]), contributions: new Tensor(r.contributions, [B, m, C]), output: new Tensor(r.output, [B, C]) };
  }

  /** Whether the selector is the built-in sparsemax one, as is (see combine). */
  private builtinSelector(): boolean {
    return this.selector instanceof SparsemaxGroupSelector && this.selector.select === SparsemaxGroupSelector.prototype.select;
  }

  /** Inference (no graph): every output of methods §2.4. */
  async predict(inputs: Inputs, options: Omit<SopForwardOptions, 'grad' | 'head' | 'rng' | 'attention'> = {}): Promise<SopResult> {
    // with the built-in selector z is only read (copied) by the combination: one buffer serves every call, unless
    // another predict is using it
    const lease = this.builtinSelector() ? this.zScratch.take(inputs.x.shape[0] * this.numGroups * this.numOutputs) : undefined;
    let t: SopTensors;
    try {
      // predict's options (keep, deletion) named one by one, not spread (see withX in maskers/common.ts)
      t = await this.forwardWith(inputs, { keep: options.keep, deletion: options.deletion, grad: false, attention: false }, lease?.view());
    } finally {
      if (lease?.owned) this.zScratch.release();
    }
    return {
      batch: inputs.x.shape[0],
      numGroups: this.numGroups,
      numFeatures: this.numFeatures,
      numOutputs: this.numOutputs,
      output: t.output.data,
      groupOutputs: t.scaledOutputs.data,
      hidden: t.hidden,
      masks: t.masks,
      weights: t.weights.data,
      contributions: t.contributions.data,
      scales: t.scales.data,
      queries: t.queries,
      heads: t.heads,
      evaluations: t.evaluations,
    };
  }
}

/**
 * A float buffer reused between calls of one model (in a kernel instance's memory with `inKernelMemory`, when the
 * kernels run: see KernelBuffer); while it is lent out (an overlapping call), `take` gives a fresh array instead,
 * which is not released.
 */
class ReusedBuffer {
  private buf?: Float32Array;
  private kernelBuf?: KernelBuffer | null;
  private busy = false;

  constructor(private readonly inKernelMemory = false) {}

  /** At least n floats (`view()`: the current view of them); `owned`: this is the reused buffer, to `release` when done. */
  take(n: number): { view: () => Float32Array; owned: boolean } {
    if (this.busy) {
      const fresh = new Float32Array(n);
      return { view: () => fresh, owned: false };
    }
    this.busy = true;
    if (this.inKernelMemory && this.kernelBuf === undefined) this.kernelBuf = KernelBuffer.create();
    const kb = this.kernelBuf;
    if (kb && n <= sopLimits.kernelRowsFloats) {
      try {
        kb.view(n);
        return { view: () => kb.view(n), owned: true };
      } catch {
        // WebAssembly memory that cannot grow this far: a JavaScript array instead
      }
    }
    if (!this.buf || this.buf.length < n) this.buf = new Float32Array(n);
    const buf = this.buf;
    return { view: () => buf, owned: true };
  }

  release(): void {
    this.busy = false;
  }
}

function checkKeep(v: number, what: string): void {
  if (!(v > 0 && v <= 1)) throw new UserError(`${what}: ${v} is not in (0, 1]`, 'use a fraction of features such as 0.2');
}

