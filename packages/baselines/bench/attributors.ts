/**
 * Attributor cost benchmark: per method, backbone rows (forward) and vjp rows per explanation, wall time per
 * explanation, and the fraction of wall time spent outside the backbone (attributor bookkeeping, mask building, the
 * masker and the feature space; target ≤ 10%). Two backbones:
 *  - `onnx-digits`: fixtures/onnx/digits-cnn.onnx via @sop/backbone-onnx (x [B, 1, 8, 8], 2×2 patches → d = 16),
 *    when the fixture and the package load;
 *  - `js-mlp`: a batched JS MLP 784 → 256 (tanh) → 10 with an analytic vjp (x [B, 1, 28, 28], 4×4 patches → d = 49),
 *    about 0.2 M multiply-adds per row, i.e. a realistic small-model cost in plain JS.
 * Feature space and masker: core's PatchesSpace and zero masker. Run: `npx tsx packages/baselines/bench/attributors.ts`
 * (`SOP_BENCH_CASES=onnx-digits`, `SOP_BENCH_METHODS=lime,rise` to run a subset).
 *
 * Measurement: model time is the wall time inside `backbone.forward` / `backbone.vjp` (BatchRunner.modelMs); the
 * timed runs do not ask for process CPU time (`process.cpuUsage()` sums all threads and costs up to ~1 ms per call
 * while onnxruntime's threads spin, time that would land outside the model); separate runs with `cpuTiming: true`
 * give the CPU fractions. The ONNX session is created with `spinning: false` (onnxruntime's pool threads sleep after
 * a run instead of busy-waiting; set SOP_BENCH_ORT_SPINNING=1 for onnxruntime's default), so that they do not steal
 * the cores the attributor's JavaScript runs on between calls (on a busy 2-core machine spinning threads made a
 * 160-row run of the digits CNN take 3.7–4.0 ms instead of 1.9–2.5 ms, and slowed the JavaScript after it). The
 * replayed runs (steady-state overhead) see the same backbone extras (GradCAM layer, FullGrad bias layers and
 * parameters) as the real ones. Each method is warmed up for 300 ms (at least 1 call) and timed over ≥ 600 ms (at
 * least 5 calls; 2 for archipelago): a handful of calls measures V8's unoptimised code.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PatchesSpace, zeroMasker, type AttributeOptions, type Attributor, type Backbone, type BackboneOutputs, type FloatTensor, type Inputs, type VjpRequest, type VjpResult } from '@sop/core';
import { allAttributors } from '../src/index.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const ORT_SPINNING = process.env.SOP_BENCH_ORT_SPINNING === '1';
const only = (v: string | undefined): string[] | undefined => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
const WARMUP_MS = Number(process.env.SOP_BENCH_WARMUP_MS ?? 300);
const REPS_MS = 600;
const CASES = only(process.env.SOP_BENCH_CASES);
const METHODS = only(process.env.SOP_BENCH_METHODS);

/** Methods beyond forward/vjp that attributors look up on a backbone (GradCAM / FullGrad defaults, bias values). */
const EXTRAS = ['gradcamLayer', 'fullgradBiasLayers', 'parameter', 'parameters'] as const;

/** Copy `EXTRAS` of `bb` (bound) onto `to`. */
function withExtras(bb: Backbone, to: Backbone): Backbone {
  const src = bb as unknown as Record<string, unknown>;
  for (const k of EXTRAS) if (typeof src[k] === 'function') (to as unknown as Record<string, unknown>)[k] = (src[k] as (...a: unknown[]) => unknown).bind(bb);
  return to;
}

