/**
 * ONNX graph surgery on the protobuf level (onnx-proto, protobufjs): load and save a ModelProto, list the graph's
 * tensors, add intermediates as extra graph outputs, read initializers, and find the last spatial tensor (GradCAM).
 * Never touches the user's file: callers write modified models elsewhere (see cache.ts).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import { UserError, writeFileAtomic } from '@sop/core';
import type { FloatTensor } from '@sop/core';
import { closeNames } from './names.js';

export const onnx = onnxProto.onnx;
export type ModelProto = onnxProto.onnx.ModelProto;
export type IModelProto = onnxProto.onnx.IModelProto;
export type IGraphProto = onnxProto.onnx.IGraphProto;
export type INodeProto = onnxProto.onnx.INodeProto;
export type ITensorProto = onnxProto.onnx.ITensorProto;
export type IValueInfoProto = onnxProto.onnx.IValueInfoProto;

/** ONNX TensorProto.DataType → a readable name (the ones onnxruntime uses in its tensor types). */
export const ONNX_DTYPES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  16: 'bfloat16',
};

type LongLike = number | { toNumber(): number } | { low: number; high: number } | null | undefined;

/** A protobuf int64 field (number or Long) as a JS number. */
export function toNumber(v: LongLike): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if ('toNumber' in v && typeof v.toNumber === 'function') return v.toNumber();
  const l = v as { low: number; high: number };
  return l.high * 4294967296 + (l.low >>> 0);
}

/** A dimension: a number when fixed, the symbolic name (e.g. 'batch') when dynamic, '?' when unknown. */
export type Dim = number | string;

export interface TensorType {
  dtype: string;
  /** undefined when the rank is unknown. */
  shape?: Dim[];
}

/** dtype/shape of a ValueInfoProto, when it carries a tensor type. */
export function valueInfoType(v: IValueInfoProto): TensorType | undefined {
  const tt = v.type?.tensorType;
  if (!tt) return undefined;
  const dtype = ONNX_DTYPES[tt.elemType ?? 0] ?? `type${tt.elemType ?? '?'}`;
  if (!tt.shape) return { dtype };
  const shape = (tt.shape.dim ?? []).map((d): Dim => {
    if (d.dimParam) return d.dimParam;
    if (d.dimValue !== null && d.dimValue !== undefined) return toNumber(d.dimValue as LongLike);
    return '?';
  });
  return { dtype, shape };
}

/**
 * Read and parse an .onnx file. A missing file, an empty/truncated file or a file that is not an ONNX ModelProto
 * is a UserError naming the path.
 */
export function loadModelProto(path: string): ModelProto {
  if (!existsSync(path)) {
    throw new UserError(
      `ONNX model not found: ${path}`,
      "check backbone.path (relative paths are resolved from the config file's folder)",
    );
  }
  if (statSync(path).isDirectory()) {
    throw new UserError(`ONNX model path is a folder, not a file: ${path}`, 'point backbone.path at the .onnx file inside it');
  }
  return decodeModelProto(readFileSync(path), path);
}

/** Parse ModelProto bytes; `where` names the source in errors. */
export function decodeModelProto(bytes: Uint8Array, where = '<bytes>'): ModelProto {
  const fix =
    'the file is not a complete ONNX model: re-export it (torch.onnx.export / optimum-cli export onnx) or download it again, and check that it is not a Git LFS pointer';
  if (bytes.length === 0) throw new UserError(`ONNX model ${where} is empty`, fix);
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new UserError(
      `ONNX model ${where} is malformed or truncated (${bytes.length} bytes; protobuf: ${(e as Error).message})`,
      fix,
      { cause: e },
    );
  }
  const g = model.graph;
  if (!g || (g.node ?? []).length === 0 || (g.output ?? []).length === 0) {
    throw new UserError(`ONNX model ${where} has no graph (no nodes or no outputs): it is malformed or truncated`, fix);
  }
  return model;
}

