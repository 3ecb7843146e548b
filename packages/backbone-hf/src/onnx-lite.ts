/**
 * Just enough ONNX protobuf to read a graph's wiring (nodes, initializers, graph outputs) and to add graph outputs.
 * Used to find the classifier layer of a transformers.js export and to expose intermediates (pooled / per-token
 * states) the export does not output. Wire format only; no protobuf dependency.
 */
import { InternalError } from '@sop/core';

export interface LiteNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  /** Integer attributes (e.g. Gemm's transB). */
  ints: Record<string, number>;
}

export interface LiteInitializer {
  name: string;
  dims: number[];
  /** ONNX TensorProto.DataType (1 = float). */
  dataType: number;
  /** Float values when dataType is float (raw_data or float_data), else undefined. */
  floats?: Float32Array;
}

export interface LiteGraph {
  nodes: LiteNode[];
  initializers: Map<string, LiteInitializer>;
  inputs: string[];
  outputs: string[];
}

interface Field {
  no: number;
  wire: number;
  /** For wire 0: the varint value; for wire 2: the payload. */
  value: number | Uint8Array;
  /** Byte range of the whole field (key included) in the parent. */
  start: number;
  end: number;
}

function readVarint(b: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (;;) {
    if (pos >= b.length) throw new InternalError('truncated varint in ONNX file');
    const byte = b[pos++];
    result += (byte & 0x7f) * mul;
    if ((byte & 0x80) === 0) return [result, pos];
    mul *= 128;
  }
}

function* fields(b: Uint8Array): Generator<Field> {
  let pos = 0;
  while (pos < b.length) {
    const start = pos;
    const [key, p1] = readVarint(b, pos);
    pos = p1;
    const no = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      const [v, p2] = readVarint(b, pos);
      pos = p2;
      yield { no, wire, value: v, start, end: pos };
    } else if (wire === 2) {
      const [len, p2] = readVarint(b, pos);
      const payload = b.subarray(p2, p2 + len);
      pos = p2 + len;
      yield { no, wire, value: payload, start, end: pos };
    } else if (wire === 1) {
      pos += 8;
      yield { no, wire, value: 0, start, end: pos };
    } else if (wire === 5) {
      pos += 4;
      yield { no, wire, value: 0, start, end: pos };
    } else {
      throw new InternalError(`unsupported protobuf wire type ${wire} in ONNX file`);
    }
  }
}

const utf8 = new TextDecoder();
const str = (v: number | Uint8Array): string => utf8.decode(v as Uint8Array);

function parseNode(b: Uint8Array): LiteNode {
  const node: LiteNode = { opType: '', inputs: [], outputs: [], ints: {} };
  for (const f of fields(b)) {
    if (f.no === 1 && f.wire === 2) node.inputs.push(str(f.value));
    else if (f.no === 2 && f.wire === 2) node.outputs.push(str(f.value));
    else if (f.no === 4 && f.wire === 2) node.opType = str(f.value);
    else if (f.no === 5 && f.wire === 2) {
      let name = '';
      let i: number | undefined;
      for (const a of fields(f.value as Uint8Array)) {
        if (a.no === 1 && a.wire === 2) name = str(a.value);
        else if (a.no === 3 && a.wire === 0) i = a.value as number;
      }
      if (i !== undefined) node.ints[name] = i;
    }
  }
  return node;
}

