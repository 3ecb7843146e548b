/**
 * The one place where attributors talk to the backbone. Every method builds all of its perturbed rows (feature masks
 * for black-box methods, interpolated/perturbed inputs for gradient methods) for the whole batch and hands them here;
 * they are materialised through the masker (`masker.apply(inputs, masks, rows, space)`) and sent to
 * `backbone.forward` / `backbone.vjp` in chunks of `maxBatch` rows. Never one call per perturbation.
 *
 * Counting: `evaluations` = rows sent through `forward`; `gradients` = rows sent through `vjp` (each vjp row also
 * runs its own forward inside the backbone).
 */
import {
  UserError,
  sliceInputs,
  concatRows,
  sizeOf,
  type AttributeOptions,
  type AttributionContext,
  type Backbone,
  type BackboneOutputs,
  type FeatureSpace,
  type FloatTensor,
  type Inputs,
  type Masker,
} from '@sop/core';
import { needsPrediction, resolveTargets } from './common.js';
import { baselineKernels, targetProbsKernel } from './kernels/index.js';

/** Bytes of one chunk when `maxBatch` is unset (inputs of one backbone call). */
export const AUTO_CHUNK_BYTES = 32 * 1024 * 1024;
export const AUTO_MAX_ROWS = 1024;

/** Bytes of one input row (all keys of `inputs`). */
export function bytesPerRow(inputs: Inputs): number {
  let b = 0;
  for (const key of Object.keys(inputs)) {
    const t = inputs[key];
    b += sizeOf(t.shape.slice(1)) * (t.data instanceof Float32Array ? 4 : 8);
  }
  return Math.max(1, b);
}

/** `maxBatch` from options, or chosen by bytes per row (32 MiB of inputs per call, at most 1024 rows). */
export function resolveMaxBatch(inputs: Inputs, maxBatch: unknown): number {
  if (maxBatch === undefined || maxBatch === null) {
    return Math.max(1, Math.min(AUTO_MAX_ROWS, Math.floor(AUTO_CHUNK_BYTES / bytesPerRow(inputs))));
  }
  if (typeof maxBatch !== 'number' || !Number.isInteger(maxBatch) || maxBatch < 1) {
    throw new UserError(`maxBatch must be a positive integer, got ${JSON.stringify(maxBatch)}`, 'set maxBatch to e.g. 64, or leave it unset to size chunks automatically');
  }
  return maxBatch;
}

/** Rows of `inputs` repeated: example b appears `times` times in a row (b·times … b·times+times−1). */
export function repeatIndex(batch: number, times: number): Int32Array {
  const rows = new Int32Array(batch * times);
  for (let b = 0; b < batch; b++) rows.fill(b, b * times, (b + 1) * times);
  return rows;
}

function concatOutputs(parts: BackboneOutputs[]): BackboneOutputs {
  if (parts.length === 1) return parts[0];
  const out: BackboneOutputs = { output: concatRows(parts.map((p) => p.output)) };
  for (const key of Object.keys(parts[0])) {
    if (key === 'output' || parts[0][key] === undefined) continue;
    out[key] = concatRows(parts.map((p) => p[key] as FloatTensor));
  }
  return out;
}

function floatX(inputs: Inputs, what: string): FloatTensor {
  if (!(inputs.x.data instanceof Float32Array)) {
    throw new UserError(
      `${what} needs a float input x, but x is int64 (token ids)`,
      'use a black-box attributor (lime, kernel-shap, permutation-shap, rise, archipelago) for token inputs, or a backbone that takes float embeddings as x',
    );
  }
  return inputs.x as FloatTensor;
}

export interface GradientResult {
  /** d score / d x for every row, shaped like x [R, ...]. */
  grads: Float32Array;
  /** Backbone outputs [R, C] at the rows. */
  outputs: FloatTensor;
  /** Scores (logit or softmax probability of the row's target) [R]. */
  scores: Float64Array;
}

/** Rows built on demand, one chunk at a time (e.g. integration paths too large to hold whole). */
export interface RowSource {
  count: number;
  /** Shape of one x row. */
  rowShape: number[];
  take(start: number, end: number): Inputs;
}