/** Serialise a ModelProto to bytes. */
export function encodeModelProto(model: IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** Write a ModelProto atomically (temp file + rename). */
export function saveModelProto(model: IModelProto, path: string): void {
  writeFileAtomic(path, encodeModelProto(model));
}

/** Names of the real graph inputs (old exporters also list initializers as inputs; those are left out). */
export function graphInputs(model: IModelProto): IValueInfoProto[] {
  const g = model.graph!;
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  return (g.input ?? []).filter((i) => !inits.has(i.name));
}

export interface GraphTensor {
  name: string;
  kind: 'input' | 'output' | 'initializer' | 'intermediate';
  /** Op type of the producing node (intermediates and outputs). */
  op?: string;
  type?: TensorType;
}

/** Every named tensor of the main graph: inputs, outputs, initializers and intermediates (node outputs). */
export function listTensors(model: IModelProto): GraphTensor[] {
  const g = model.graph!;
  const vi = new Map<string, IValueInfoProto>();
  for (const v of g.valueInfo ?? []) vi.set(v.name ?? '', v);
  const out: GraphTensor[] = [];
  const seen = new Set<string>();
  for (const i of graphInputs(model)) {
    out.push({ name: i.name ?? '', kind: 'input', type: valueInfoType(i) });
    seen.add(i.name ?? '');
  }
  const producer = new Map<string, string>();
  for (const n of g.node ?? []) for (const o of n.output ?? []) if (o) producer.set(o, n.opType ?? '');
  for (const o of g.output ?? []) {
    out.push({ name: o.name ?? '', kind: 'output', op: producer.get(o.name ?? ''), type: valueInfoType(o) });
    seen.add(o.name ?? '');
  }
  for (const t of g.initializer ?? []) {
    if (seen.has(t.name ?? '')) continue;
    out.push({
      name: t.name ?? '',
      kind: 'initializer',
      type: { dtype: ONNX_DTYPES[t.dataType ?? 0] ?? '?', shape: (t.dims ?? []).map((d) => toNumber(d as LongLike)) },
    });
    seen.add(t.name ?? '');
  }
  for (const n of g.node ?? []) {
    for (const o of n.output ?? []) {
      if (!o || seen.has(o)) continue;
      seen.add(o);
      const v = vi.get(o);
      out.push({ name: o, kind: 'intermediate', op: n.opType ?? '', type: v ? valueInfoType(v) : undefined });
    }
  }
  return out;
}

/** Throws a UserError when `name` is not a tensor of the graph, listing the closest names. */
export function requireTensor(model: IModelProto, name: string, what: string, kinds?: GraphTensor['kind'][]): GraphTensor {
  const all = listTensors(model);
  const pool = kinds ? all.filter((t) => kinds.includes(t.kind)) : all;
  const hit = pool.find((t) => t.name === name);
  if (hit) return hit;
  const close = closeNames(name, pool.map((t) => t.name));
  const kindText = kinds ? `${/^[aeiou]/.test(kinds[0]) ? 'an' : 'a'} ${kinds.join(' or ')}` : 'a tensor';
  throw new UserError(
    `${what}: '${name}' is not ${kindText} of the ONNX graph` + (close.length ? `; close names: ${close.join(', ')}` : ''),
    `use one of the names listed by \`sop inspect MODEL.onnx\`${close.length ? ` (e.g. '${close[0]}')` : ''}`,
  );
}

/**
 * Return a copy of `model` in which each of `names` (an intermediate or input tensor; graph outputs are kept as
 * they are) is also a graph output. Type information is taken from graph.valueInfo when present; otherwise the
 * output carries no type and onnxruntime infers it. Unknown names throw a UserError listing close names.
 */
export function exposeOutputs(model: IModelProto, names: string[]): ModelProto {
  // shallow copy: a new ModelProto/GraphProto sharing nodes and weights (no re-encoding of large models)
  const g = onnx.GraphProto.create({ ...model.graph!, output: [...(model.graph!.output ?? [])] });
  const copy = onnx.ModelProto.create({ ...model, graph: g });
  const outputs = new Set((g.output ?? []).map((o) => o.name));
  const vi = new Map<string, IValueInfoProto>();
  for (const v of g.valueInfo ?? []) vi.set(v.name ?? '', v);
  for (const v of g.input ?? []) vi.set(v.name ?? '', v);
  for (const name of names) {
    if (outputs.has(name)) continue;
    const t = requireTensor(copy, name, 'expose', ['intermediate', 'input', 'output']);
    const info = vi.get(name);
    if (t.kind === 'output') continue;
    (g.output ??= []).push(info ? onnx.ValueInfoProto.create({ name, type: info.type }) : onnx.ValueInfoProto.create({ name }));
    outputs.add(name);
  }
  return copy;
}

const GLOBAL_POOLS = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']);

/**
 * The last 4-D (N, C, H, W) tensor before global pooling — the usual GradCAM target layer. Looks (from the end of
 * the graph) for GlobalAveragePool/GlobalMaxPool, or ReduceMean/ReduceMax over the two spatial axes, and returns
 * its input. `shapes` (e.g. from inspectModel) is used as a fallback: the last intermediate with a rank-4 shape.
 * Returns undefined when neither finds anything (e.g. transformers).
 */
export function findLastSpatialTensor(model: IModelProto, shapes?: Record<string, Dim[] | undefined>): string | undefined {
  const g = model.graph!;
  const nodes = g.node ?? [];
  const consts = constantInts(model);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    const op = n.opType ?? '';
    if (GLOBAL_POOLS.has(op)) return n.input?.[0];
    if (op === 'ReduceMean' || op === 'ReduceMax') {
      let axes: number[] | undefined;
      const attr = (n.attribute ?? []).find((a) => a.name === 'axes');
      if (attr) axes = (attr.ints ?? []).map((v) => toNumber(v as LongLike));
      else if (n.input && n.input.length > 1) axes = consts.get(n.input[1]);
      if (!axes) continue;
      const norm = axes.map((a) => (a < 0 ? a + 4 : a)).sort();
      if (norm.length === 2 && norm[0] === 2 && norm[1] === 3) return n.input?.[0];
    }
  }
  if (shapes) {
    const tensors = listTensors(model).filter((t) => t.kind === 'intermediate');
    for (let i = tensors.length - 1; i >= 0; i--) {
      const s = shapes[tensors[i].name] ?? tensors[i].type?.shape;
      if (s && s.length === 4) return tensors[i].name;
    }
  }
  return undefined;
}