/** Batched JS MLP: h = W1·x + b1, z = tanh(h), y = W2·z + b2. Exposes 'features' (h as [16, 4, 4]) and 'attention'. */
function jsMlp(n: number, hidden: number, C: number, attentionFeatures: (x: Float32Array, B: number) => Float32Array): Backbone {
  let s = 12345;
  const rnd = (): number => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296 - 0.5);
  const W1 = Float32Array.from({ length: hidden * n }, () => rnd() * (2 / Math.sqrt(n)));
  const b1 = Float32Array.from({ length: hidden }, () => rnd() * 0.1);
  const W2 = Float32Array.from({ length: C * hidden }, () => rnd() * (2 / Math.sqrt(hidden)));
  const side = Math.sqrt(hidden / 16);
  const pre = (x: Float32Array, B: number): Float32Array => {
    const h = new Float32Array(B * hidden);
    for (let b = 0; b < B; b++) {
      const xo = b * n;
      for (let j = 0; j < hidden; j++) {
        let a = b1[j];
        const wo = j * n;
        for (let i = 0; i < n; i++) a += W1[wo + i] * x[xo + i];
        h[b * hidden + j] = a;
      }
    }
    return h;
  };
  const head = (h: Float32Array, B: number): Float32Array => {
    const y = new Float32Array(B * C);
    for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) {
      let a = 0;
      for (let j = 0; j < hidden; j++) a += W2[c * hidden + j] * Math.tanh(h[b * hidden + j]);
      y[b * C + c] = a;
    }
    return y;
  };
  return {
    name: 'js-mlp',
    info: { outputDim: C, inputShape: [1, 28, 28], extraOutputs: ['features', 'attention'] },
    capabilities: { vjp: true, hidden: false, embeddings: false },
    async forward(inputs: Inputs, options): Promise<BackboneOutputs> {
      const B = inputs.x.shape[0];
      const x = inputs.x.data as Float32Array;
      const h = pre(x, B);
      const out: BackboneOutputs = { output: { data: head(h, B), shape: [B, C] } };
      if (options?.outputs?.includes('features')) out.features = { data: h, shape: [B, 16, side, side] };
      if (options?.outputs?.includes('attention')) out.attention = { data: attentionFeatures(x, B), shape: [B, 49] };
      return out;
    },
    async vjp(inputs: Inputs, req: VjpRequest): Promise<VjpResult> {
      const B = inputs.x.shape[0];
      const h = pre(inputs.x.data as Float32Array, B);
      const cot = req.cotangents.output!.data;
      const dh = new Float32Array(B * hidden);
      for (let b = 0; b < B; b++) for (let j = 0; j < hidden; j++) {
        let a = 0;
        for (let c = 0; c < C; c++) a += cot[b * C + c] * W2[c * hidden + j];
        const t = Math.tanh(h[b * hidden + j]);
        dh[b * hidden + j] = a * (1 - t * t);
      }
      const grads: Record<string, FloatTensor> = {};
      for (const w of req.wrt ?? ['x']) {
        if (w === 'features') grads.features = { data: dh, shape: [B, 16, side, side] };
        else if (w === 'x') {
          const dx = new Float32Array(B * n);
          for (let b = 0; b < B; b++) for (let j = 0; j < hidden; j++) {
            const g = dh[b * hidden + j];
            if (g === 0) continue;
            const wo = j * n;
            for (let i = 0; i < n; i++) dx[b * n + i] += g * W1[wo + i];
          }
          grads.x = { data: dx, shape: [...inputs.x.shape] };
        }
      }
      return { outputs: { output: { data: head(h, B), shape: [B, C] } }, grads };
    },
  };
}

interface Case {
  name: string;
  backbone: Backbone;
  inputs: Inputs;
  space: PatchesSpace;
  perMethod?: Record<string, AttributeOptions>;
  skip?: string[];
}

function images(B: number, C: number, H: number, W: number): Float32Array {
  const x = new Float32Array(B * C * H * W);
  for (let i = 0; i < x.length; i++) x[i] = (((i * 2654435761) >>> 0) % 1000) / 1000;
  return x;
}

