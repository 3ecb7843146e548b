/**
 * Expose intermediate tensors as graph outputs. Uses @sop/backbone-onnx's graph surgery (decodeModelProto /
 * exposeOutputs / encodeModelProto) when that package exports it, else the wire-level fallback in onnx-lite.
 */
import { addFloatOutputs } from './onnx-lite.js';

type Surgery = {
  decodeModelProto: (bytes: Uint8Array, where?: string) => unknown;
  exposeOutputs: (model: unknown, names: string[]) => unknown;
  encodeModelProto: (model: unknown) => Uint8Array;
};

async function onnxSurgery(): Promise<Surgery | undefined> {
  try {
    const mod = (await import('@sop/backbone-onnx')) as unknown as Partial<Surgery>;
    if (typeof mod.decodeModelProto === 'function' && typeof mod.exposeOutputs === 'function' && typeof mod.encodeModelProto === 'function') {
      return mod as Surgery;
    }
  } catch {
    // package not usable: fall back
  }
  return undefined;
}

/** Model bytes with `names` added as graph outputs. */
export async function exposeIntermediates(bytes: Uint8Array, names: string[], where = '<model>'): Promise<Uint8Array> {
  const s = await onnxSurgery();
  if (s) return s.encodeModelProto(s.exposeOutputs(s.decodeModelProto(bytes, where), names));
  return addFloatOutputs(bytes, names);
}
