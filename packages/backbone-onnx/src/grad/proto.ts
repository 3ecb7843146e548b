/**
 * Thin helpers over onnx-proto (protobufjs, CommonJS): reading attributes and small constant tensors, building
 * nodes, attributes and tensors. int64 fields decode as `Long` objects; everything here hands back plain numbers.
 */
import onnxProto from 'onnx-proto';
import { onnx } from '../proto.js';
import type { INodeProto, ITensorProto, IValueInfoProto } from '../proto.js';

// the package's onnx-proto aliases (../proto.ts), plus the ones only the gradient builder needs
export { onnx };
export type { ModelProto, IModelProto, INodeProto, IGraphProto, ITensorProto, IValueInfoProto } from '../proto.js';
export type IAttributeProto = onnxProto.onnx.IAttributeProto;
export type NodeProto = onnxProto.onnx.NodeProto;
export type TensorProto = onnxProto.onnx.TensorProto;
export type ValueInfoProto = onnxProto.onnx.ValueInfoProto;

/** TensorProto.DataType values used here. */
export const DT = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;

export const FLOAT_TYPES: ReadonlySet<number> = new Set([DT.FLOAT, DT.FLOAT16, DT.DOUBLE, DT.BFLOAT16]);

type LongLike = number | { toNumber(): number } | { low: number; high: number };

/** A protobuf int64 (number or Long) as a JS number. */
export function num(v: LongLike | null | undefined): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if ('toNumber' in v && typeof v.toNumber === 'function') return v.toNumber();
  const l = v as { low: number; high: number };
  return l.high * 4294967296 + (l.low >>> 0);
}

export function findAttr(node: INodeProto, name: string): IAttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function attrInt(node: INodeProto, name: string, dflt: number): number;
export function attrInt(node: INodeProto, name: string): number | undefined;
export function attrInt(node: INodeProto, name: string, dflt?: number): number | undefined {
  const a = findAttr(node, name);
  return a ? num(a.i as LongLike) : dflt;
}

export function attrFloat(node: INodeProto, name: string, dflt: number): number {
  const a = findAttr(node, name);
  return a ? (a.f ?? dflt) : dflt;
}

export function attrInts(node: INodeProto, name: string): number[] | undefined {
  const a = findAttr(node, name);
  return a ? (a.ints ?? []).map((v) => num(v as LongLike)) : undefined;
}

export function attrString(node: INodeProto, name: string, dflt: string): string {
  const a = findAttr(node, name);
  return a && a.s ? new TextDecoder().decode(a.s) : dflt;
}

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] } | ITensorProto;

/** Build attributes: integers as INT/INTS, `{float}`/`{floats}` as FLOAT/FLOATS, strings, tensors. */
export function makeAttrs(attrs: Record<string, AttrValue | undefined>): IAttributeProto[] {
  const out: IAttributeProto[] = [];
  const T = onnx.AttributeProto.AttributeType;
  for (const [name, v] of Object.entries(attrs)) {
    if (v === undefined) continue;
    if (typeof v === 'number') out.push({ name, type: T.INT, i: v });
    else if (typeof v === 'string') out.push({ name, type: T.STRING, s: new TextEncoder().encode(v) });
    else if (Array.isArray(v)) out.push({ name, type: T.INTS, ints: v });
    else if ('float' in v) out.push({ name, type: T.FLOAT, f: (v as { float: number }).float });
    else if ('floats' in v) out.push({ name, type: T.FLOATS, floats: (v as { floats: number[] }).floats });
    else out.push({ name, type: T.TENSOR, t: v as ITensorProto });
  }
  return out;
}

export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): ITensorProto {
  return { name, dataType: DT.FLOAT, dims, floatData: Array.from(values) };
}

export function int64Tensor(name: string, dims: number[], values: ArrayLike<number>): ITensorProto {
  return { name, dataType: DT.INT64, dims, int64Data: Array.from(values) };
}

/** Numeric values of a (small) TensorProto, or undefined for unsupported types / external data. */
export function tensorValues(t: ITensorProto): number[] | undefined {
  const dt = t.dataType ?? 0;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  if (t.dataLocation === 1) return undefined;
  if (raw) {
    const buf = new Uint8Array(raw).slice().buffer;
    const view = new DataView(buf);
    const out: number[] = [];
    if (dt === DT.INT64) for (let i = 0; i < buf.byteLength; i += 8) out.push(Number(view.getBigInt64(i, true)));
    else if (dt === DT.INT32) for (let i = 0; i < buf.byteLength; i += 4) out.push(view.getInt32(i, true));
    else if (dt === DT.FLOAT) for (let i = 0; i < buf.byteLength; i += 4) out.push(view.getFloat32(i, true));
    else if (dt === DT.DOUBLE) for (let i = 0; i < buf.byteLength; i += 8) out.push(view.getFloat64(i, true));
    else if (dt === DT.BOOL || dt === DT.UINT8) for (let i = 0; i < buf.byteLength; i++) out.push(view.getUint8(i));
    else return undefined;
    return out;
  }
  if (dt === DT.INT64) return (t.int64Data ?? []).map((v) => num(v as LongLike));
  if (dt === DT.FLOAT) return [...(t.floatData ?? [])];
  if (dt === DT.DOUBLE) return [...(t.doubleData ?? [])];
  if (dt === DT.INT32 || dt === DT.BOOL || dt === DT.UINT8 || dt === DT.INT8) return [...(t.int32Data ?? [])];
  return undefined;
}

/** float32 contents of a TensorProto (raw or float_data), or undefined for other types / external data. */
export function floatValues(t: ITensorProto): Float32Array | undefined {
  if (t.dataType !== DT.FLOAT || t.dataLocation === 1) return undefined;
  if (t.rawData && t.rawData.length > 0) return new Float32Array(new Uint8Array(t.rawData).slice().buffer);
  return Float32Array.from(t.floatData ?? []);
}

export function tensorDims(t: ITensorProto): number[] {
  return (t.dims ?? []).map((d) => num(d as LongLike));
}

/** Static shape from a ValueInfoProto: numbers for fixed dims, strings for named dims, null for unknown. */
export function valueInfoShape(v: IValueInfoProto): { elemType?: number; shape?: Dim[] } {
  const tt = v.type?.tensorType;
  if (!tt) return {};
  const elemType = tt.elemType ?? undefined;
  if (!tt.shape) return { elemType };
  const shape: Dim[] = (tt.shape.dim ?? []).map((d) => {
    const dd = d as onnxProto.onnx.TensorShapeProto.IDimension & { value?: string };
    if (dd.value === 'dimValue' || (dd.value === undefined && dd.dimValue !== undefined && dd.dimValue !== null && !dd.dimParam)) {
      return num(dd.dimValue as LongLike);
    }
    if (dd.dimParam) return dd.dimParam;
    return null;
  });
  return { elemType, shape };
}

export type Dim = number | string | null;