async function onnxCase(): Promise<Case | { name: string; unavailable: string }> {
  const path = resolve(ROOT, 'fixtures/onnx/digits-cnn.onnx');
  if (!existsSync(path)) return { name: 'onnx-digits', unavailable: 'fixture missing' };
  try {
    const mod = (await import(pathToFileURL(resolve(ROOT, 'packages/backbone-onnx/src/index.ts')).href)) as { OnnxBackbone: { load(o: Record<string, unknown>): Promise<Backbone> } };
    const backbone = await mod.OnnxBackbone.load({ path, expose: ['/relu3/Relu_output_0'], spinning: ORT_SPINNING });
    const B = 8;
    return {
      name: 'onnx-digits',
      backbone,
      inputs: { x: { data: images(B, 1, 8, 8), shape: [B, 1, 8, 8] } },
      space: new PatchesSpace([1, 8, 8], [2, 2]),
      perMethod: { gradcam: { layer: '/relu3/Relu_output_0' } },
      skip: ['fresh'],
    };
  } catch (e) {
    return { name: 'onnx-digits', unavailable: (e as Error).message.split('\n')[0] };
  }
}

function jsCase(): Case {
  const space = new PatchesSpace([1, 28, 28], [4, 4]);
  const att = (x: Float32Array, B: number): Float32Array => space.aggregate({ data: x, shape: [B, 1, 28, 28] }, { x: { data: x, shape: [B, 1, 28, 28] } }).data;
  const B = 4;
  return { name: 'js-mlp', backbone: jsMlp(784, 256, 10, att), inputs: { x: { data: images(B, 1, 28, 28), shape: [B, 1, 28, 28] } }, space };
}

/** Wraps a backbone, recording every result in call order. */
function recording(bb: Backbone): { backbone: Backbone; log: unknown[] } {
  const log: unknown[] = [];
  const backbone: Backbone = {
    name: bb.name,
    info: bb.info,
    capabilities: bb.capabilities,
    forward: async (i, o) => {
      const r = await bb.forward(i, o);
      log.push(r);
      return r;
    },
  };
  if (bb.vjp) {
    const vjp = bb.vjp.bind(bb);
    backbone.vjp = async (i, q) => {
      const r = await vjp(i, q);
      log.push(r);
      return r;
    };
  }
  return { backbone: withExtras(bb, backbone), log };
}

