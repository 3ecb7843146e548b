/**
 * Learning the dtype/shape of every tensor of a graph by running it: expose all intermediates, run on dummy batches
 * of 1 and 2 rows, and call a dim 'batch' when it changes with the batch size. Used by `inspectModel` and by
 * `annotateShapes`, which writes the result into graph.valueInfo (exporters such as torch.onnx at opset 17 write
 * none) so that tools needing ranks (e.g. the gradient builder) can work on the model.
 */
import { cacheKey, hashBytes, writeCachedModel } from './cache.js';
import { encodeModelProto, exposeOutputs, hasExternalData, listTensors, onnx, ONNX_DTYPES } from './proto.js';
import type { Dim, IModelProto, ModelProto } from './proto.js';
import { createSession, dummyFeeds, sessionInputs } from './session.js';
import type { SessionConfig } from './session.js';

export interface MeasuredType {
  dtype: string;
  shape: Dim[];
}

export interface MeasureOptions {
  /** Size used for symbolic non-batch dims (sequence length, image side). Default 8. */
  dynamicDim?: number;
  session?: SessionConfig;
  /** Name for dims that follow the batch size. Default 'batch'. */
  batchDim?: string;
  /**
   * Path of the model file. Needed for models with external data (> 2 GB): the exposed copy is then written next to
   * it (see cache.ts) so that the data files resolve; otherwise the session is created from bytes.
   */
  modelPath?: string;
}

/**
 * dtype and shape of every non-Constant node output (and graph output) by running the model on dummy inputs: batch 1
 * and batch 2 (a dim going 1 → 2 is 'batch'), and, when an input has symbolic non-batch dims (sequence length,
 * image size), once more with those at another size (a dim that changes is '?', unknown).
 */
export async function measureShapes(model: IModelProto, options: MeasureOptions = {}): Promise<Map<string, MeasuredType>> {
  const tensors = listTensors(model).filter((t) => (t.kind === 'intermediate' && t.op !== 'Constant') || t.kind === 'output');
  const exposed = exposeOutputs(
    model,
    tensors.filter((t) => t.kind === 'intermediate').map((t) => t.name),
  );
  const sessionConfig = { ...options.session, graphOptimizationLevel: 'disabled' as const };
  const bytes = encodeModelProto(exposed);
  const session =
    hasExternalData(model) && options.modelPath
      ? await createSession(writeCachedModel(options.modelPath, exposed, cacheKey(hashBytes(bytes), 'measure')), sessionConfig)
      : await createSession(bytes, sessionConfig);
  const out = new Map<string, MeasuredType>();
  const dyn = options.dynamicDim ?? 8;
  try {
    const inputs = sessionInputs(session);
    const hasDynamic = inputs.some((i) => (i.shape ?? []).some((d, k) => k > 0 && typeof d !== 'number'));
    const r1 = await session.run(dummyFeeds(inputs, 1, dyn));
    const r2 = await session.run(dummyFeeds(inputs, 2, dyn));
    const r3 = hasDynamic ? await session.run(dummyFeeds(inputs, 1, dyn + 1)) : undefined;
    for (const t of tensors) {
      const a = r1[t.name];
      const b = r2[t.name];
      if (!a || !b) continue;
      const da = a.dims.map(Number);
      const db = b.dims.map(Number);
      const dc = r3?.[t.name]?.dims.map(Number);
      const shape = da.map((d, i): Dim => {
        if (db.length !== da.length || (dc && dc.length !== da.length)) return '?';
        if (dc && dc[i] !== d) return '?';
        if (db[i] !== d) return d === 1 && db[i] === 2 ? (options.batchDim ?? 'batch') : '?';
        return d;
      });
      out.set(t.name, { dtype: a.type, shape });
    }
  } finally {
    await session.release();
  }
  return out;
}

const ONNX_TYPE_IDS: Record<string, number> = Object.fromEntries(Object.entries(ONNX_DTYPES).map(([k, v]) => [v, Number(k)]));

/**
 * A copy of `model` whose graph.valueInfo holds the measured dtype/shape of every intermediate that had none
 * (dims that follow the batch become symbolic 'batch'). Other dynamic dims are recorded at the dummy size, so use
 * it for ranks/dtypes rather than exact sizes of sequence-length dims.
 */
export async function annotateShapes(model: IModelProto, options: MeasureOptions = {}): Promise<ModelProto> {
  const measured = await measureShapes(model, options);
  const g = model.graph!;
  const known = new Set((g.valueInfo ?? []).map((v) => v.name));
  const outputs = new Set((g.output ?? []).map((o) => o.name));
  const add = [];
  for (const [name, t] of measured) {
    if (known.has(name) || outputs.has(name)) continue;
    const elemType = ONNX_TYPE_IDS[t.dtype];
    if (!elemType) continue;
    add.push(
      onnx.ValueInfoProto.create({
        name,
        type: {
          tensorType: {
            elemType,
            shape: { dim: t.shape.map(toDim) },
          },
        },
      }),
    );
  }
  // graph outputs without a declared type get one too
  const newOutputs = (g.output ?? []).map((o) => {
    const t = measured.get(o.name ?? '');
    if (o.type?.tensorType || !t || !ONNX_TYPE_IDS[t.dtype]) return o;
    return onnx.ValueInfoProto.create({
      name: o.name,
      type: { tensorType: { elemType: ONNX_TYPE_IDS[t.dtype], shape: { dim: t.shape.map(toDim) } } },
    });
  });
  const graph = onnx.GraphProto.create({ ...g, valueInfo: [...(g.valueInfo ?? []), ...add], output: newOutputs });
  return onnx.ModelProto.create({ ...model, graph });
}

/** A measured dim as a TensorShapeProto dimension: fixed value, symbolic 'batch', or unknown ('?'). */
function toDim(d: Dim): { dimValue?: number; dimParam?: string } {
  if (typeof d === 'number') return { dimValue: d };
  return d === '?' ? {} : { dimParam: d };
}
