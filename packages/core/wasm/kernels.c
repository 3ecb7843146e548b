/*
 * WebAssembly SIMD kernels for SOP's per-prediction work (the group generator's logits, softmax + top-k + scale, the
 * masked copies of the input, the selector's sparsemax). Compiled by tools/wasm/build-kernels.mjs (clang, wasm32,
 * -msimd128, no libc) into packages/core/src/kernels/kernels-wasm.ts; loaded by packages/core/src/kernels/index.ts.
 * The JavaScript side owns the memory layout: it copies operands to offsets above __heap_base and reads results back.
 * All arithmetic is float32 unless noted; nothing here uses fused multiply-add (wasm SIMD has none), so a scalar tail
 * and a vector lane give the same bits.
 */
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

typedef float f32;
typedef double f64;

/* ---------------------------------------------------------------------------------------------------------------- */
/* exp                                                                                                              */

/*
 * e^x for float32 (Cephes expf: x = n·ln2 + r, |r| ≤ ln2/2, degree-5 polynomial, 2^n through the exponent bits);
 * within 2 ulp of the correctly rounded value on [-87.3, 88.7]; 0 below -87.3 (where float32 would be subnormal),
 * NaN for NaN.
 */
static inline v128_t exp4(v128_t x) {
  const v128_t lo = wasm_f32x4_splat(-87.3f);
  v128_t under = wasm_f32x4_lt(x, lo);
  x = wasm_f32x4_min(x, wasm_f32x4_splat(88.3f));
  x = wasm_f32x4_max(x, lo); /* NaN stays NaN (wasm min/max propagate NaN) */
  v128_t fx = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(fx, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t p = wasm_f32x4_splat(1.9875691500e-4f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.3981999507e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(8.3334519073e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(4.1665795894e-2f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.6666665459e-1f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(5.0000001201e-1f));
  p = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(p, r), r), r), wasm_f32x4_splat(1.0f));
  v128_t n = wasm_i32x4_trunc_sat_f32x4(fx);
  v128_t pow2n = wasm_i32x4_shl(wasm_i32x4_add(n, wasm_i32x4_splat(127)), 23);
  v128_t y = wasm_f32x4_mul(p, pow2n);
  return wasm_v128_andnot(y, under);
}

static inline f32 exp1(f32 x) {
  return wasm_f32x4_extract_lane(exp4(wasm_f32x4_splat(x)), 0);
}

/* e^x element-wise over n values (float32). */
EXPORT("exp_f32")
void exp_f32(const f32 *x, f32 *y, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, exp4(wasm_v128_load(x + i)));
  for (; i < n; i++) y[i] = exp1(x[i]);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* top-k selection                                                                                                  */

/*
 * Order key of value v at index j: larger keys rank first; NaN ranks last, -0 equals +0, and among equal values the
 * lower index ranks first. (The float's bits made monotone as an unsigned integer, then the complemented index.)
 */
static inline uint64_t rank_key(f32 v, uint32_t j) {
  if (v != v) v = -__builtin_inff();
  v = v + 0.0f; /* -0 → +0 */
  union {
    f32 f;
    uint32_t u;
  } b = {v};
  uint32_t u = (b.u & 0x80000000u) ? ~b.u : (b.u | 0x80000000u);
  return ((uint64_t)u << 32) | (uint64_t)(0xffffffffu - j);
}

/* Moves the k largest keys of keys[0..n) to keys[0..k) (in no particular order); quickselect, median of three. */
static void select_top(uint64_t *keys, int n, int k) {
  int lo = 0, hi = n - 1;
  while (hi > lo) {
    int mid = lo + ((hi - lo) >> 1);
    uint64_t a = keys[lo], b = keys[mid], c = keys[hi];
    uint64_t pivot = (a > b) ? ((b > c) ? b : (a > c ? c : a)) : ((a > c) ? a : (b > c ? c : b));
    /* partition: keys > pivot first (descending selection) */
    int i = lo, j = hi;
    while (i <= j) {
      while (keys[i] > pivot) i++;
      while (keys[j] < pivot) j--;
      if (i <= j) {
        uint64_t t = keys[i];
        keys[i] = keys[j];
        keys[j] = t;
        i++;
        j--;
      }
    }
    /* now keys[lo..j] ≥ pivot ≥ keys[i..hi] (keys are distinct) */
    if (k - 1 <= j) hi = j;
    else if (k - 1 >= i) lo = i;
    else return;
  }
}

