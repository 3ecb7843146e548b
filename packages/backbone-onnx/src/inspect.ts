/**
 * `sop inspect MODEL.onnx`: what is in an ONNX file — inputs, outputs, initializers (weights) and intermediate
 * tensors with dtype/shape. Shapes come from the graph's value_info when the exporter wrote it; otherwise the model
 * is run on dummy batches with every intermediate exposed (see shapes.ts): dims that follow the batch are reported
 * as 'batch', other input-dependent dims as '?'.
 */
import { resolve } from 'node:path';
import { UserError } from '@sop/core';
import { findLastSpatialTensor, listTensors, loadModelProto, toNumber } from './proto.js';
import type { Dim, GraphTensor } from './proto.js';
import { formatShape } from './session.js';
import { measureShapes } from './shapes.js';
import type { SessionConfig } from './session.js';

export interface TensorSummary {
  name: string;
  kind: GraphTensor['kind'];
  /** Producing op (outputs and intermediates). */
  op?: string;
  dtype?: string;
  shape?: Dim[];
  /** Where the shape came from: the graph's declared types, a dummy run, or nowhere. */
  shapeSource: 'graph' | 'run' | 'unknown';
}

export interface ModelInspection {
  path: string;
  irVersion: number;
  producer: string;
  opsets: Array<{ domain: string; version: number }>;
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  initializers: TensorSummary[];
  intermediates: TensorSummary[];
  /** Total number of values in float initializers. */
  parameterCount: number;
  /** GradCAM-style target: last 4-D tensor before global pooling, when there is one. */
  lastSpatialTensor?: string;
  /** Why the dummy run failed, if it did (shapes of intermediates then stay unknown). */
  runError?: string;
}

export interface InspectOptions {
  /** Run the model on dummy batches to learn intermediate shapes (default true). */
  run?: boolean;
  /** Size used for symbolic non-batch dims (sequence length, image side) in the dummy runs. Default 8. */
  dynamicDim?: number;
  session?: SessionConfig;
}

export async function inspectModel(path: string, options: InspectOptions = {}): Promise<ModelInspection> {
  const abs = resolve(path);
  const model = loadModelProto(abs);
  const tensors = listTensors(model);
  const summary = (t: GraphTensor): TensorSummary => ({
    name: t.name,
    kind: t.kind,
    op: t.op,
    dtype: t.type?.dtype,
    shape: t.type?.shape,
    shapeSource: t.type?.shape ? 'graph' : 'unknown',
  });
  const info: ModelInspection = {
    path: abs,
    irVersion: toNumber(model.irVersion as never),
    producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim(),
    opsets: (model.opsetImport ?? []).map((o) => ({ domain: o.domain || 'ai.onnx', version: toNumber(o.version as never) })),
    inputs: tensors.filter((t) => t.kind === 'input').map(summary),
    outputs: tensors.filter((t) => t.kind === 'output').map(summary),
    initializers: tensors.filter((t) => t.kind === 'initializer').map(summary),
    intermediates: tensors.filter((t) => t.kind === 'intermediate').map(summary),
    parameterCount: 0,
  };
  for (const t of info.initializers) {
    if (t.dtype?.startsWith('float') || t.dtype === 'bfloat16') info.parameterCount += (t.shape ?? []).reduce<number>((a, d) => a * Number(d), 1);
  }

  // declared dims are kept when fixed or named like an input dim ('batch', 'sequence'); exporters also write
  // made-up names for dims they could not infer (torch: 'Gatherhidden_dim_1'), which the dummy run replaces
  const inputParams = new Set(info.inputs.flatMap((i) => (i.shape ?? []).filter((d): d is string => typeof d === 'string')));
  const known = (shape: Dim[] | undefined) => !!shape && shape.every((d) => typeof d === 'number' || inputParams.has(d));
  const needRun = [...info.outputs, ...info.intermediates].some((t) => t.op !== 'Constant' && !known(t.shape));
  if (options.run !== false && needRun) {
    try {
      const measured = await measureShapes(model, { dynamicDim: options.dynamicDim, session: options.session, modelPath: abs });
      for (const t of [...info.outputs, ...info.intermediates]) {
        const m = measured.get(t.name);
        if (!m) continue;
        if (!t.dtype || t.dtype.startsWith('type')) t.dtype = m.dtype;
        if (known(t.shape)) continue;
        const declared = t.shape;
        t.shape =
          declared && declared.length === m.shape.length
            ? m.shape.map((d, i) => (typeof declared[i] === 'number' || inputParams.has(declared[i] as string) ? declared[i] : d))
            : m.shape;
        t.shapeSource = 'run';
      }
    } catch (e) {
      info.runError = e instanceof UserError ? e.message : String((e as Error)?.message ?? e);
    }
  }
  const shapes: Record<string, Dim[] | undefined> = {};
  for (const t of info.intermediates) shapes[t.name] = t.shape;
  info.lastSpatialTensor = findLastSpatialTensor(model, shapes);
  return info;
}

export interface FormatOptions {
  /** Show outputs of Constant nodes too (hidden by default). */
  all?: boolean;
  /** At most this many intermediates (default 200; the rest are counted). */
  maxIntermediates?: number;
}

/** A readable multi-section table of an inspection. */
export function formatInspection(info: ModelInspection, options: FormatOptions = {}): string {
  const lines: string[] = [];
  lines.push(`${info.path}`);
  lines.push(
    `  IR ${info.irVersion}, opset ${info.opsets.map((o) => (o.domain === 'ai.onnx' ? `${o.version}` : `${o.domain} ${o.version}`)).join(', ')}` +
      (info.producer ? `, producer ${info.producer}` : '') +
      `, ${info.parameterCount.toLocaleString('en-US')} parameters`,
  );
  const table = (title: string, rows: TensorSummary[], withOp: boolean) => {
    lines.push('');
    lines.push(`${title} (${rows.length})`);
    if (rows.length === 0) return;
    const cells = rows.map((r) => [
      r.name,
      r.dtype ?? '?',
      formatShape(r.shape) + (r.shapeSource === 'run' ? '*' : ''),
      withOp ? (r.op ?? '') : '',
    ]);
    const w = [0, 1, 2].map((i) => Math.min(72, Math.max(...cells.map((c) => c[i].length))));
    for (const c of cells) lines.push(`  ${c[0].padEnd(w[0])}  ${c[1].padEnd(w[1])}  ${c[2].padEnd(w[2])}  ${c[3]}`.trimEnd());
  };
  table('inputs', info.inputs, false);
  table('outputs', info.outputs, true);
  table('initializers', info.initializers, false);
  const inter = info.intermediates.filter((t) => options.all || t.op !== 'Constant');
  const max = options.maxIntermediates ?? 200;
  table('intermediates', inter.slice(0, max), true);
  if (inter.length > max) lines.push(`  … ${inter.length - max} more`);
  lines.push('');
  if (info.lastSpatialTensor) lines.push(`last spatial tensor (GradCAM target): ${info.lastSpatialTensor}`);
  if (info.intermediates.some((t) => t.shapeSource === 'run')) lines.push('* shape measured by running the model on a dummy batch');
  if (info.runError) lines.push(`dummy run failed, intermediate shapes unknown: ${info.runError}`);
  lines.push('expose an intermediate with backbone.expose: [NAME] (or backbone.hidden / backbone.embeddings: NAME)');
  return lines.join('\n');
}