function isRowSource(s: Inputs | RowSource): s is RowSource {
  return typeof (s as RowSource).take === 'function';
}

/** What the score of a row is: the raw output ('logit') or its softmax probability ('prob'; raw when C = 1). */
export type ScoreMode = 'logit' | 'prob';

/** Runs a method's rows through the backbone in chunks and counts them. One per `attribute` call. */
export class BatchRunner {
  readonly backbone: Backbone;
  readonly space: FeatureSpace;
  readonly masker: Masker;
  readonly maxBatch: number;
  evaluations = 0;
  gradients = 0;
  /** Backbone calls (forward + vjp), for benchmarks. */
  calls = 0;
  /** Milliseconds (wall) spent inside backbone calls, for benchmarks. */
  modelMs = 0;
  /**
   * Process CPU milliseconds (all threads) spent inside backbone calls, for benchmarks (robust on a busy machine).
   * Measured only with the option `cpuTiming: true`: `process.cpuUsage()` sums every thread of the process, which
   * costs up to a millisecond per call while onnxruntime's pool threads spin after a run.
   */
  modelCpuMs = 0;
  private readonly cpuTiming: boolean;

  constructor(context: AttributionContext, inputs: Inputs, options: AttributeOptions, masker?: Masker) {
    this.backbone = context.backbone;
    this.space = context.space;
    this.masker = masker ?? context.masker;
    this.maxBatch = resolveMaxBatch(inputs, options.maxBatch);
    this.onProgress = options.onProgress;
    this.batch = inputs.x.shape[0];
    this.cpuTiming = options.cpuTiming === true;
  }

  private readonly batch: number;

  private readonly onProgress?: (done: number, total: number) => void;