/** int64 values of small constant tensors (initializers and Constant nodes), by name. */
function constantInts(model: IModelProto): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const g = model.graph!;
  const add = (name: string, t: ITensorProto) => {
    if (t.dataType !== 7) return;
    if ((t.int64Data ?? []).length) out.set(name, (t.int64Data ?? []).map((v) => toNumber(v as LongLike)));
    else if (t.rawData && t.rawData.length % 8 === 0 && t.rawData.length <= 64) {
      const dv = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.length);
      const vals: number[] = [];
      for (let i = 0; i < t.rawData.length; i += 8) vals.push(Number(dv.getBigInt64(i, true)));
      out.set(name, vals);
    }
  };
  for (const t of g.initializer ?? []) add(t.name ?? '', t);
  for (const n of g.node ?? []) {
    if (n.opType !== 'Constant') continue;
    const a = (n.attribute ?? []).find((x) => x.name === 'value');
    if (a?.t && n.output?.[0]) add(n.output[0], a.t);
  }
  return out;
}

/** Whether any initializer keeps its data in an external file (models > 2 GB). */
export function hasExternalData(model: IModelProto): boolean {
  return (model.graph?.initializer ?? []).some((t) => t.dataLocation === 1);
}

/**
 * An initializer's values as float32 with its shape. Handles raw_data, float_data/double_data/int*_data and
 * external data (relative to `modelPath`'s folder). float16 is converted.
 */
