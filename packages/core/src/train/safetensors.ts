import { readFileSync, existsSync } from 'node:fs';
import { writeFileAtomic } from '../io.js';
import { UserError } from '../errors.js';
import { sizeOf, type FloatTensor } from '../tensor.js';

/**
 * Checkpoint files in the safetensors layout (https://github.com/huggingface/safetensors):
 *
 *   [8 bytes]  N = header length, unsigned 64-bit little-endian
 *   [N bytes]  UTF-8 JSON header, padded with spaces to a multiple of 8 bytes:
 *              { "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *                "__metadata__": {"<key>": "<string>", ...} }
 *   [rest]     raw little-endian float32 data; offsets are relative to the start of this buffer
 *
 * Only F32 tensors are written or read. Files are written atomically (temp file + rename).
 */
export interface SafetensorsFile {
  tensors: Record<string, FloatTensor>;
  metadata: Record<string, string>;
}

/** Serialise named float32 tensors (sorted by name) plus string metadata into safetensors bytes. */
export function encodeSafetensors(tensors: Record<string, FloatTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    if (sizeOf(t.shape) !== t.data.length) throw new Error(`safetensors: ${name} has shape [${t.shape}] but ${t.data.length} values`);
    const bytes = t.data.length * 4;
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  let headerBytes = enc.encode(json);
  const pad = (8 - (headerBytes.length % 8)) % 8;
  if (pad) headerBytes = enc.encode(json + ' '.repeat(pad));
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  const base = 8 + headerBytes.length;
  for (const name of names) {
    const t = tensors[name];
    const [b] = (header[name] as { data_offsets: [number, number] }).data_offsets;
    const dv = new DataView(out.buffer, base + b, t.data.length * 4);
    for (let i = 0; i < t.data.length; i++) dv.setFloat32(i * 4, t.data[i], true);
  }
  return out;
}

/** Parse safetensors bytes (F32 tensors only). `what` names the file in errors. */
export function decodeSafetensors(bytes: Uint8Array, what = 'checkpoint'): SafetensorsFile {
  const bad = (why: string) => new UserError(`${what} is not a valid safetensors file: ${why}`, 'point to a file written by sop train (or delete it and train again)');
  if (bytes.length < 8) throw bad('shorter than 8 bytes');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > bytes.length - 8) throw bad(`header length ${n} exceeds the file size`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  } catch {
    throw bad('header is not JSON');
  }
  const base = 8 + n;
  const tensors: Record<string, FloatTensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const e = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (e.dtype !== 'F32') throw bad(`tensor ${name} has dtype ${e.dtype}; only F32 is supported`);
    const [b, end] = e.data_offsets;
    const count = sizeOf(e.shape);
    if (end - b !== count * 4 || base + end > bytes.length) throw bad(`tensor ${name} has inconsistent offsets`);
    const data = new Float32Array(count);
    const dv = new DataView(bytes.buffer, bytes.byteOffset + base + b, count * 4);
    for (let i = 0; i < count; i++) data[i] = dv.getFloat32(i * 4, true);
    tensors[name] = { data, shape: [...e.shape] };
  }
  return { tensors, metadata };
}

/** Write a safetensors file atomically. */
export function saveSafetensors(path: string, tensors: Record<string, FloatTensor>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Read a safetensors file; a missing file is a UserError. */
export function loadSafetensors(path: string): SafetensorsFile {
  if (!existsSync(path)) throw new UserError(`checkpoint not found: ${path}`, 'check the run folder (it must come from sop train), or train first');
  return decodeSafetensors(new Uint8Array(readFileSync(path)), path);
}