  private async timed<T>(f: () => Promise<T>): Promise<T> {
    const c0 = this.cpuTiming ? process.cpuUsage() : undefined;
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      this.modelMs += performance.now() - t0;
      if (c0) {
        const c = process.cpuUsage(c0);
        this.modelCpuMs += (c.user + c.system) / 1000;
      }
      this.calls++;
    }
  }

  /** Forward arbitrary rows in chunks (all named outputs requested are concatenated). */
  async forward(inputs: Inputs, outputs?: string[]): Promise<BackboneOutputs> {
    const n = inputs.x.shape[0];
    const parts: BackboneOutputs[] = [];
    for (let s = 0; s < n; s += this.maxBatch) {
      const e = Math.min(n, s + this.maxBatch);
      const chunk = s === 0 && e === n ? inputs : sliceInputs(inputs, s, e);
      parts.push(await this.timed(() => this.backbone.forward(chunk, outputs ? { outputs } : undefined)));
      this.evaluations += e - s;
    }
    if (parts.length === 0) throw new UserError('attribution got an empty batch', 'pass at least one example');
    return concatOutputs(parts);
  }

  /**
   * Evaluate feature masks: row r is example `rows[r]` of `inputs` with mask r ([R, d]), built by the masker one
   * chunk at a time (one `masker.apply` and one `forward` per chunk). `masks` is the full [R, d] array, or a function
   * filling rows [start, end) into a [end − start, d] buffer (so huge designs such as Archipelago's never exist whole).
   * Returns outputs [R, C].
   */
  async forwardMasked(
    inputs: Inputs,
    masks: Float32Array | ((start: number, end: number, out: Float32Array) => void),
    rows: Int32Array,
    masker: Masker = this.masker,
  ): Promise<FloatTensor> {
    const d = this.space.numFeatures;
    const n = rows.length;
    if (typeof masks !== 'function' && masks.length !== n * d) throw new Error(`forwardMasked: ${masks.length} mask values for ${n} rows of ${d} features`);
    const B = this.batch;
    // outputs of all chunks are written into one [R, C] buffer (allocated once C is known); one chunk is returned as is
    let all: Float32Array | undefined;
    let first: FloatTensor | undefined;
    let C = 0;
    // a mask generator fills one reused buffer (zeroed between chunks, as generators only write their ones)
    let buf: Float32Array | undefined;
    for (let s = 0; s < n; s += this.maxBatch) {
      const e = Math.min(n, s + this.maxBatch);
      let m: Float32Array;
      if (typeof masks === 'function') {
        if (!buf) buf = new Float32Array(Math.min(n, this.maxBatch) * d);
        else buf.fill(0);
        m = (e - s) * d === buf.length ? buf : buf.subarray(0, (e - s) * d);
        masks(s, e, m);
      } else m = masks.subarray(s * d, e * d);
      const masked = masker.apply(inputs, m, rows.subarray(s, e), this.space);
      const out = (await this.timed(() => this.backbone.forward(masked))).output;
      if (s === 0) {
        if (e === n) first = out;
        C = out.shape[1];
      }
      if (e < n || s > 0) {
        if (out.shape.length !== 2 || out.shape[1] !== C || out.shape[0] !== e - s) throw new Error(`forwardMasked: chunk output [${out.shape.join(', ')}] for ${e - s} rows of ${C} outputs`);
        all ??= new Float32Array(n * C);
        all.set(out.data, s * C);
      }
      this.evaluations += e - s;
      if (this.onProgress && e < n) this.onProgress(Math.floor((B * e) / n), B);
    }
    if (first) return first;
    if (!all) throw new UserError('attribution got an empty batch', 'pass at least one example');
    return { data: all, shape: [n, C] };
  }

  /** The backbone's vjp, or a UserError saying which backbones have gradients. */
  requireVjp(method: string): NonNullable<Backbone['vjp']> {
    const bb = this.backbone;
    if (!bb.vjp || !bb.capabilities.vjp) {
      throw new UserError(
        `attributor '${method}' needs gradients, but backbone '${bb.name}' has no gradients (no vjp)`,
        'use a black-box attributor (lime, kernel-shap, permutation-shap, rise, archipelago) with this backbone, or a backbone whose capabilities.vjp is true: the onnx backbone (with its gradient module), transformers.js image classifiers in fp32, or any backbone implementing vjp',
      );
    }
    return bb.vjp.bind(bb);
  }

  /**
   * Gradient of each row's score (target logit, or softmax probability of the target) w.r.t. x. In 'logit' mode one
   * vjp per chunk (one-hot cotangent); in 'prob' mode a forward per chunk first (the cotangent p_c(e_c − p) needs p).
   * `rows` may be longer than the batch: rows are paths/samples, each with its own target.
   */
  async gradient(
    method: string,
    source: Inputs | RowSource,
    targets: Int32Array,
    mode: ScoreMode,
    consume?: (start: number, end: number, grads: Float32Array) => void,
  ): Promise<GradientResult> {
    const vjp = this.requireVjp(method);
    const src: RowSource = isRowSource(source) ? source : { count: source.x.shape[0], rowShape: source.x.shape.slice(1), take: (s, e) => (s === 0 && e === source.x.shape[0] ? source : sliceInputs(source, s, e)) };
    if (!isRowSource(source)) floatX(source, `attributor '${method}'`);
    const n = src.count;
    const rowSize = sizeOf(src.rowShape);
    const grads = consume ? new Float32Array(0) : new Float32Array(n * rowSize);
    const scores = new Float64Array(n);
    const outParts: FloatTensor[] = [];
    for (let s = 0; s < n; s += this.maxBatch) {
      const e = Math.min(n, s + this.maxBatch);
      const chunk = src.take(s, e);
      const m = e - s;
      let cot: Float32Array;
      let C: number;
      let p: Float64Array | undefined;
      if (mode === 'prob' && this.backbone.info.outputDim > 1) {
        const fwd = await this.timed(() => this.backbone.forward(chunk));
        this.evaluations += m;
        C = fwd.output.shape[1];
        p = softmax(fwd.output.data, m, C);
        cot = probCotangent(p, targets, s, m, C);
      } else {
        C = this.backbone.info.outputDim;
        cot = new Float32Array(m * C);
        for (let r = 0; r < m; r++) cot[r * C + targets[s + r]] = 1;
      }
      const res = await this.timed(() => vjp(chunk, { cotangents: { output: { data: cot, shape: [m, C] } }, wrt: ['x'] }));
      this.gradients += m;
      const g = res.grads.x;
      if (!g || g.data.length !== m * rowSize) throw new UserError(`backbone '${this.backbone.name}' returned no gradient for x`, 'make its vjp return grads.x shaped like x');
      if (consume) consume(s, e, g.data);
      else grads.set(g.data, s * rowSize);
      outParts.push(res.outputs.output);
      // scores: the probabilities at the rows come with the forward that built the cotangent (same rows)
      const pr = p ?? (mode === 'prob' && C > 1 ? softmax(res.outputs.output.data, m, C) : res.outputs.output.data);
      for (let r = 0; r < m; r++) scores[s + r] = pr[r * C + targets[s + r]];
      if (this.onProgress && e < n) this.onProgress(Math.floor((this.batch * e) / n), this.batch);
    }
    return { grads, outputs: outParts.length === 1 ? outParts[0] : concatRows(outParts), scores };
  }

  /**
   * General vjp in chunks: cotangents for `output` per row [R, C] (and optional named ones), gradient w.r.t. `wrt`
   * (input keys or exposed intermediates). Returns the concatenated grads and outputs.
   */
  async vjpRows(
    method: string,
    inputs: Inputs,
    cotangent: Float32Array,
    wrt: string[],
  ): Promise<{ grads: Record<string, FloatTensor>; outputs: BackboneOutputs }> {
    const vjp = this.requireVjp(method);
    const n = inputs.x.shape[0];
    const C = cotangent.length / n;
    if (n <= this.maxBatch) {
      // one chunk: the backbone's result as it is
      const res = await this.timed(() => vjp(inputs, { cotangents: { output: { data: cotangent, shape: [n, C] } }, wrt }));
      this.gradients += n;
      for (const w of wrt) {
        if (!res.grads[w]) {
          throw new UserError(`backbone '${this.backbone.name}' returned no gradient for '${w}'`, `make its vjp support wrt: ['${w}'] (an input key or an exposed intermediate)`);
        }
      }
      return { grads: res.grads as Record<string, FloatTensor>, outputs: res.outputs };
    }
    const gradParts: Record<string, FloatTensor[]> = Object.fromEntries(wrt.map((w) => [w, [] as FloatTensor[]]));
    const outParts: BackboneOutputs[] = [];
    for (let s = 0; s < n; s += this.maxBatch) {
      const e = Math.min(n, s + this.maxBatch);
      const chunk = s === 0 && e === n ? inputs : sliceInputs(inputs, s, e);
      const res = await this.timed(() =>
        vjp(chunk, { cotangents: { output: { data: cotangent.subarray(s * C, e * C), shape: [e - s, C] } }, wrt }),
      );
      this.gradients += e - s;
      for (const w of wrt) {
        const g = res.grads[w];
        if (!g) {
          throw new UserError(`backbone '${this.backbone.name}' returned no gradient for '${w}'`, `make its vjp support wrt: ['${w}'] (an input key or an exposed intermediate)`);
        }
        gradParts[w].push(g);
      }
      outParts.push(res.outputs);
    }
    const grads: Record<string, FloatTensor> = {};
    for (const w of wrt) grads[w] = gradParts[w].length === 1 ? gradParts[w][0] : concatRows(gradParts[w]);
    return { grads, outputs: concatOutputs(outParts) };
  }
}