/** Replays a recorded run (same seed → same calls): a zero-cost backbone, so the run's time is pure attributor overhead. */
function replaying(bb: Backbone, log: unknown[]): Backbone {
  let k = 0;
  const next = async <T>(): Promise<T> => log[k++ % log.length] as T;
  return withExtras(bb, { name: bb.name, info: bb.info, capabilities: bb.capabilities, forward: () => next(), vjp: bb.vjp ? () => next() : undefined });
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function bench(c: Case, methods: Attributor[]): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  const B = c.inputs.x.shape[0];
  const context = { backbone: c.backbone, space: c.space, masker: zeroMasker };
  for (const m of methods) {
    if (c.skip?.includes(m.name) || (METHODS && !METHODS.includes(m.name))) continue;
    if (m.access === 'gradient' && !c.backbone.capabilities.vjp) {
      rows.push({ method: m.name, skipped: 'backbone has no vjp' });
      continue;
    }
    const opts: AttributeOptions = { seed: 0, ...(c.perMethod?.[m.name] ?? {}) };
    try {
      // warm-up (sessions, and the JIT: a method's loops run unoptimised for its first calls, which a run over a data
      // set amortises): at least 1 call and WARMUP_MS
      for (let r = 0, w0 = performance.now(); r < 1 || performance.now() - w0 < WARMUP_MS; r++) await m.attribute(c.inputs, context, opts);
      const walls: number[] = [];
      const wallFr: number[] = [];
      const cpuFr: number[] = [];
      const models: number[] = [];
      let meta: Record<string, unknown> = {};
      // repetitions: at least 2 (archipelago) or 5, then until REPS_MS have passed (at most 200)
      const minReps = m.name === 'archipelago' ? 2 : 5;
      const reps0 = performance.now();
      for (let r = 0; r < 200 && (r < minReps || performance.now() - reps0 < REPS_MS); r++) {
        const t0 = performance.now();
        const a = await m.attribute(c.inputs, context, opts);
        const wall = performance.now() - t0;
        walls.push(wall);
        wallFr.push(1 - (a.meta.modelMs as number) / wall);
        models.push(a.meta.modelMs as number);
        meta = a.meta;
      }
      // CPU fractions: separate runs, as measuring CPU time per backbone call has a cost of its own
      for (let r = 0; r < Math.min(3, minReps); r++) {
        const c0 = process.cpuUsage();
        const a = await m.attribute(c.inputs, context, { ...opts, cpuTiming: true });
        const cu = process.cpuUsage(c0);
        cpuFr.push(1 - (a.meta.modelCpuMs as number) / ((cu.user + cu.system) / 1000));
      }
      // steady-state overhead: replay the recorded backbone results (no model cost) and time the attributor alone
      const rec = recording(c.backbone);
      await m.attribute(c.inputs, { ...context, backbone: rec.backbone }, opts);
      const replay = { ...context, backbone: replaying(c.backbone, rec.log) };
      const over: number[] = [];
      for (let r = 0, w0 = performance.now(); r < 1 || performance.now() - w0 < WARMUP_MS / 2; r++) await m.attribute(c.inputs, replay, opts);
      for (let r = 0, r0 = performance.now(); r < 200 && (r < (minReps > 2 ? 7 : 3) || performance.now() - r0 < REPS_MS / 2); r++) {
        const c0 = process.cpuUsage();
        await m.attribute(c.inputs, replay, opts);
        const cu = process.cpuUsage(c0);
        over.push((cu.user + cu.system) / 1000);
      }
      const overheadMs = median(over) / B;
      const modelMs = median(models) / B;
      rows.push({
        method: m.name,
        evaluationsPerExplanation: (meta.evaluations as number) / B,
        gradientsPerExplanation: ((meta.gradients as number) ?? 0) / B,
        backboneCalls: meta.calls,
        msPerExplanation: +(median(walls) / B).toFixed(3),
        outsideModelFraction: +median(wallFr).toFixed(4),
        outsideModelCpuFraction: +median(cpuFr).toFixed(4),
        overheadMsPerExplanation: +overheadMs.toFixed(4),
        steadyOutsideFraction: +(overheadMs / (overheadMs + modelMs)).toFixed(4),
      });
    } catch (e) {
      rows.push({ method: m.name, error: (e as Error).message.split('\n')[0] });
    }
  }
  return rows;
}

export async function run(): Promise<Record<string, unknown>> {
  const methods = allAttributors();
  const cases: Record<string, unknown> = {};
  if (!CASES || CASES.includes('js-mlp')) {
    const js = jsCase();
    cases[js.name] = { features: js.space.numFeatures, batch: js.inputs.x.shape[0], methods: await bench(js, methods) };
  }
  if (!CASES || CASES.includes('onnx-digits')) {
    const ox = await onnxCase();
    if ('unavailable' in ox) cases[ox.name] = { unavailable: ox.unavailable };
    else {
      cases[ox.name] = { features: ox.space.numFeatures, batch: ox.inputs.x.shape[0], vjp: ox.backbone.capabilities.vjp, ortSpinning: ORT_SPINNING, methods: await bench(ox, methods) };
      await ox.backbone.dispose?.();
    }
  }
  const all = Object.values(cases).flatMap((c) => ((c as { methods?: Record<string, unknown>[] }).methods ?? []));
  const fr = all.map((r) => r.steadyOutsideFraction).filter((v): v is number => typeof v === 'number');
  return {
    unit: 'per explanation (median of repetitions); outsideModelFraction = 1 − (wall time inside backbone.forward/vjp) / wall; outsideModelCpuFraction: the same with process CPU time, from separate runs with cpuTiming (robust on a busy machine; onnxruntime threads that spin after a call count as outside); overheadMsPerExplanation: CPU time of the attributor alone, replaying recorded backbone results (steady state, load-independent); steadyOutsideFraction = overhead / (overhead + model wall time); target ≤ 0.10',
    budget: 20,
    cases,
    worstSteadyOutsideFraction: fr.length ? Math.max(...fr) : null,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then((r) => console.log(JSON.stringify(r, null, 2)));
}