/*
 * 0/1 mask of the k entries of v[0..n) that rank first (largest, or smallest when largest = 0; ties to the lower
 * index, NaN last). keys: scratch of n uint64.
 */
static void topk_mask_row(const f32 *v, int n, int k, int largest, f32 *mask, uint64_t *keys) {
  for (int j = 0; j < n; j++) mask[j] = 0.0f;
  if (k <= 0) return;
  if (k >= n) {
    for (int j = 0; j < n; j++) mask[j] = 1.0f;
    return;
  }
  if (largest)
    for (int j = 0; j < n; j++) keys[j] = rank_key(v[j], (uint32_t)j);
  else
    for (int j = 0; j < n; j++) keys[j] = rank_key(-v[j], (uint32_t)j);
  if (k <= 8) {
    /* insertion into a sorted buffer of k keys (descending) */
    int m = 0;
    for (int j = 0; j < n; j++) {
      uint64_t key = keys[j];
      if (m == k) {
        if (key <= keys[k - 1]) continue;
        m--;
      }
      int p = m;
      while (p > 0 && keys[p - 1] < key) {
        keys[p] = keys[p - 1];
        p--;
      }
      keys[p] = key;
      m++;
    }
  } else {
    select_top(keys, n, k);
  }
  for (int t = 0; t < k; t++) mask[0xffffffffu - (uint32_t)keys[t]] = 1.0f;
}

/*
 * SOP's group binarisation for `rows` rows of `len` logits: a = softmax(row) (float32), M = 0/1 mask of the top k of a
 * (bottom k when largest = 0), c = 2·Σ_j a_j·M_j − 1 (the sum in index order, in float64). keys: scratch of len
 * uint64.
 */
EXPORT("topk_mass")
void topk_mass(const f32 *logits, int rows, int len, int k, int largest, f32 *a, f32 *M, f32 *c, uint64_t *keys) {
  for (int r = 0; r < rows; r++) {
    const f32 *L = logits + (long)r * len;
    f32 *A = a + (long)r * len;
    f32 *Mr = M + (long)r * len;
    f32 mx = -__builtin_inff();
    for (int i = 0; i < len; i++)
      if (L[i] > mx) mx = L[i];
    v128_t vmx = wasm_f32x4_splat(mx);
    f64 s = 0;
    int i = 0;
    v128_t acc = wasm_f64x2_splat(0);
    for (; i + 4 <= len; i += 4) {
      v128_t e = exp4(wasm_f32x4_sub(wasm_v128_load(L + i), vmx));
      wasm_v128_store(A + i, e);
      acc = wasm_f64x2_add(acc, wasm_f64x2_add(wasm_f64x2_promote_low_f32x4(e), wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(e, e, 2, 3, 0, 1))));
    }
    s = wasm_f64x2_extract_lane(acc, 0) + wasm_f64x2_extract_lane(acc, 1);
    for (; i < len; i++) {
      f32 e = exp1(L[i] - mx);
      A[i] = e;
      s += e;
    }
    f32 inv = (f32)(1.0 / s);
    v128_t vinv = wasm_f32x4_splat(inv);
    i = 0;
    for (; i + 4 <= len; i += 4) wasm_v128_store(A + i, wasm_f32x4_mul(wasm_v128_load(A + i), vinv));
    for (; i < len; i++) A[i] = A[i] * inv;
    topk_mask_row(A, len, k, largest, Mr, keys);
    f64 mass = 0;
    for (i = 0; i < len; i++)
      if (Mr[i] != 0.0f) mass += A[i];
    c[r] = (f32)(2.0 * (f64)(f32)mass - 1.0);
  }
}