/** Cotangents p_c(e_c − p) [m, C] of the target probabilities for rows start … start + m (p [m, C], targets by row). */
export function probCotangent(p: Float64Array, targets: Int32Array, start: number, m: number, C: number): Float32Array {
  const cot = new Float32Array(m * C);
  for (let r = 0; r < m; r++) {
    const c = targets[start + r];
    const o = r * C;
    const pc = p[o + c];
    for (let j = 0; j < C; j++) cot[o + j] = -pc * p[o + j];
    cot[o + c] = pc * (1 - p[o + c]);
  }
  return cot;
}

/**
 * Cotangents [B, C] of each example's score: p_c(e_c − p) for 'prob' (C > 1; softmax of `outputs` [B, C]), else the
 * one-hot e_c of the target logit.
 */
export function scoreCotangent(outputs: ArrayLike<number>, targets: Int32Array, B: number, C: number, mode: ScoreMode): Float32Array {
  if (mode === 'prob' && C > 1) return probCotangent(softmax(outputs, B, C), targets, 0, B, C);
  const cot = new Float32Array(B * C);
  for (let b = 0; b < B; b++) cot[b * C + targets[b]] = 1;
  return cot;
}

/** Row-wise softmax of a flat [n, C] array (float64). */
export function softmax(z: ArrayLike<number>, n: number, C: number): Float64Array {
  const out = new Float64Array(n * C);
  for (let i = 0; i < n; i++) {
    const o = i * C;
    let mx = -Infinity;
    for (let j = 0; j < C; j++) if (z[o + j] > mx) mx = z[o + j];
    let s = 0;
    for (let j = 0; j < C; j++) s += out[o + j] = Math.exp(z[o + j] - mx);
    const inv = 1 / s;
    for (let j = 0; j < C; j++) out[o + j] *= inv;
  }
  return out;
}