function parseInitializer(b: Uint8Array): LiteInitializer {
  const init: LiteInitializer = { name: '', dims: [], dataType: 0 };
  let raw: Uint8Array | undefined;
  let packedFloats: Uint8Array | undefined;
  for (const f of fields(b)) {
    if (f.no === 1 && f.wire === 0) init.dims.push(f.value as number);
    else if (f.no === 1 && f.wire === 2) {
      let pos = 0;
      const p = f.value as Uint8Array;
      while (pos < p.length) {
        const [v, np] = readVarint(p, pos);
        init.dims.push(v);
        pos = np;
      }
    } else if (f.no === 2 && f.wire === 0) init.dataType = f.value as number;
    else if (f.no === 8 && f.wire === 2) init.name = str(f.value);
    else if (f.no === 9 && f.wire === 2) raw = f.value as Uint8Array;
    else if (f.no === 4 && f.wire === 2) packedFloats = f.value as Uint8Array;
  }
  const bytes = raw ?? packedFloats;
  if (init.dataType === 1 && bytes) {
    const copy = new Uint8Array(bytes); // aligned copy
    init.floats = new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  return init;
}

function valueInfoName(b: Uint8Array): string {
  for (const f of fields(b)) if (f.no === 1 && f.wire === 2) return str(f.value);
  return '';
}

function graphField(model: Uint8Array): Field {
  for (const f of fields(model)) if (f.no === 7 && f.wire === 2) return f;
  throw new InternalError('ONNX file has no graph');
}

/** Read nodes, initializers and graph inputs/outputs of a ModelProto. */
export function readGraph(model: Uint8Array): LiteGraph {
  const g = graphField(model).value as Uint8Array;
  const out: LiteGraph = { nodes: [], initializers: new Map(), inputs: [], outputs: [] };
  for (const f of fields(g)) {
    if (f.wire !== 2) continue;
    if (f.no === 1) out.nodes.push(parseNode(f.value as Uint8Array));
    else if (f.no === 5) {
      const init = parseInitializer(f.value as Uint8Array);
      out.initializers.set(init.name, init);
    } else if (f.no === 11) out.inputs.push(valueInfoName(f.value as Uint8Array));
    else if (f.no === 12) out.outputs.push(valueInfoName(f.value as Uint8Array));
  }
  out.inputs = out.inputs.filter((n) => !out.initializers.has(n));
  return out;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 128) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function lenField(no: number, payload: Uint8Array): Uint8Array {
  const head = [...varint(no * 8 + 2), ...varint(payload.length)];
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Add intermediate tensors as float graph outputs (shape left to the runtime). Names already output are skipped.
 * Returns new model bytes.
 */
export function addFloatOutputs(model: Uint8Array, names: string[]): Uint8Array {
  const gf = graphField(model);
  const g = gf.value as Uint8Array;
  const existing = new Set(readGraph(model).outputs);
  const enc = new TextEncoder();
  const extra = names
    .filter((n) => !existing.has(n))
    .map((n) => {
      // ValueInfoProto { name: 1, type: 2 { tensor_type: 1 { elem_type: 1 = FLOAT } } }
      const tensorType = new Uint8Array([8, 1]);
      const typeProto = lenField(1, tensorType);
      return lenField(12, concat([lenField(1, enc.encode(n)), lenField(2, typeProto)]));
    });
  if (extra.length === 0) return model;
  const newGraph = concat([g, ...extra]);
  return concat([model.subarray(0, gf.start), lenField(7, newGraph), model.subarray(gf.end)]);
}

/** Every tensor name produced by a node or held as an initializer / graph input. */
export function tensorNames(graph: LiteGraph): Set<string> {
  const s = new Set<string>(graph.inputs);
  for (const n of graph.nodes) for (const o of n.outputs) s.add(o);
  for (const k of graph.initializers.keys()) s.add(k);
  return s;
}

/**
 * The classifier of an exported sequence/image classification head: the node chain ending in `output` that starts
 * with a Gemm or MatMul against a float initializer. Returns its activation input (the pooled hidden state) and the
 * weight as [C, k] row-major.
 */
export function findClassifier(
  graph: LiteGraph,
  output: string,
): { input: string; weight: Float32Array; shape: [number, number] } | undefined {
  const producer = new Map<string, LiteNode>();
  for (const n of graph.nodes) for (const o of n.outputs) producer.set(o, n);
  let cur = producer.get(output);
  for (let hops = 0; cur && hops < 3; hops++) {
    if (cur.opType === 'Gemm' || cur.opType === 'MatMul') {
      const [a, b] = cur.inputs;
      const w = graph.initializers.get(b);
      if (!w?.floats || w.dims.length !== 2 || graph.initializers.has(a)) return undefined;
      const transB = cur.opType === 'Gemm' && cur.ints.transB === 1;
      const [r, c] = w.dims;
      if (transB) return { input: a, weight: w.floats, shape: [r, c] };
      const t = new Float32Array(r * c); // stored [k, C] → [C, k]
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = w.floats[i * c + j];
      return { input: a, weight: t, shape: [c, r] };
    }
    if (cur.opType !== 'Add' && cur.opType !== 'Identity') return undefined;
    const next = cur.inputs.find((i) => producer.has(i));
    cur = next ? producer.get(next) : undefined;
  }
  return undefined;
}