export function readInitializer(model: IModelProto, name: string, modelPath?: string): FloatTensor {
  const t = (model.graph?.initializer ?? []).find((x) => x.name === name);
  if (!t) {
    const close = closeNames(name, (model.graph?.initializer ?? []).map((x) => x.name ?? ''));
    throw new UserError(
      `'${name}' is not an initializer (weight) of the ONNX graph` + (close.length ? `; close names: ${close.join(', ')}` : ''),
      'use a weight name listed under "initializers" by `sop inspect MODEL.onnx`',
    );
  }
  const shape = (t.dims ?? []).map((d) => toNumber(d as LongLike));
  const n = shape.reduce((a, b) => a * b, 1);
  let raw: Uint8Array | undefined = t.rawData && t.rawData.length ? t.rawData : undefined;
  if (t.dataLocation === 1) {
    const kv = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
    const file = resolve(dirname(modelPath ?? '.'), kv.location ?? '');
    if (!kv.location || !existsSync(file)) {
      throw new UserError(`external data file for initializer '${name}' not found: ${file}`, 'keep the model\'s external data files next to the .onnx file');
    }
    const buf = readFileSync(file);
    const off = Number(kv.offset ?? 0);
    const len = kv.length !== undefined && kv.length !== null ? Number(kv.length) : buf.length - off;
    raw = buf.subarray(off, off + len);
  }
  const data = new Float32Array(n);
  const dt = t.dataType ?? 0;
  if (raw) {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < n; i++) {
      if (dt === 1) data[i] = dv.getFloat32(i * 4, true);
      else if (dt === 11) data[i] = dv.getFloat64(i * 8, true);
      else if (dt === 10) data[i] = halfToFloat(dv.getUint16(i * 2, true));
      else if (dt === 16) data[i] = new Float32Array(new Uint32Array([dv.getUint16(i * 2, true) << 16]).buffer)[0];
      else if (dt === 7) data[i] = Number(dv.getBigInt64(i * 8, true));
      else if (dt === 6) data[i] = dv.getInt32(i * 4, true);
      else throw new UserError(`initializer '${name}' has unsupported data type ${ONNX_DTYPES[dt] ?? dt}`, 'use a float weight');
    }
  } else if (dt === 1 && (t.floatData ?? []).length === n) data.set(t.floatData!);
  else if (dt === 11 && (t.doubleData ?? []).length === n) for (let i = 0; i < n; i++) data[i] = t.doubleData![i];
  else if (dt === 10 && (t.int32Data ?? []).length === n) for (let i = 0; i < n; i++) data[i] = halfToFloat(t.int32Data![i]);
  else if (dt === 7 && (t.int64Data ?? []).length === n) for (let i = 0; i < n; i++) data[i] = toNumber(t.int64Data![i] as LongLike);
  else if (dt === 6 && (t.int32Data ?? []).length === n) for (let i = 0; i < n; i++) data[i] = t.int32Data![i];
  else throw new UserError(`initializer '${name}' has no readable data (type ${ONNX_DTYPES[dt] ?? dt})`, 'use a float weight stored in the model');
  return { data, shape };
}

/** IEEE half (as uint16 bits) → number. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/**
 * How `name` (a 2-D weight) is used: 'rows-are-outputs' when it is a Gemm B with transB=1 (PyTorch Linear: [out,
 * in]); 'columns-are-outputs' for MatMul's second input or Gemm B with transB=0 ([in, out]); undefined if unknown.
 */
export function weightLayout(model: IModelProto, name: string): 'rows-are-outputs' | 'columns-are-outputs' | undefined {
  for (const n of model.graph?.node ?? []) {
    const idx = (n.input ?? []).indexOf(name);
    if (idx < 0) continue;
    if (n.opType === 'Gemm') {
      const attr = (k: string) => toNumber((n.attribute ?? []).find((a) => a.name === k)?.i as LongLike);
      if (idx === 1) return attr('transB') ? 'rows-are-outputs' : 'columns-are-outputs';
    }
    if (n.opType === 'MatMul' && idx === 1) return 'columns-are-outputs';
  }
  return undefined;
}

/** number → IEEE half bits (round to nearest even; overflow to ±Infinity). */
export function floatToHalf(v: number): number {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  e = h >>> 10;
  return sign | h;
}