/**
 * Score of each row's target from outputs [R, C]: raw output, or its softmax probability ('prob', C > 1; float32
 * through the SIMD kernel when available, else float64). Row r's target is targets[⌊r / per⌋] (per = 1: one target
 * per row; per > 1: blocks of `per` rows per example).
 */
export function rowScores(outputs: FloatTensor, targets: ArrayLike<number>, mode: ScoreMode, per = 1): Float64Array {
  const [n, C] = outputs.shape;
  const z = outputs.data;
  const s = new Float64Array(n);
  const wasm = mode === 'prob' && C > 1 && targets instanceof Int32Array && n * C >= 64 ? baselineKernels() : null;
  if (wasm) targetProbsKernel(wasm, z, targets as Int32Array, n, C, per, s);
  else if (mode === 'prob' && C > 1) {
    // the target's entry of {@link softmax} as p_t = 1 / Σ_j exp(z_j − z_t): one ratio, so no max shift is needed
    // (a z_j − z_t beyond exp's range gives Infinity, i.e. p_t = 0, its value in float64 anyway); C − 1 exps a row
    for (let r = 0; r < n; r++) {
      const o = r * C;
      const t = targets[per === 1 ? r : Math.floor(r / per)];
      const zt = z[o + t];
      let sum = 1;
      for (let j = 0; j < C; j++) if (j !== t) sum += Math.exp(z[o + j] - zt);
      s[r] = 1 / sum;
    }
  } else for (let r = 0; r < n; r++) s[r] = z[r * C + targets[per === 1 ? r : Math.floor(r / per)]];
  return s;
}

export { floatX };

/** Perturbed rows scored for their example's target class (see {@link scorePerturbations}). */
export interface ScoredRows {
  /** Raw backbone outputs of every row [B·per, C]. */
  outputs: FloatTensor;
  numOutputs: number;
  /** Target class per example. */
  targets: Int32Array;
  /** Score of each row for its example's target (logit or probability). */
  scores: Float64Array;
}

/**
 * The shared step of the sampling methods (LIME, KernelSHAP, permutation SHAP, RISE, Archipelago): run `per` masked
 * rows per example through the backbone in one batched pass, resolve each example's target — from the row at
 * `fullRow` of its block, which the caller makes the unmasked input, when the target is the prediction — and score
 * every row for its example's target.
 */
export async function scorePerturbations(
  runner: BatchRunner,
  inputs: Inputs,
  masks: Float32Array | ((start: number, end: number, out: Float32Array) => void),
  per: number,
  options: AttributeOptions,
  mode: ScoreMode,
  fullRow = 0,
): Promise<ScoredRows & { rows: Int32Array }> {
  const B = inputs.x.shape[0];
  const rows = repeatIndex(B, per);
  const outputs = await runner.forwardMasked(inputs, masks, rows);
  const C = outputs.shape[1];
  let full: FloatTensor | null = null;
  if (needsPrediction(options)) {
    full = { data: new Float32Array(B * C), shape: [B, C] };
    for (let b = 0; b < B; b++) full.data.set(outputs.data.subarray((b * per + fullRow) * C, (b * per + fullRow + 1) * C), b * C);
  }
  const targets = resolveTargets(options.target, options.labels, full, B, C);
  // row r belongs to example ⌊r / per⌋: its target without a per-row array
  return { outputs, numOutputs: C, targets, scores: rowScores(outputs, targets, mode, per), rows };
}
