/** float16 ⇄ float32 for fp16 model inputs/outputs (onnxruntime-node carries float16 as Uint16Array bits). */
/** IEEE half bits → float32. */
export function halfToFloat(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const v = h[i];
    const s = v & 0x8000 ? -1 : 1;
    const e = (v >> 10) & 0x1f;
    const m = v & 0x3ff;
    out[i] = e === 0 ? s * 2 ** -14 * (m / 1024) : e === 31 ? (m ? NaN : s * Infinity) : s * 2 ** (e - 15) * (1 + m / 1024);
  }
  return out;
}

/** Shift right by `k` bits, rounding to nearest, ties to even. */
function roundShift(m: number, k: number): number {
  const q = m >>> k;
  const rem = m - q * 2 ** k;
  const half = 2 ** (k - 1);
  return rem > half || (rem === half && (q & 1) === 1) ? q + 1 : q;
}

/** float32 → IEEE half bits (round to nearest, ties to even). */
export function floatToHalf(f: Float32Array): Uint16Array {
  const out = new Uint16Array(f.length);
  const fb = new Float32Array(1);
  const ib = new Uint32Array(fb.buffer);
  for (let i = 0; i < f.length; i++) {
    fb[0] = f[i];
    const x = ib[0];
    const sign = (x >>> 16) & 0x8000;
    const e = ((x >>> 23) & 0xff) - 127 + 15;
    let m = x & 0x7fffff;
    if (e >= 31) out[i] = sign | 0x7c00 | (((x >>> 23) & 0xff) === 0xff && m ? 0x200 : 0);
    else if (e <= 0) {
      if (e < -10) out[i] = sign;
      else {
        m |= 0x800000;
        out[i] = sign | roundShift(m, 14 - e);
      }
    } else out[i] = Math.min(sign | 0x7c00, sign | ((e << 10) + roundShift(m, 13)));
  }
  return out;
}
