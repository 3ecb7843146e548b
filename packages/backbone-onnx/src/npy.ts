/**
 * Minimal reader for NumPy .npy files (format 1.0–3.0, C order, little-endian float32/float64/int64/int32/uint8/bool),
 * used for the fixture data sets written by tools/fixtures/*.py.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '@sop/core';

export interface NpyArray {
  dtype: 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}

const DTYPES: Record<string, NpyArray['dtype']> = {
  '<f4': 'float32',
  '<f8': 'float64',
  '<i8': 'int64',
  '<i4': 'int32',
  '|u1': 'uint8',
  '|b1': 'bool',
};

export function readNpy(path: string): NpyArray {
  const buf = readFileSync(path);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') {
    throw new UserError(`${path} is not a .npy file`, 'write it with numpy.save');
  }
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1] ?? '';
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '';
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const dtype = DTYPES[descr];
  if (!dtype || fortran) throw new UserError(`${path}: unsupported .npy layout (${descr}${fortran ? ', Fortran order' : ''})`, 'save a C-ordered little-endian array');
  const n = shape.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset + start, buf.length - start).slice();
  const ab = bytes.buffer;
  const data =
    dtype === 'float32' ? new Float32Array(ab, 0, n)
    : dtype === 'float64' ? new Float64Array(ab, 0, n)
    : dtype === 'int64' ? new BigInt64Array(ab, 0, n)
    : dtype === 'int32' ? new Int32Array(ab, 0, n)
    : new Uint8Array(ab, 0, n);
  return { dtype, shape, data };
}
