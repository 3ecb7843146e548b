/*
 * SIMD math shared by the repo's WebAssembly kernel modules (included by packages/core/wasm/kernels.c and
 * packages/baselines/wasm/kernels.c; tools/wasm/build-kernels.mjs puts this folder on the include path and hashes this
 * file with each source).
 */
#ifndef SOP_SIMD_MATH_H
#define SOP_SIMD_MATH_H
#include <stdint.h>
#include <wasm_simd128.h>

/*
 * e^x for float32 (Cephes expf: x = n·ln2 + r, |r| ≤ ln2/2, degree-5 polynomial, 2^n through the exponent bits);
 * within 2 ulp of the correctly rounded value on [-87.3, 88.7]; 0 below -87.3 (where float32 would be subnormal),
 * NaN for NaN.
 */
/*
 * The part of exp4 that does not depend on how x was clamped: for x in [-87.3, 88.3], fx = round(x·log2 e) and the
 * polynomial p ≈ e^(x − fx·ln2); e^x = p·2^fx.
 */
static inline v128_t exp4_poly(v128_t x, v128_t *fx_out) {
  v128_t fx = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(fx, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t p = wasm_f32x4_splat(1.9875691500e-4f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.3981999507e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(8.3334519073e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(4.1665795894e-2f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.6666665459e-1f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(5.0000001201e-1f));
  *fx_out = fx;
  return wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(p, r), r), r), wasm_f32x4_splat(1.0f));
}

static inline v128_t exp4(v128_t x) {
  const v128_t lo = wasm_f32x4_splat(-87.3f);
  v128_t under = wasm_f32x4_lt(x, lo);
  x = wasm_f32x4_min(x, wasm_f32x4_splat(88.3f));
  x = wasm_f32x4_max(x, lo); /* NaN stays NaN (wasm min/max propagate NaN) */
  v128_t fx;
  v128_t p = exp4_poly(x, &fx);
  v128_t n = wasm_i32x4_trunc_sat_f32x4(fx);
  v128_t pow2n = wasm_i32x4_shl(wasm_i32x4_add(n, wasm_i32x4_splat(127)), 23);
  v128_t y = wasm_f32x4_mul(p, pow2n);
  return wasm_v128_andnot(y, under);
}

#endif