/* 0/1 top-k masks of `rows` rows of `len` values (topkMask over the last axis). */
EXPORT("topk_mask")
void topk_mask(const f32 *v, int rows, int len, int k, int largest, f32 *M, uint64_t *keys) {
  for (int r = 0; r < rows; r++) topk_mask_row(v + (long)r * len, len, k, largest, M + (long)r * len, keys);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* sparsemax                                                                                                        */

/*
 * Sparsemax along the middle axis of [outer, len, inner]: for each (o, t), α = max(z − τ, 0) with τ the threshold of
 * Martins & Astudillo (2016), on z − max z, in float64. sorted: scratch of len f64.
 */
EXPORT("sparsemax_mid")
void sparsemax_mid(const f32 *z, int outer, int len, int inner, f32 *out, f64 *sorted) {
  for (int o = 0; o < outer; o++) {
    for (int t = 0; t < inner; t++) {
      const f32 *zc = z + (long)o * len * inner + t;
      f32 *oc = out + (long)o * len * inner + t;
      /* shifted by the maximum (as the JavaScript op), insertion sort, descending (len is the number of groups) */
      f64 mx = -__builtin_inf();
      for (int i = 0; i < len; i++)
        if (zc[(long)i * inner] > mx) mx = zc[(long)i * inner];
      for (int i = 0; i < len; i++) {
        f64 v = (f64)zc[(long)i * inner] - mx;
        int p = i;
        while (p > 0 && sorted[p - 1] < v) {
          sorted[p] = sorted[p - 1];
          p--;
        }
        sorted[p] = v;
      }
      f64 cum = 0, tauSum = 0;
      int kz = 0;
      for (int i = 0; i < len; i++) {
        cum += sorted[i];
        if (1.0 + (f64)(i + 1) * sorted[i] > cum) {
          kz = i + 1;
          tauSum = cum;
        }
      }
      f64 tau = kz > 0 ? (tauSum - 1.0) / (f64)kz : 0.0;
      for (int i = 0; i < len; i++) {
        f64 v = ((f64)zc[(long)i * inner] - mx) - tau;
        oc[(long)i * inner] = v > 0 ? (f32)v : 0.0f;
      }
    }
  }
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* masked copies                                                                                                    */

/*
 * Masked copies of input rows through a pixel → feature map: for r < R, channel ch < C, pixel p < hw,
 * out[r][ch][p] = x[rows[r]][ch][p] · masks[r][map[p]] (base == 0), or base[ch·hw + p] + (x − base)·m computed in
 * float64 (base given: one baseline row shared by all outputs). expanded: scratch of hw f32.
 */
EXPORT("mask_rows")
void mask_rows(const f32 *x, const int32_t *rows, int R, const f32 *masks, int d, const int32_t *map, int hw, int C, const f32 *base, f32 *out, f32 *expanded) {
  const long row = (long)C * hw;
  for (int r = 0; r < R; r++) {
    const f32 *mr = masks + (long)r * d;
    for (int p = 0; p < hw; p++) expanded[p] = mr[map[p]];
    const f32 *xr = x + (long)rows[r] * row;
    f32 *orow = out + (long)r * row;
    for (int ch = 0; ch < C; ch++) {
      const f32 *xc = xr + (long)ch * hw;
      f32 *oc = orow + (long)ch * hw;
      if (!base) {
        int p = 0;
        for (; p + 4 <= hw; p += 4) wasm_v128_store(oc + p, wasm_f32x4_mul(wasm_v128_load(xc + p), wasm_v128_load(expanded + p)));
        for (; p < hw; p++) oc[p] = xc[p] * expanded[p];
      } else {
        const f32 *bc = base + (long)ch * hw;
        for (int p = 0; p < hw; p++) oc[p] = (f32)((f64)bc[p] + ((f64)xc[p] - (f64)bc[p]) * (f64)expanded[p]);
      }
    }
  }
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* small matrix products                                                                                            */

/*
 * The attention generator's factored logits at inference (see attention-generator.ts, headLogits): for each example b
 * and query i (feature qs[i]),
 *   P = V[b, qs[i], :]·G + aBk[i]                       (p values)
 *   L[b, i, j] = P·V[b, j, :] + V[b, qs[i], :]·Abk[:, j] + abk[i, j]
 * with V [B, d, p], G [p, p], aBk [m | 1, p], Abk [p, d | 1], abk [m | 1, d | 1] (a size-1 axis broadcasts; the
 * row and column counts give the actual sizes). work: scratch of 2·p·d + 2·p f32.
 */
EXPORT("gen_logits")
void gen_logits(const f32 *V, int B, int d, int p, const int32_t *qs, int m, const f32 *G, const f32 *aBk, int aBkRows, const f32 *Abk, int AbkCols, const f32 *abk, int abkRows, int abkCols, f32 *L, f32 *work) {
  f32 *ZT = work;              /* [2p, d]: rows 0..p) = V[b]ᵀ, rows p..2p) = Abk (broadcast over j) */
  f32 *y = work + 2L * p * d;  /* [2p]: P, then V[b, qs[i], :] */
  for (int q = 0; q < p; q++)
    for (int j = 0; j < d; j++) ZT[(long)(p + q) * d + j] = Abk[(long)q * AbkCols + (AbkCols == 1 ? 0 : j)];
  for (int b = 0; b < B; b++) {
    const f32 *Vb = V + (long)b * d * p;
    for (int j = 0; j < d; j++)
      for (int q = 0; q < p; q++) ZT[(long)q * d + j] = Vb[(long)j * p + q];
    for (int i = 0; i < m; i++) {
      const f32 *vq = Vb + (long)qs[i] * p;
      const f32 *ab = aBk + (long)(aBkRows == 1 ? 0 : i) * p;
      for (int q = 0; q < p; q++) {
        f32 s = 0;
        for (int t = 0; t < p; t++) s += vq[t] * G[(long)t * p + q];
        y[q] = s + ab[q];
        y[p + q] = vq[q];
      }
      f32 *Li = L + ((long)b * m + i) * d;
      const f32 *ak = abk + (long)(abkRows == 1 ? 0 : i) * abkCols;
      for (int j = 0; j < d; j++) Li[j] = 0.0f;
      for (int q = 0; q < 2 * p; q++) {
        v128_t yq = wasm_f32x4_splat(y[q]);
        const f32 *z = ZT + (long)q * d;
        int j = 0;
        for (; j + 4 <= d; j += 4) wasm_v128_store(Li + j, wasm_f32x4_add(wasm_v128_load(Li + j), wasm_f32x4_mul(yq, wasm_v128_load(z + j))));
        for (; j < d; j++) Li[j] += y[q] * z[j];
      }
      for (int j = 0; j < d; j++) Li[j] += ak[abkCols == 1 ? 0 : j];
    }
  }
}

/* Y [n, C] = X [n, k] · W [k, C] (row-major), accumulated over k in order, 4 columns at a time. */
EXPORT("matmul_rows")
void matmul_rows(const f32 *X, int n, int k, const f32 *W, int C, f32 *Y) {
  for (int r = 0; r < n; r++) {
    const f32 *x = X + (long)r * k;
    f32 *y = Y + (long)r * C;
    for (int c = 0; c < C; c++) y[c] = 0.0f;
    for (int q = 0; q < k; q++) {
      v128_t xq = wasm_f32x4_splat(x[q]);
      const f32 *w = W + (long)q * C;
      int c = 0;
      for (; c + 4 <= C; c += 4) wasm_v128_store(y + c, wasm_f32x4_add(wasm_v128_load(y + c), wasm_f32x4_mul(xq, wasm_v128_load(w + c))));
      for (; c < C; c++) y[c] += x[q] * w[c];
    }
  }
}
