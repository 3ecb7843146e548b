/** Cache-blocked 2-D transpose of raw data. */

/** out[j, i] = A[i, j] for an r×c block at the given offsets (cache-blocked). */
export function transpose2d(A: Float32Array, aOff: number, out: Float32Array, oOff: number, r: number, c: number): void {
  const T = 32;
  for (let i0 = 0; i0 < r; i0 += T) {
    const i1 = Math.min(i0 + T, r);
    for (let j0 = 0; j0 < c; j0 += T) {
      const j1 = Math.min(j0 + T, c);
      for (let i = i0; i < i1; i++) {
        const src = aOff + i * c;
        for (let j = j0; j < j1; j++) out[oOff + j * r + i] = A[src + j];
      }
    }
  }
}
