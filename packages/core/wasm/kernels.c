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

#include "simd-math.h"

#define EXPORT(name) __attribute__((export_name(name)))

typedef float f32;
typedef double f64;

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
 * Signed-integer keys that order like the float values (x ≥ y ⇔ key(x) ≥ key(y)), with -0 = +0 and NaN below every
 * number (even -inf).
 */
static inline v128_t order_key4(v128_t x) {
  v128_t nan = wasm_f32x4_ne(x, x);
  x = wasm_f32x4_add(x, wasm_f32x4_splat(0.0f)); /* -0 → +0 */
  v128_t key = wasm_v128_xor(x, wasm_u32x4_shr(wasm_i32x4_shr(x, 31), 1));
  return wasm_v128_bitselect(wasm_i32x4_splat(INT32_MIN + 1), key, nan);
}

/*
 * The K-th best key (K a compile-time constant) of each of four rows at once, one row per SIMD lane: bk holds, per
 * lane, the K best keys so far, best first; each entry is merged in without branches (a sorting-network step). Empty
 * slots (INT32_MIN) lose to every key. Rows beyond `n` read row 0 again (their lanes are ignored).
 */
/*
 * One branch-free insertion into the K best keys so far (bk, best first, per lane): slot p keeps the larger of its
 * key and the smaller of the incoming key and slot p−1's old key. With K a constant, the loop unrolls.
 */
static inline void kth_insert(v128_t *bk, int K, v128_t key) {
  v128_t prev = key;
  for (int p = 0; p < K; p++) {
    v128_t cur = bk[p];
    bk[p] = wasm_i32x4_max(cur, wasm_i32x4_min(prev, key));
    prev = cur;
  }
}

/* Slot k−1 of the K best keys (the k-th best, k ≤ K). */
static inline v128_t kth_pick(const v128_t *bk, int K, int k) {
  v128_t t = bk[0];
  for (int p = 1; p < K; p++)
    if (p == k - 1) t = bk[p];
  return t;
}

#define KTH_LANES(K)                                                                                                    \
  static v128_t kth_lanes_##K(const f32 *v, int len, int n, f32 sign, int k) {                                        \
    v128_t bk[K];                                                                                                      \
    for (int p = 0; p < K; p++) bk[p] = wasm_i32x4_splat(INT32_MIN);                                                   \
    const f32 *v0 = v, *v1 = v + (n > 1 ? len : 0), *v2 = v + (n > 2 ? 2L * len : 0), *v3 = v + (n > 3 ? 3L * len : 0);  \
    const v128_t vs = wasm_f32x4_splat(sign);                                                                          \
    for (int j = 0; j < len; j++) kth_insert(bk, K, order_key4(wasm_f32x4_mul(wasm_f32x4_make(v0[j], v1[j], v2[j], v3[j]), vs))); \
    return kth_pick(bk, K, k);                                                                                         \
  }
KTH_LANES(4)
KTH_LANES(8)
KTH_LANES(12)
KTH_LANES(16)
KTH_LANES(32)

/*
 * The k-th largest of w[0..n) (1 ≤ k ≤ n; no NaN), reordering w: quickselect with a median-of-three pivot and a
 * three-way partition.
 */
static f32 kth_largest(f32 *w, int n, int k) {
  int lo = 0, hi = n - 1, want = k - 1;
  for (;;) {
    if (lo == hi) return w[lo];
    f32 a = w[lo], b = w[lo + ((hi - lo) >> 1)], c = w[hi];
    f32 pivot = (a > b) ? ((b > c) ? b : (a > c ? c : a)) : ((a > c) ? a : (b > c ? c : b));
    /* Dutch flag, descending: [lo, gt) > pivot, [gt, i) == pivot, (lt, hi] < pivot */
    int gt = lo, i = lo, lt = hi;
    while (i <= lt) {
      f32 x = w[i];
      if (x > pivot) {
        w[i] = w[gt];
        w[gt] = x;
        gt++;
        i++;
      } else if (x < pivot) {
        w[i] = w[lt];
        w[lt] = x;
        lt--;
      } else {
        i++;
      }
    }
    if (want < gt) hi = gt - 1;
    else if (want > lt) lo = lt + 1;
    else return pivot;
  }
}

/* One row, any k: the k-th best value t by quickselect on a copy, then the values better than t, then those equal
   to t in index order until k are marked. w: scratch of n f32. */
static void topk_select_row(const f32 *v, int n, int k, f32 sign, f32 *mask, f32 *w) {
  for (int j = 0; j < n; j++) {
    f32 x = v[j] * sign;
    w[j] = (x != x) ? -__builtin_inff() : x;
  }
  const f32 t = kth_largest(w, n, k);
  int marked = 0;
  for (int j = 0; j < n; j++) {
    f32 x = v[j] * sign;
    if (x != x) x = -__builtin_inff();
    if (x > t) {
      mask[j] = 1.0f;
      marked++;
    }
  }
  for (int j = 0; j < n && marked < k; j++) {
    f32 x = v[j] * sign;
    if (x != x) x = -__builtin_inff();
    if (x == t) {
      mask[j] = 1.0f;
      marked++;
    }
  }
}

/*
 * 0/1 masks of the k entries of each of `rows` rows of `len` values that rank first (largest, or smallest when
 * largest = 0; ties to the lower index, NaN last): for k ≤ 32 the k-th best key of four rows at once (kth_lanes),
 * then one marking pass per row; beyond, quickselect per row. scratch: 64 int32 + len f32.
 */
static void topk_mask_rows(const f32 *v, int rows, int len, int k, int largest, f32 *M, int32_t *scratch) {
  const long total = (long)rows * len;
  for (long i = 0; i < total; i++) M[i] = (k >= len && k > 0) ? 1.0f : 0.0f;
  if (k <= 0 || k >= len) return;
  const f32 sign = largest ? 1.0f : -1.0f;
  if (k > 32) {
    for (int r = 0; r < rows; r++) topk_select_row(v + (long)r * len, len, k, sign, M + (long)r * len, (f32 *)(scratch + 64));
    return;
  }
  for (int r = 0; r < rows; r += 4) {
    const int n = rows - r < 4 ? rows - r : 4;
    const f32 *vr = v + (long)r * len;
    v128_t t = k <= 4 ? kth_lanes_4(vr, len, n, sign, k) : k <= 8 ? kth_lanes_8(vr, len, n, sign, k) : k <= 12 ? kth_lanes_12(vr, len, n, sign, k) : k <= 16 ? kth_lanes_16(vr, len, n, sign, k) : kth_lanes_32(vr, len, n, sign, k);
    int32_t ts[4];
    wasm_v128_store(ts, t);
    for (int l = 0; l < n; l++) {
      /* every entry whose key beats the k-th best, then entries equal to it in index order until k are marked */
      const f32 *row = vr + (long)l * len;
      f32 *Mr = M + (long)(r + l) * len;
      const v128_t tl = wasm_i32x4_splat(ts[l]);
      const v128_t one = wasm_f32x4_splat(1.0f);
      const v128_t vs = wasm_f32x4_splat(sign);
      int marked = 0;
      int j = 0;
      for (; j + 4 <= len; j += 4) {
        v128_t key = order_key4(wasm_f32x4_mul(wasm_v128_load(row + j), vs));
        v128_t gt = wasm_i32x4_gt(key, tl);
        wasm_v128_store(Mr + j, wasm_v128_and(gt, one));
        marked += __builtin_popcount(wasm_i32x4_bitmask(gt));
      }
      for (; j < len; j++) {
        v128_t key = order_key4(wasm_f32x4_splat(row[j] * sign));
        int32_t kj = wasm_i32x4_extract_lane(key, 0);
        if (kj > ts[l]) {
          Mr[j] = 1.0f;
          marked++;
        }
      }
      for (j = 0; j < len && marked < k; j++) {
        int32_t kj = wasm_i32x4_extract_lane(order_key4(wasm_f32x4_splat(row[j] * sign)), 0);
        if (kj == ts[l]) {
          Mr[j] = 1.0f;
          marked++;
        }
      }
    }
  }
}

/*
 * exp4 for lanes that are not NaN, in fewer instructions: the same operations, with the clamps as pmin/pmax (equal to
 * min/max unless an operand is NaN; wasm's min/max also order −0 < +0, which cannot matter against ±87.3/88.3) and
 * the integer n = fx (an integral float in [−126, 127] after the clamp) read from the bits of fx + 1.5·2^23 instead of
 * trunc_sat (same n). Bit-identical to exp4 for every non-NaN lane; a NaN lane gives some NaN (callers that must
 * reproduce exp4's NaN redo the computation with exp4).
 */
static inline v128_t exp4_nonnan(v128_t x) {
  const v128_t lo = wasm_f32x4_splat(-87.3f);
  v128_t under = wasm_f32x4_lt(x, lo);
  x = wasm_f32x4_pmin(x, wasm_f32x4_splat(88.3f));
  x = wasm_f32x4_pmax(x, lo);
  v128_t fx;
  v128_t p = exp4_poly(x, &fx);
  /* bits of fx + 1.5·2^23 = 0x4B400000 + fx, so n + 127 = bits − (0x4B400000 − 127) */
  v128_t n127 = wasm_i32x4_sub(wasm_f32x4_add(fx, wasm_f32x4_splat(12582912.0f)), wasm_i32x4_splat(0x4B400000 - 127));
  v128_t y = wasm_f32x4_mul(p, wasm_i32x4_shl(n127, 23));
  return wasm_v128_andnot(y, under);
}

/* a = softmax of one row of len logits (float32 exp; the sum in float64). */
static inline void softmax_row(const f32 *L, int len, f32 *A) {
  /* the maximum, ignoring NaN (pmax keeps its first operand unless the second is larger) */
  v128_t vm = wasm_f32x4_splat(-__builtin_inff());
  int i = 0;
  for (; i + 4 <= len; i += 4) vm = wasm_f32x4_pmax(vm, wasm_v128_load(L + i));
  f32 mx = wasm_f32x4_extract_lane(vm, 0);
  if (wasm_f32x4_extract_lane(vm, 1) > mx) mx = wasm_f32x4_extract_lane(vm, 1);
  if (wasm_f32x4_extract_lane(vm, 2) > mx) mx = wasm_f32x4_extract_lane(vm, 2);
  if (wasm_f32x4_extract_lane(vm, 3) > mx) mx = wasm_f32x4_extract_lane(vm, 3);
  for (; i < len; i++)
    if (L[i] > mx) mx = L[i];
  v128_t vmx = wasm_f32x4_splat(mx);
  v128_t acc = wasm_f64x2_splat(0);
  i = 0;
  for (; i + 4 <= len; i += 4) {
    v128_t e = exp4(wasm_f32x4_sub(wasm_v128_load(L + i), vmx));
    wasm_v128_store(A + i, e);
    acc = wasm_f64x2_add(acc, wasm_f64x2_add(wasm_f64x2_promote_low_f32x4(e), wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(e, e, 2, 3, 0, 1))));
  }
  f64 s = wasm_f64x2_extract_lane(acc, 0) + wasm_f64x2_extract_lane(acc, 1);
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
}

/* c = 2·Σ_j a_j·M_j − 1 of one row: Σ a·M in float64 (products exact: M is 0 or 1), two lanes per half vector. */
static inline f32 row_scale(const f32 *A, const f32 *Mr, int len) {
  v128_t m0 = wasm_f64x2_splat(0.0), m1 = m0;
  int i = 0;
  for (; i + 4 <= len; i += 4) {
    v128_t pr = wasm_f32x4_mul(wasm_v128_load(A + i), wasm_v128_load(Mr + i));
    m0 = wasm_f64x2_add(m0, wasm_f64x2_promote_low_f32x4(pr));
    m1 = wasm_f64x2_add(m1, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(pr, pr, 2, 3, 0, 1)));
  }
  f64 mass = (wasm_f64x2_extract_lane(m0, 0) + wasm_f64x2_extract_lane(m1, 0)) + (wasm_f64x2_extract_lane(m0, 1) + wasm_f64x2_extract_lane(m1, 1));
  for (; i < len; i++) mass += (f64)(A[i] * Mr[i]);
  return (f32)(2.0 * (f64)(f32)mass - 1.0);
}

/* Transpose four vectors of four 32-bit lanes in place (a[i] lane j ↔ a[j] lane i). */
static inline void transpose4(v128_t *a0, v128_t *a1, v128_t *a2, v128_t *a3) {
  v128_t t0 = wasm_i32x4_shuffle(*a0, *a1, 0, 4, 1, 5);
  v128_t t1 = wasm_i32x4_shuffle(*a0, *a1, 2, 6, 3, 7);
  v128_t t2 = wasm_i32x4_shuffle(*a2, *a3, 0, 4, 1, 5);
  v128_t t3 = wasm_i32x4_shuffle(*a2, *a3, 2, 6, 3, 7);
  *a0 = wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5);
  *a1 = wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7);
  *a2 = wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5);
  *a3 = wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7);
}

/*
 * As kth_lanes, from len precomputed key vectors (one per entry, one row per lane). The K-th best key does not depend
 * on the order in which the entries are merged in.
 */
#define KTH_VEC(K)                                                                                                      \
  static v128_t kth_vec_##K(const v128_t *keys, int len, int k) {                                                     \
    v128_t bk[K];                                                                                                      \
    for (int p = 0; p < K; p++) bk[p] = wasm_i32x4_splat(INT32_MIN);                                                   \
    for (int j = 0; j < len; j++) kth_insert(bk, K, keys[j]);                                                         \
    return kth_pick(bk, K, k);                                                                                         \
  }
KTH_VEC(8)
KTH_VEC(12)
KTH_VEC(16)
KTH_VEC(32)

/* Compare-exchange of two key vectors, lane-wise: *a ← max, *b ← min. */
static inline void cex(v128_t *a, v128_t *b) {
  v128_t hi = wasm_i32x4_max(*a, *b);
  *b = wasm_i32x4_min(*a, *b);
  *a = hi;
}

/*
 * kth_vec_4 for len a multiple of 4 (≥ 4) with fewer operations: each group of four entries is sorted (a five-
 * comparator network), merged into the running four best (the four best of two sorted lists of four are
 * max(b_i, g_{3−i}), a bitonic sequence, sorted by a half-cleaner). Same k-th best key (a value of the multiset).
 */
static v128_t kth_vec_4net(const v128_t *keys, int len, int k) {
  v128_t b0 = keys[0], b1 = keys[1], b2 = keys[2], b3 = keys[3];
  cex(&b0, &b1);
  cex(&b2, &b3);
  cex(&b0, &b2);
  cex(&b1, &b3);
  cex(&b1, &b2);
  for (int j = 4; j < len; j += 4) {
    v128_t g0 = keys[j], g1 = keys[j + 1], g2 = keys[j + 2], g3 = keys[j + 3];
    cex(&g0, &g1);
    cex(&g2, &g3);
    cex(&g0, &g2);
    cex(&g1, &g3);
    cex(&g1, &g2);
    b0 = wasm_i32x4_max(b0, g3);
    b1 = wasm_i32x4_max(b1, g2);
    b2 = wasm_i32x4_max(b2, g1);
    b3 = wasm_i32x4_max(b3, g0);
    cex(&b0, &b2);
    cex(&b1, &b3);
    cex(&b0, &b1);
    cex(&b2, &b3);
  }
  return k == 1 ? b0 : k == 2 ? b1 : k == 3 ? b2 : b3;
}

/* Batcher's odd–even merge sort of n key vectors (lane-wise, largest first; n a power of two ≤ 16, a constant). */
static inline __attribute__((always_inline)) void sort_net(v128_t *a, const int n) {
#pragma clang loop unroll(full)
  for (int p = 1; p < n; p <<= 1)
#pragma clang loop unroll(full)
    for (int k = p; k >= 1; k >>= 1)
#pragma clang loop unroll(full)
      for (int j = k % p; j + k < n; j += 2 * k)
#pragma clang loop unroll(full)
        for (int i = 0; i < k && i + j + k < n; i++)
          if ((i + j) / (2 * p) == (i + j + k) / (2 * p)) cex(&a[i + j], &a[i + j + k]);
}

/*
 * As kth_vec_4net with groups of N = 8 or 16 entries (len a multiple of N, 4 < k ≤ N): each group sorted (odd–even
 * merge sort), merged into the running N best (max(b_i, g_{N−1−i}) is bitonic; a bitonic merge sorts it). Same k-th
 * best key (a value of the multiset) as kth_vec_N, with far fewer operations for rows of 32–64 entries.
 */
#define KTH_NET(N)                                                                                                      \
  static v128_t kth_vec_net_##N(const v128_t *keys, int len, int k) {                                                 \
    v128_t b[N], g[N];                                                                                                 \
    for (int i = 0; i < N; i++) b[i] = keys[i];                                                                        \
    sort_net(b, N);                                                                                                    \
    for (int j = N; j < len; j += N) {                                                                                 \
      for (int i = 0; i < N; i++) g[i] = keys[j + i];                                                                  \
      sort_net(g, N);                                                                                                  \
      for (int i = 0; i < N; i++) b[i] = wasm_i32x4_max(b[i], g[N - 1 - i]);                                           \
      _Pragma("clang loop unroll(full)") for (int s = N / 2; s > 0; s >>= 1)                                           \
        _Pragma("clang loop unroll(full)") for (int i = 0; i < N; i++)                                                 \
          if ((i & s) == 0) cex(&b[i], &b[i + s]);                                                                     \
    }                                                                                                                  \
    v128_t t = b[0];                                                                                                   \
    for (int p = 1; p < N; p++)                                                                                        \
      if (p == k - 1) t = b[p];                                                                                        \
    return t;                                                                                                          \
  }
KTH_NET(8)
KTH_NET(16)

/* Largest row length of the four-row path of topk_mass. */
#define TOPK_BLOCK_MAX 64

/* f64x2 of lanes 0, 1 (hi: 2, 3) of a float32 vector. */
static inline v128_t lo_f64(v128_t v) {
  return wasm_f64x2_promote_low_f32x4(v);
}
static inline v128_t hi_f64(v128_t v) {
  return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
}

/*
 * topk_mass for four rows at once (rows r0..r3, lane l = row l; rows beyond n repeat row 0 and are not written), for
 * len a multiple of 4 (≤ TOPK_BLOCK_MAX) and 0 < k ≤ min(32, len − 1). The rows are transposed into one vector per
 * entry and every per-row operation of the general path is done on the four lanes at once, in the same order (the
 * float64 sums keep their lane and pairing structure: Σ over vectors of (e0 + e2 | e1 + e3), etc.), so the values
 * are the same bit for bit. A block with a row whose softmax sum is NaN takes its softmax from softmax_row. a == 0: the
 * attention is not written.
 */
static void topk_mass_block(const f32 *r0, const f32 *r1, const f32 *r2, const f32 *r3, int n, int len, int k, f32 sign, f32 *a, f32 *M, f32 *c) {
  v128_t col[TOPK_BLOCK_MAX], key[TOPK_BLOCK_MAX], mk[TOPK_BLOCK_MAX];
  for (int j = 0; j < len; j += 4) {
    v128_t c0 = wasm_v128_load(r0 + j), c1 = wasm_v128_load(r1 + j), c2 = wasm_v128_load(r2 + j), c3 = wasm_v128_load(r3 + j);
    transpose4(&c0, &c1, &c2, &c3);
    col[j] = c0;
    col[j + 1] = c1;
    col[j + 2] = c2;
    col[j + 3] = c3;
  }
  /* softmax: the maximum (a value: the order of the comparisons does not matter), exp, Σ in float64 */
  v128_t mx = wasm_f32x4_splat(-__builtin_inff());
  for (int j = 0; j < len; j++) mx = wasm_f32x4_pmax(mx, col[j]);
  v128_t s0l = wasm_f64x2_splat(0), s1l = s0l, s0h = s0l, s1h = s0l;
  for (int j = 0; j < len; j += 4) {
    v128_t e0 = exp4_nonnan(wasm_f32x4_sub(col[j], mx)), e1 = exp4_nonnan(wasm_f32x4_sub(col[j + 1], mx));
    v128_t e2 = exp4_nonnan(wasm_f32x4_sub(col[j + 2], mx)), e3 = exp4_nonnan(wasm_f32x4_sub(col[j + 3], mx));
    col[j] = e0;
    col[j + 1] = e1;
    col[j + 2] = e2;
    col[j + 3] = e3;
    s0l = wasm_f64x2_add(s0l, wasm_f64x2_add(lo_f64(e0), lo_f64(e2)));
    s1l = wasm_f64x2_add(s1l, wasm_f64x2_add(lo_f64(e1), lo_f64(e3)));
    s0h = wasm_f64x2_add(s0h, wasm_f64x2_add(hi_f64(e0), hi_f64(e2)));
    s1h = wasm_f64x2_add(s1h, wasm_f64x2_add(hi_f64(e1), hi_f64(e3)));
  }
  v128_t sl = wasm_f64x2_add(s0l, s1l), sh = wasm_f64x2_add(s0h, s1h);
  const int fast = wasm_i64x2_all_true(wasm_f64x2_eq(sl, sl)) && wasm_i64x2_all_true(wasm_f64x2_eq(sh, sh));
  if (fast) {
    const v128_t one64 = wasm_f64x2_splat(1.0);
    v128_t il = wasm_f32x4_demote_f64x2_zero(wasm_f64x2_div(one64, sl)), ih = wasm_f32x4_demote_f64x2_zero(wasm_f64x2_div(one64, sh));
    v128_t inv = wasm_i32x4_shuffle(il, ih, 0, 1, 4, 5);
    for (int j = 0; j < len; j++) col[j] = wasm_f32x4_mul(col[j], inv);
  } else {
    f32 t[4][TOPK_BLOCK_MAX] __attribute__((aligned(16)));
    const f32 *rs[4] = {r0, r1, r2, r3};
    for (int l = 0; l < 4; l++) softmax_row(rs[l], len, t[l]);
    for (int j = 0; j < len; j += 4) {
      v128_t c0 = wasm_v128_load(t[0] + j), c1 = wasm_v128_load(t[1] + j), c2 = wasm_v128_load(t[2] + j), c3 = wasm_v128_load(t[3] + j);
      transpose4(&c0, &c1, &c2, &c3);
      col[j] = c0;
      col[j + 1] = c1;
      col[j + 2] = c2;
      col[j + 3] = c3;
    }
  }
  /* the k-th best key per row; the entries beating it, then those equal to it in index order until k */
  const v128_t vs = wasm_f32x4_splat(sign);
  if (fast && sign > 0)
    /* softmax values without NaN are ≥ +0 (never -0): their order keys are their bits */
    for (int j = 0; j < len; j++) key[j] = col[j];
  else
    for (int j = 0; j < len; j++) key[j] = order_key4(wasm_f32x4_mul(col[j], vs));
  v128_t t;
  if (k <= 4) t = kth_vec_4net(key, len, k);
  else if (k <= 16 && len > 16) {
    /* sorting networks over groups of 8 or 16 (the row padded with empty keys, which lose to every key: k < len) */
    const int N = k <= 8 ? 8 : 16;
    const int padded = (len + N - 1) / N * N;
    for (int j = len; j < padded; j++) key[j] = wasm_i32x4_splat(INT32_MIN);
    t = N == 8 ? kth_vec_net_8(key, padded, k) : kth_vec_net_16(key, padded, k);
  } else t = k <= 8 ? kth_vec_8(key, len, k) : k <= 12 ? kth_vec_12(key, len, k) : k <= 16 ? kth_vec_16(key, len, k) : kth_vec_32(key, len, k);
  v128_t need = wasm_i32x4_splat(k);
  for (int j = 0; j < len; j++) {
    v128_t gt = wasm_i32x4_gt(key[j], t);
    mk[j] = gt;
    need = wasm_i32x4_add(need, gt);
  }
  const v128_t zero = wasm_i32x4_splat(0);
  for (int j = 0; j < len; j++) {
    v128_t take = wasm_v128_and(wasm_i32x4_eq(key[j], t), wasm_i32x4_gt(need, zero));
    mk[j] = wasm_v128_or(mk[j], take);
    need = wasm_i32x4_add(need, take);
  }
  /* c = 2·Σ a·M − 1 per row: four float64 chains per row (entries ≡ 0, 1, 2, 3 mod 4), as row_scale */
  const v128_t one = wasm_f32x4_splat(1.0f);
  v128_t q0l = wasm_f64x2_splat(0), q1l = q0l, q2l = q0l, q3l = q0l, q0h = q0l, q1h = q0l, q2h = q0l, q3h = q0l;
  for (int j = 0; j < len; j += 4) {
    v128_t p0 = wasm_f32x4_mul(col[j], wasm_v128_and(mk[j], one)), p1 = wasm_f32x4_mul(col[j + 1], wasm_v128_and(mk[j + 1], one));
    v128_t p2 = wasm_f32x4_mul(col[j + 2], wasm_v128_and(mk[j + 2], one)), p3 = wasm_f32x4_mul(col[j + 3], wasm_v128_and(mk[j + 3], one));
    q0l = wasm_f64x2_add(q0l, lo_f64(p0));
    q1l = wasm_f64x2_add(q1l, lo_f64(p1));
    q2l = wasm_f64x2_add(q2l, lo_f64(p2));
    q3l = wasm_f64x2_add(q3l, lo_f64(p3));
    q0h = wasm_f64x2_add(q0h, hi_f64(p0));
    q1h = wasm_f64x2_add(q1h, hi_f64(p1));
    q2h = wasm_f64x2_add(q2h, hi_f64(p2));
    q3h = wasm_f64x2_add(q3h, hi_f64(p3));
  }
  const v128_t two = wasm_f64x2_splat(2.0), one64 = wasm_f64x2_splat(1.0);
  v128_t ml = wasm_f64x2_add(wasm_f64x2_add(q0l, q2l), wasm_f64x2_add(q1l, q3l));
  v128_t mh = wasm_f64x2_add(wasm_f64x2_add(q0h, q2h), wasm_f64x2_add(q1h, q3h));
  ml = wasm_f64x2_sub(wasm_f64x2_mul(two, wasm_f64x2_promote_low_f32x4(wasm_f32x4_demote_f64x2_zero(ml))), one64);
  mh = wasm_f64x2_sub(wasm_f64x2_mul(two, wasm_f64x2_promote_low_f32x4(wasm_f32x4_demote_f64x2_zero(mh))), one64);
  f32 cs[4] __attribute__((aligned(16)));
  wasm_v128_store(cs, wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(ml), wasm_f32x4_demote_f64x2_zero(mh), 0, 1, 4, 5));
  for (int l = 0; l < n; l++) c[l] = cs[l];
  /* a and M back to rows */
  for (int j = 0; j < len; j += 4) {
    v128_t c0 = col[j], c1 = col[j + 1], c2 = col[j + 2], c3 = col[j + 3];
    v128_t m0 = wasm_v128_and(mk[j], one), m1 = wasm_v128_and(mk[j + 1], one), m2 = wasm_v128_and(mk[j + 2], one), m3 = wasm_v128_and(mk[j + 3], one);
    transpose4(&m0, &m1, &m2, &m3);
    wasm_v128_store(M + j, m0);
    if (n > 1) wasm_v128_store(M + len + j, m1);
    if (n > 2) wasm_v128_store(M + 2L * len + j, m2);
    if (n > 3) wasm_v128_store(M + 3L * len + j, m3);
    if (!a) continue;
    transpose4(&c0, &c1, &c2, &c3);
    wasm_v128_store(a + j, c0);
    if (n > 1) wasm_v128_store(a + len + j, c1);
    if (n > 2) wasm_v128_store(a + 2L * len + j, c2);
    if (n > 3) wasm_v128_store(a + 3L * len + j, c3);
  }
}

/* Whether topk_mass takes the four-row path (topk_mass_block). */
static inline int topk_blocks_ok(int len, int k) {
  return (len & 3) == 0 && len <= TOPK_BLOCK_MAX && k > 0 && k < len && k <= 32;
}

/* topk_mass_block over all rows (topk_blocks_ok); a == 0: the attention is not written. */
static void topk_mass_blocks(const f32 *logits, int rows, int len, int k, int largest, f32 *a, f32 *M, f32 *c) {
  for (int r = 0; r < rows; r += 4) {
    const int n = rows - r < 4 ? rows - r : 4;
    const f32 *L = logits + (long)r * len;
    topk_mass_block(L, n > 1 ? L + len : L, n > 2 ? L + 2L * len : L, n > 3 ? L + 3L * len : L, n, len, k, largest ? 1.0f : -1.0f, a ? a + (long)r * len : 0, M + (long)r * len, c + r);
  }
}

/*
 * SOP's group binarisation for `rows` rows of `len` logits: a = softmax(row) (float32), M = 0/1 mask of the top k of a
 * (bottom k when largest = 0), c = 2·Σ_j a_j·M_j − 1 (the sum in float64). scratch: 64 int32 + len f32.
 */
EXPORT("topk_mass")
void topk_mass(const f32 *logits, int rows, int len, int k, int largest, f32 *a, f32 *M, f32 *c, int32_t *scratch) {
  if (topk_blocks_ok(len, k)) {
    topk_mass_blocks(logits, rows, len, k, largest, a, M, c);
    return;
  }
  for (int r = 0; r < rows; r++) softmax_row(logits + (long)r * len, len, a + (long)r * len);
  topk_mask_rows(a, rows, len, k, largest, M, scratch);
  for (int r = 0; r < rows; r++) c[r] = row_scale(a + (long)r * len, M + (long)r * len, len);
}

/* 0/1 top-k masks of `rows` rows of `len` values (topkMask over the last axis). scratch: 64 int32 + len f32. */
EXPORT("topk_mask")
void topk_mask(const f32 *v, int rows, int len, int k, int largest, f32 *M, int32_t *scratch) {
  topk_mask_rows(v, rows, len, k, largest, M, scratch);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* sparsemax                                                                                                        */

/*
 * Sparsemax of one column of len values at stride `inner`, on z − max z in float64: α = max(z − τ, 0) with τ the
 * threshold of Martins & Astudillo (2016), found by support iteration (Michelot 1986: τ = (Σ_S z − 1)/|S| over the
 * entries above the previous τ, until the support stops shrinking) for up to 64 entries, by sorting for longer
 * columns. work: scratch of len f64.
 */
static void sparsemax_col(const f32 *zc, int len, long inner, f32 *oc, f64 *work) {
  f64 mx = -__builtin_inf();
  for (int i = 0; i < len; i++)
    if (zc[(long)i * inner] > mx) mx = zc[(long)i * inner];
  f64 tau;
  if (len <= 64) {
    f64 S = 0;
    for (int i = 0; i < len; i++) {
      work[i] = (f64)zc[(long)i * inner] - mx;
      S += work[i];
    }
    int K = len;
    tau = (S - 1.0) / (f64)K;
    for (;;) {
      int k2 = 0;
      f64 s2 = 0;
      for (int i = 0; i < len; i++)
        if (work[i] > tau) {
          k2++;
          s2 += work[i];
        }
      if (k2 == K || k2 == 0) break;
      K = k2;
      tau = (s2 - 1.0) / (f64)k2;
    }
  } else {
    for (int i = 0; i < len; i++) {
      f64 v = (f64)zc[(long)i * inner] - mx;
      int p = i;
      while (p > 0 && work[p - 1] < v) {
        work[p] = work[p - 1];
        p--;
      }
      work[p] = v;
    }
    f64 cum = 0, tauSum = 0;
    int kz = 0;
    for (int i = 0; i < len; i++) {
      cum += work[i];
      if (1.0 + (f64)(i + 1) * work[i] > cum) {
        kz = i + 1;
        tauSum = cum;
      }
    }
    tau = kz > 0 ? (tauSum - 1.0) / (f64)kz : 0.0;
  }
  for (int i = 0; i < len; i++) {
    f64 v = ((f64)zc[(long)i * inner] - mx) - tau;
    oc[(long)i * inner] = v > 0 ? (f32)v : 0.0f;
  }
}

/*
 * sparsemax_col for NP adjacent pairs of columns at once (len ≤ 64), one column per float64 lane, the pairs' loops
 * interleaved: each lane goes through the same operations in the same order as sparsemax_col, and the support
 * iteration runs until every pair's support stopped shrinking (a pair that stopped earlier keeps its τ: further
 * passes find the same support), so the same bits. work: scratch of 2·NP·len f64.
 */
#define SPARSEMAX_PAIRS(NP)                                                                                             \
  static void sparsemax_pairs_##NP(const f32 *zc, int len, long inner, f32 *oc, f64 *work) {                          \
    v128_t mx[NP], S[NP], K[NP], tau[NP], k2[NP], s2[NP];                                                              \
    for (int q = 0; q < NP; q++) mx[q] = wasm_f64x2_splat(-__builtin_inf());                                            \
    for (int i = 0; i < len; i++)                                                                                      \
      for (int q = 0; q < NP; q++) mx[q] = wasm_f64x2_pmax(mx[q], wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(zc + (long)i * inner + 2 * q))); \
    for (int q = 0; q < NP; q++) S[q] = wasm_f64x2_splat(0.0);                                                          \
    for (int i = 0; i < len; i++)                                                                                      \
      for (int q = 0; q < NP; q++) {                                                                                   \
        v128_t w = wasm_f64x2_sub(wasm_f64x2_promote_low_f32x4(wasm_v128_load64_zero(zc + (long)i * inner + 2 * q)), mx[q]); \
        wasm_v128_store(work + 2 * (i * NP + q), w);                                                                   \
        S[q] = wasm_f64x2_add(S[q], w);                                                                                \
      }                                                                                                                \
    const v128_t one = wasm_f64x2_splat(1.0);                                                                          \
    for (int q = 0; q < NP; q++) {                                                                                     \
      K[q] = wasm_f64x2_splat((f64)len);                                                                               \
      tau[q] = wasm_f64x2_div(wasm_f64x2_sub(S[q], one), K[q]);                                                        \
    }                                                                                                                  \
    for (;;) {                                                                                                         \
      for (int q = 0; q < NP; q++) k2[q] = s2[q] = wasm_f64x2_splat(0.0);                                              \
      for (int i = 0; i < len; i++)                                                                                    \
        for (int q = 0; q < NP; q++) {                                                                                 \
          v128_t w = wasm_v128_load(work + 2 * (i * NP + q));                                                          \
          v128_t gt = wasm_f64x2_gt(w, tau[q]);                                                                        \
          k2[q] = wasm_f64x2_add(k2[q], wasm_v128_and(gt, one));                                                       \
          s2[q] = wasm_f64x2_add(s2[q], wasm_v128_and(gt, w));                                                         \
        }                                                                                                              \
      int all = 1;                                                                                                     \
      for (int q = 0; q < NP; q++) all &= wasm_i64x2_all_true(wasm_f64x2_eq(k2[q], K[q]));                             \
      if (all) break;                                                                                                  \
      for (int q = 0; q < NP; q++) {                                                                                   \
        v128_t same = wasm_f64x2_eq(k2[q], K[q]);                                                                      \
        tau[q] = wasm_v128_bitselect(tau[q], wasm_f64x2_div(wasm_f64x2_sub(s2[q], one), k2[q]), same);                 \
        K[q] = k2[q];                                                                                                  \
      }                                                                                                                \
    }                                                                                                                  \
    for (int i = 0; i < len; i++)                                                                                      \
      for (int q = 0; q < NP; q++) {                                                                                   \
        v128_t v = wasm_f64x2_max(wasm_f64x2_sub(wasm_v128_load(work + 2 * (i * NP + q)), tau[q]), wasm_f64x2_splat(0.0)); \
        wasm_v128_store64_lane(oc + (long)i * inner + 2 * q, wasm_f32x4_demote_f64x2_zero(v), 0);                      \
      }                                                                                                                \
  }
SPARSEMAX_PAIRS(1)
SPARSEMAX_PAIRS(2)
SPARSEMAX_PAIRS(3)

/* Sparsemax along the middle axis of [outer, len, inner]. work: scratch of 6·len f64. */
EXPORT("sparsemax_mid")
void sparsemax_mid(const f32 *z, int outer, int len, int inner, f32 *out, f64 *work) {
  for (int o = 0; o < outer; o++) {
    int t = 0;
    if (len <= 64)
      while (t + 2 <= inner) {
        /* three pairs at a time (four columns left: two and two; two: one pair) */
        const int pairs = (inner - t) / 2;
        const long at = (long)o * len * inner + t;
        if (pairs >= 3 && pairs != 4) {
          sparsemax_pairs_3(z + at, len, inner, out + at, work);
          t += 6;
        } else if (pairs >= 2) {
          sparsemax_pairs_2(z + at, len, inner, out + at, work);
          t += 4;
        } else {
          sparsemax_pairs_1(z + at, len, inner, out + at, work);
          t += 2;
        }
      }
    for (; t < inner; t++) sparsemax_col(z + (long)o * len * inner + t, len, inner, out + (long)o * len * inner + t, work);
  }
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* masked copies                                                                                                    */

/* A row's mask mr on the four pixels of quad q: one load of the window from `start` and the byte swizzle `tab`, or a scalar gather (start < 0). */
static inline v128_t quad_mask(const f32 *mr, int start, const uint8_t *tab, const int32_t *q) {
  if (start >= 0) return wasm_i8x16_swizzle(wasm_v128_load(mr + start), wasm_v128_load(tab));
  return wasm_f32x4_make(mr[q[0]], mr[q[1]], mr[q[2]], mr[q[3]]);
}

/*
 * Masked copies of input rows through a pixel → feature map: for r < R, channel ch < C, pixel p < hw,
 * out[r][ch][p] = x[rows[r]][ch][p] · masks[r][map[p]] (base == 0), or base[ch·hw + p] + (x − base)·m computed in
 * float64 (base given: one baseline row shared by all outputs). Pixels are taken four at a time ("quads"); quads whose
 * four features are the same (e.g. the rows of a patch) share one expanded mask vector, so a row's mask is expanded
 * once per distinct quad (16 for 8×8 patches of a 32×32 image instead of 256) and each channel's pass reads it through
 * the quad's index. A distinct quad is expanded by one (unaligned) load of the ≤ 4 consecutive features it covers and
 * a byte swizzle, else a scalar gather. One channel, no base and no repeated quads: expanded and applied in one pass.
 * work: scratch of 15·hw + 64 bytes.
 */
EXPORT("mask_rows")
void mask_rows(const f32 *x, const int32_t *rows, int R, const f32 *masks, int d, const int32_t *map, int hw, int C, const f32 *base, f32 *out, uint8_t *work) {
  const long row = (long)C * hw;
  const int nv = hw / 4;
  int slots = 1;
  while (slots < 2 * nv) slots *= 2;
  f32 *expU = (f32 *)work;                             /* [nu][4]: the current row's mask on each distinct quad */
  int32_t *uidx = (int32_t *)(work + 4L * hw);         /* [nv]: quad v → its distinct quad */
  int32_t *urep = uidx + nv;                           /* [nu]: a quad with that distinct quad's features */
  int32_t *ustart = urep + nv;                         /* [nu]: first feature of its window, or -1 (gather) */
  int32_t *table = ustart + nv;                        /* [slots]: open-addressing hash of the distinct quads */
  uint8_t *utab = (uint8_t *)(((uintptr_t)(table + slots) + 15) & ~(uintptr_t)15); /* [nu][16]: byte swizzles */
  for (int h = 0; h < slots; h++) table[h] = -1;
  int nu = 0;
  for (int v = 0; v < nv; v++) {
    const int32_t *q = map + 4 * v;
    uint32_t h = ((uint32_t)q[0] * 73856093u) ^ ((uint32_t)q[1] * 19349663u) ^ ((uint32_t)q[2] * 83492791u) ^ ((uint32_t)q[3] * 2654435761u);
    h = (h ^ (h >> 15)) & (uint32_t)(slots - 1);
    int u = -1;
    while (table[h] >= 0) {
      const int32_t *o = map + 4 * urep[table[h]];
      if (o[0] == q[0] && o[1] == q[1] && o[2] == q[2] && o[3] == q[3]) {
        u = table[h];
        break;
      }
      h = (h + 1) & (uint32_t)(slots - 1);
    }
    if (u < 0) {
      u = nu++;
      table[h] = u;
      urep[u] = v;
      int lo = q[0], hi = lo;
      for (int l = 1; l < 4; l++) {
        if (q[l] < lo) lo = q[l];
        if (q[l] > hi) hi = q[l];
      }
      if (d >= 4 && lo > d - 4) lo = d - 4;
      if (d < 4 || hi - lo > 3) {
        ustart[u] = -1;
      } else {
        ustart[u] = lo;
        for (int l = 0; l < 4; l++)
          for (int b = 0; b < 4; b++) utab[16 * u + 4 * l + b] = (uint8_t)(4 * (q[l] - lo) + b);
      }
    }
    uidx[v] = u;
  }
  for (int r = 0; r < R; r++) {
    const f32 *mr = masks + (long)r * d;
    const f32 *xr = x + (long)rows[r] * row;
    f32 *orow = out + (long)r * row;
    if (C == 1 && !base && nu == nv) {
      for (int v = 0; v < nv; v++) {
        const v128_t m = quad_mask(mr, ustart[v], utab + 16 * v, map + 4 * v);
        wasm_v128_store(orow + 4 * v, wasm_f32x4_mul(wasm_v128_load(xr + 4 * v), m));
      }
      for (int p = 4 * nv; p < hw; p++) orow[p] = xr[p] * mr[map[p]];
      continue;
    }
    for (int u = 0; u < nu; u++) wasm_v128_store(expU + 4 * u, quad_mask(mr, ustart[u], utab + 16 * u, map + 4 * urep[u]));
    for (int ch = 0; ch < C; ch++) {
      const f32 *xc = xr + (long)ch * hw;
      f32 *oc = orow + (long)ch * hw;
      if (!base) {
        for (int v = 0; v < nv; v++) wasm_v128_store(oc + 4 * v, wasm_f32x4_mul(wasm_v128_load(xc + 4 * v), wasm_v128_load(expU + 4 * uidx[v])));
        for (int p = 4 * nv; p < hw; p++) oc[p] = xc[p] * mr[map[p]];
      } else {
        const f32 *bc = base + (long)ch * hw;
        for (int p = 0; p < hw; p++) {
          const f32 m = p < 4 * nv ? expU[4 * uidx[p >> 2] + (p & 3)] : mr[map[p]];
          oc[p] = (f32)((f64)bc[p] + ((f64)xc[p] - (f64)bc[p]) * (f64)m);
        }
      }
    }
  }
}

/*
 * A feature space's values as a gather from rows of x: out[b][t] = idx[t] >= 0 ? x[b·row + idx[t]] : 0 for b < B,
 * t < n (FeatureSpace.featureValueIndex; e.g. the patches' values for the generator).
 */
EXPORT("gather_rows")
void gather_rows(const f32 *x, int B, int row, const int32_t *idx, int n, f32 *out) {
  for (int b = 0; b < B; b++) {
    const f32 *xb = x + (long)b * row;
    f32 *ob = out + (long)b * n;
    int t = 0;
    for (; t + 4 <= n; t += 4) {
      const int i = idx[t];
      /* four consecutive values of x (e.g. a patch row): one vector */
      if (i >= 0 && idx[t + 1] == i + 1 && idx[t + 2] == i + 2 && idx[t + 3] == i + 3) wasm_v128_store(ob + t, wasm_v128_load(xb + i));
      else
        for (int l = 0; l < 4; l++) ob[t + l] = idx[t + l] >= 0 ? xb[idx[t + l]] : 0.0f;
    }
    for (; t < n; t++) ob[t] = idx[t] >= 0 ? xb[idx[t]] : 0.0f;
  }
}

/* y[r·len + t] += b[t] for r < n, t < len (float32 adds: a bias row added to every row). */
EXPORT("add_rows")
void add_rows(f32 *y, int n, const f32 *b, int len) {
  for (int r = 0; r < n; r++) {
    f32 *yr = y + (long)r * len;
    int t = 0;
    for (; t + 4 <= len; t += 4) wasm_v128_store(yr + t, wasm_f32x4_add(wasm_v128_load(yr + t), wasm_v128_load(b + t)));
    for (; t < len; t++) yr[t] += b[t];
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
 * row and column counts give the actual sizes). work: scratch of 2·p·(d + 3) + 2·p·m + 4·(d + 3) + 8 f32.
 */
EXPORT("gen_logits")
void gen_logits(const f32 *V, int B, int d, int p, const int32_t *qs, int m, const f32 *G, const f32 *aBk, int aBkRows, const f32 *Abk, int AbkCols, const f32 *abk, int abkRows, int abkCols, f32 *L, f32 *work) {
  const int dp = (d + 3) & ~3; /* row stride of ZT, zero-padded to whole vectors */
  f32 *ZT = work;              /* [2p, dp]: rows 0..p) = V[b]ᵀ, rows p..2p) = Abk (broadcast over j) */
  f32 *Y = work + 2L * p * dp; /* [m, 2p]: per query, P then V[b, qs[i], :] */
  f32 *rows4 = Y + 2L * p * m + 4; /* [4, dp] (16-byte aligned: every part above is a multiple of 4 floats) */
  for (long t = 0; t < 2L * p * dp; t++) ZT[t] = 0.0f;
  for (int q = 0; q < p; q++)
    for (int j = 0; j < d; j++) ZT[(long)(p + q) * dp + j] = Abk[(long)q * AbkCols + (AbkCols == 1 ? 0 : j)];
  for (int b = 0; b < B; b++) {
    const f32 *Vb = V + (long)b * d * p;
    for (int j = 0; j < d; j++)
      for (int q = 0; q < p; q++) ZT[(long)q * dp + j] = Vb[(long)j * p + q];
    for (int i = 0; i < m; i++) {
      const f32 *vq = Vb + (long)qs[i] * p;
      const f32 *ab = aBk + (long)(aBkRows == 1 ? 0 : i) * p;
      f32 *y = Y + 2L * p * i;
      if ((p & 3) == 0) {
        int q0 = 0;
        /* eight vectors of P at a time (independent chains; each output still sums over t in order from +0) */
        for (; q0 + 32 <= p; q0 += 32) {
          v128_t c[8];
          for (int u = 0; u < 8; u++) c[u] = wasm_f32x4_splat(0.0f);
          for (int t = 0; t < p; t++) {
            const v128_t s = wasm_f32x4_splat(vq[t]);
            const f32 *g = G + (long)t * p + q0;
            for (int u = 0; u < 8; u++) c[u] = wasm_f32x4_add(c[u], wasm_f32x4_mul(s, wasm_v128_load(g + 4 * u)));
          }
          for (int u = 0; u < 8; u++) {
            wasm_v128_store(y + q0 + 4 * u, wasm_f32x4_add(c[u], wasm_v128_load(ab + q0 + 4 * u)));
            wasm_v128_store(y + p + q0 + 4 * u, wasm_v128_load(vq + q0 + 4 * u));
          }
        }
        for (; q0 < p; q0 += 4) {
          v128_t acc = wasm_f32x4_splat(0.0f);
          for (int t = 0; t < p; t++) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_splat(vq[t]), wasm_v128_load(G + (long)t * p + q0)));
          wasm_v128_store(y + q0, wasm_f32x4_add(acc, wasm_v128_load(ab + q0)));
          wasm_v128_store(y + p + q0, wasm_v128_load(vq + q0));
        }
      } else {
        for (int q = 0; q < p; q++) {
          f32 s = 0;
          for (int t = 0; t < p; t++) s += vq[t] * G[(long)t * p + q];
          y[q] = s + ab[q];
          y[p + q] = vq[q];
        }
      }
    }
    /* L rows = abk row + Σ_q Y[i, q]·ZT[q, :]: four queries × 16 columns at a time in registers (each output sums over
       q in order from its abk value); in place when d is a whole number of vectors, else through rows4 (the abk
       loads then run past its d values into the arena: those lanes are dropped) */
    for (int i0 = 0; i0 < m; i0 += 4) {
      const int ni = m - i0 < 4 ? m - i0 : 4;
      f32 *dst[4];
      const f32 *ak[4];
      const f32 *yr[4];
      for (int r = 0; r < 4; r++) {
        const int i = i0 + (r < ni ? r : 0);
        f32 *Li = L + ((long)b * m + i) * d;
        dst[r] = (d & 3) == 0 ? Li : rows4 + (long)r * dp;
        ak[r] = abk + (long)(abkRows == 1 ? 0 : i) * abkCols;
        yr[r] = Y + 2L * p * i;
      }
      if (ni == 4) {
        int j0 = 0;
        for (; j0 + 16 <= dp; j0 += 16) {
          v128_t a[4][4];
          for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++) a[r][c] = abkCols == 1 ? wasm_f32x4_splat(ak[r][0]) : wasm_v128_load(ak[r] + j0 + 4 * c);
          for (int q = 0; q < 2 * p; q++) {
            const f32 *z = ZT + (long)q * dp + j0;
            const v128_t z0 = wasm_v128_load(z), z1 = wasm_v128_load(z + 4), z2 = wasm_v128_load(z + 8), z3 = wasm_v128_load(z + 12);
            for (int r = 0; r < 4; r++) {
              const v128_t yq = wasm_f32x4_splat(yr[r][q]);
              a[r][0] = wasm_f32x4_add(a[r][0], wasm_f32x4_mul(yq, z0));
              a[r][1] = wasm_f32x4_add(a[r][1], wasm_f32x4_mul(yq, z1));
              a[r][2] = wasm_f32x4_add(a[r][2], wasm_f32x4_mul(yq, z2));
              a[r][3] = wasm_f32x4_add(a[r][3], wasm_f32x4_mul(yq, z3));
            }
          }
          for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++) wasm_v128_store(dst[r] + j0 + 4 * c, a[r][c]);
        }
        for (; j0 < dp; j0 += 4) {
          v128_t a[4];
          for (int r = 0; r < 4; r++) a[r] = abkCols == 1 ? wasm_f32x4_splat(ak[r][0]) : wasm_v128_load(ak[r] + j0);
          for (int q = 0; q < 2 * p; q++) {
            const v128_t z = wasm_v128_load(ZT + (long)q * dp + j0);
            for (int r = 0; r < 4; r++) a[r] = wasm_f32x4_add(a[r], wasm_f32x4_mul(wasm_f32x4_splat(yr[r][q]), z));
          }
          for (int r = 0; r < 4; r++) wasm_v128_store(dst[r] + j0, a[r]);
        }
      } else {
        for (int r = 0; r < ni; r++)
          for (int j0 = 0; j0 < dp; j0 += 4) {
            v128_t a0 = abkCols == 1 ? wasm_f32x4_splat(ak[r][0]) : wasm_v128_load(ak[r] + j0);
            for (int q = 0; q < 2 * p; q++) a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_f32x4_splat(yr[r][q]), wasm_v128_load(ZT + (long)q * dp + j0)));
            wasm_v128_store(dst[r] + j0, a0);
          }
      }
      if ((d & 3) != 0)
        for (int r = 0; r < ni; r++)
          for (int j = 0; j < d; j++) L[((long)b * m + i0 + r) * d + j] = dst[r][j];
    }
  }
}

/*
 * acc[i][t] = Σ_q X[i·k + q] · W[q·ldw + 4t .. +4) for R rows × NV vectors, accumulated over q in order from +0 with
 * f32 multiplies and adds (the order every row-block product here shares, so that they agree bit for bit).
 */
#define ACCUMULATE_ROWS(acc, R, NV, X, k, W, ldw)                                                                      \
  v128_t acc[R][NV];                                                                                                   \
  for (int i = 0; i < R; i++)                                                                                          \
    for (int t = 0; t < NV; t++) acc[i][t] = wasm_f32x4_splat(0.0f);                                                   \
  for (int q = 0; q < k; q++) {                                                                                        \
    v128_t w[NV];                                                                                                      \
    for (int t = 0; t < NV; t++) w[t] = wasm_v128_load(W + (long)q * ldw + 4 * t);                                     \
    for (int i = 0; i < R; i++) {                                                                                      \
      v128_t xq = wasm_f32x4_splat(X[(long)i * k + q]);                                                                \
      for (int t = 0; t < NV; t++) acc[i][t] = wasm_f32x4_add(acc[i][t], wasm_f32x4_mul(xq, w[t]));                    \
    }                                                                                                                  \
  }

/* The first `count` (1–4) lanes of v stored at p. */
static inline void store_lanes(f32 *p, v128_t v, int count) {
  if (count >= 4) wasm_v128_store(p, v);
  else if (count == 1) wasm_v128_store32_lane(p, v, 0);
  else {
    wasm_v128_store64_lane(p, v, 0);
    if (count == 3) wasm_v128_store32_lane(p + 2, v, 2);
  }
}

/* One block of R rows (R ≤ 4) × up to 12 columns (NV ≤ 3 vectors) of Y = X·WT, accumulated in registers over k. */
#define ROWS_BLOCK(R, NV)                                                                                               \
  static void rows_block_##R##_##NV(const f32 *X, int k, const f32 *WT, int C4, int C, f32 *Y) {                      \
    ACCUMULATE_ROWS(acc, R, NV, X, k, WT, C4);                                                                         \
    /* whole vectors straight into the row, then the last 1–4 columns by lanes (C > 4·(NV − 1)) */                    \
    const int rem = C - 4 * (NV - 1);                                                                                  \
    for (int i = 0; i < R; i++) {                                                                                      \
      f32 *yr = Y + (long)i * C;                                                                                       \
      for (int t = 0; t < NV - 1; t++) wasm_v128_store(yr + 4 * t, acc[i][t]);                                         \
      store_lanes(yr + 4 * (NV - 1), acc[i][NV - 1], rem);                                                             \
    }                                                                                                                  \
  }
ROWS_BLOCK(4, 1)
ROWS_BLOCK(4, 2)
ROWS_BLOCK(4, 3)
ROWS_BLOCK(2, 4)
ROWS_BLOCK(1, 1)
ROWS_BLOCK(1, 2)
ROWS_BLOCK(1, 3)
ROWS_BLOCK(1, 4)

void matmul_rows_padded(const f32 *X, int n, int k, const f32 *WT, int C, f32 *Y);

/*
 * Y [n, C] = X [n, k] · W [k, C] (row-major), accumulated over k in order. Up to 16 columns: W padded to whole
 * vectors (WT: scratch of k·(C + 3) f32) and blocks of four rows (two for 13–16 columns) × all columns held in
 * registers, so each loaded row of W serves several rows of X; wider W: rows of W accumulated into Y, 4 columns at a
 * time.
 */
EXPORT("matmul_rows")
void matmul_rows(const f32 *X, int n, int k, const f32 *W, int C, f32 *Y, f32 *WT) {
  if (C <= 16) {
    const int C4 = (C + 3) & ~3;
    for (int q = 0; q < k; q++)
      for (int c = 0; c < C4; c++) WT[(long)q * C4 + c] = c < C ? W[(long)q * C + c] : 0.0f;
    matmul_rows_padded(X, n, k, WT, C, Y);
    return;
  }
  matmul_rows_padded(X, n, k, W, C, Y);
}

/*
 * matmul_rows with W already laid out for it: for C ≤ 16, WT [k, ⌈C/4⌉·4] (W's rows zero-padded to whole vectors);
 * beyond, W [k, C] itself. Same values as matmul_rows (for callers that multiply several row blocks by one W).
 */
EXPORT("matmul_rows_padded")
void matmul_rows_padded(const f32 *X, int n, int k, const f32 *WT, int C, f32 *Y) {
  if (C <= 16) {
    const int C4 = (C + 3) & ~3;
    const int NV = C4 / 4;
    const int R = NV == 4 ? 2 : 4;
    int r = 0;
    for (; r + R <= n; r += R) {
      const f32 *x = X + (long)r * k;
      f32 *y = Y + (long)r * C;
      if (NV == 1) rows_block_4_1(x, k, WT, C4, C, y);
      else if (NV == 2) rows_block_4_2(x, k, WT, C4, C, y);
      else if (NV == 3) rows_block_4_3(x, k, WT, C4, C, y);
      else rows_block_2_4(x, k, WT, C4, C, y);
    }
    for (; r < n; r++) {
      const f32 *x = X + (long)r * k;
      f32 *y = Y + (long)r * C;
      if (NV == 1) rows_block_1_1(x, k, WT, C4, C, y);
      else if (NV == 2) rows_block_1_2(x, k, WT, C4, C, y);
      else if (NV == 3) rows_block_1_3(x, k, WT, C4, C, y);
      else rows_block_1_4(x, k, WT, C4, C, y);
    }
    return;
  }
  const f32 *W = WT;
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

/*
 * The sparsemax selector at inference: S = keys [B·m, k] · u [k, C] (as matmul_rows), then α = sparsemax of S over the
 * m groups, per example and class. S: scratch of B·m·C f32; work: scratch of 6·m f64; uT: scratch of k·C f32.
 */
EXPORT("select_sparsemax")
void select_sparsemax(const f32 *keys, int B, int m, int k, const f32 *u, int C, f32 *alpha, f32 *S, f64 *work, f32 *uT) {
  matmul_rows(keys, B * m, k, u, C, S, uT);
  sparsemax_mid(S, B, m, C, alpha, work);
}

/*
 * SOP's output at inference: ẑ = c_j·z_j, α ⊙ ẑ and y = Σ_j α ⊙ ẑ (float32 products; the sum over groups in float64)
 * for z, α [B, m, C] and c [B, m].
 */
EXPORT("sop_combine")
void sop_combine(const f32 *z, const f32 *alpha, const f32 *scales, int B, int m, int C, f32 *zh, f32 *ct, f32 *y, f64 *acc) {
  /* four classes at a time (the same float32 products and float64 sums per class, so the same bits) */
  const int C4 = C & ~3;
  for (int b = 0; b < B; b++) {
    for (int c = 0; c < C; c++) acc[c] = 0;
    for (int j = 0; j < m; j++) {
      const long o = ((long)b * m + j) * C;
      const f32 s = scales[(long)b * m + j];
      const v128_t vs = wasm_f32x4_splat(s);
      int c = 0;
      for (; c < C4; c += 4) {
        v128_t v = wasm_f32x4_mul(wasm_v128_load(z + o + c), vs);
        wasm_v128_store(zh + o + c, v);
        v128_t w = wasm_f32x4_mul(wasm_v128_load(alpha + o + c), v);
        wasm_v128_store(ct + o + c, w);
        wasm_v128_store(acc + c, wasm_f64x2_add(wasm_v128_load(acc + c), wasm_f64x2_promote_low_f32x4(w)));
        wasm_v128_store(acc + c + 2, wasm_f64x2_add(wasm_v128_load(acc + c + 2), wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(w, w, 2, 3, 0, 1))));
      }
      for (; c < C; c++) {
        f32 v = z[o + c] * s;
        zh[o + c] = v;
        f32 w = alpha[o + c] * v;
        ct[o + c] = w;
        acc[c] += w;
      }
    }
    for (int c = 0; c < C; c++) y[(long)b * C + c] = (f32)acc[c];
  }
}

/*
 * select_sparsemax then sop_combine in one call (α written to alpha and used by the combination): the selector's
 * weights and SOP's output at inference. keys may be z itself ('output' keys). Scratch as the two kernels.
 */
EXPORT("select_combine")
void select_combine(const f32 *keys, int B, int m, int k, const f32 *u, int C, const f32 *z, const f32 *scales, f32 *alpha, f32 *S, f64 *work, f32 *uT, f32 *zh, f32 *ct, f32 *y, f64 *acc) {
  select_sparsemax(keys, B, m, k, u, C, alpha, S, work, uT);
  sop_combine(z, alpha, scales, B, m, C, zh, ct, y, acc);
}

/*
 * The second half of select_combine for scores S [B·m, C] computed beforehand (matmul_rows_padded over the keys, e.g.
 * chunk by chunk as the backbone produces them): α = sparsemax of S over the m groups, then sop_combine. Same values
 * as select_combine on the whole keys.
 */
EXPORT("sparsemax_combine")
void sparsemax_combine(const f32 *S, int B, int m, int C, const f32 *z, const f32 *scales, f32 *alpha, f64 *work, f32 *zh, f32 *ct, f32 *y, f64 *acc) {
  sparsemax_mid(S, B, m, C, alpha, work);
  sop_combine(z, alpha, scales, B, m, C, zh, ct, y, acc);
}

/*
 * The attention generator's inference in one call: gen_logits into L (scratch of B·m·d f32), then topk_mass over its
 * B·m rows of d logits. work: as gen_logits; scratch: as topk_mass; a may be 0 (the attention is then not returned).
 */
EXPORT("gen_topk")
void gen_topk(const f32 *V, int B, int d, int p, const int32_t *qs, int m, const f32 *G, const f32 *aBk, int aBkRows, const f32 *Abk, int AbkCols, const f32 *abk, int abkRows, int abkCols, f32 *L, f32 *work, int k, int largest, f32 *a, f32 *M, f32 *c, int32_t *scratch) {
  gen_logits(V, B, d, p, qs, m, G, aBk, aBkRows, Abk, AbkCols, abk, abkRows, abkCols, L, work);
  /* a == 0 (attention not wanted): the four-row path skips it; the general one computes it in place of L */
  if (!a && topk_blocks_ok(d, k)) topk_mass_blocks(L, B * m, d, k, largest, 0, M, c);
  else topk_mass(L, B * m, d, k, largest, a ? a : L, M, c, scratch);
}

/*
 * One block of R rows (R ≤ 4) × NV vectors of columns of a dense layer (see dense_rows; W and Y rows N wide):
 * accumulate over k in order from +0 (f32 multiply, then add), add the bias, apply the activation, store the first
 * `cols` columns.
 */
#define DENSE_BLOCK(R, NV)                                                                                              \
  static void dense_block_##R##_##NV(const f32 *X, int k, const f32 *W, int N, const f32 *b, int act, f32 *Y,          \
                                     int cols) {                                                                       \
    ACCUMULATE_ROWS(acc, R, NV, X, k, W, N);                                                                           \
    const v128_t zero = wasm_f32x4_splat(0.0f);                                                                        \
    for (int i = 0; i < R; i++) {                                                                                      \
      f32 *yr = Y + (long)i * N;                                                                                       \
      for (int t = 0; t < NV; t++) {                                                                                   \
        v128_t v = wasm_f32x4_add(acc[i][t], wasm_v128_load(b + 4 * t));                                              \
        /* relu as x > 0 ? x : 0 (NaN and −0 give +0, as the op-by-op path) */                                        \
        if (act == 1) v = wasm_v128_and(v, wasm_f32x4_gt(v, zero));                                                    \
        store_lanes(yr + 4 * t, v, cols - 4 * t);                                                                      \
      }                                                                                                                \
    }                                                                                                                  \
  }
DENSE_BLOCK(4, 3)
DENSE_BLOCK(4, 2)
DENSE_BLOCK(4, 1)
DENSE_BLOCK(1, 3)
DENSE_BLOCK(1, 2)
DENSE_BLOCK(1, 1)

/*
 * A dense layer at inference: Y [n, N] = act(X [n, k] · W [k, N] + b) with W row-major [k, N] (the transposed weight
 * matrix) and act 0 (none) or 1 (relu). Each output is accumulated over k in order from +0 with f32 multiplies and
 * adds, then the bias is added: the same bits as the op-by-op path (the SIMD gemm for k ≤ 1024, add, relu). Panels of
 * 12 columns (the panel of W stays in L1 while all row blocks pass it). W and b must be readable 12 floats past their
 * ends (the last panel loads whole vectors; those lanes are never stored).
 */
EXPORT("dense_rows")
void dense_rows(const f32 *X, int n, int k, const f32 *W, int N, const f32 *b, int act, f32 *Y) {
  for (int j0 = 0; j0 < N; j0 += 12) {
    const int cols = N - j0 < 12 ? N - j0 : 12;
    const int NV = (cols + 3) / 4;
    const f32 *w = W + j0;
    const f32 *bj = b + j0;
    int r = 0;
    for (; r + 4 <= n; r += 4) {
      const f32 *x = X + (long)r * k;
      f32 *y = Y + (long)r * N + j0;
      if (NV == 3) dense_block_4_3(x, k, w, N, bj, act, y, cols);
      else if (NV == 2) dense_block_4_2(x, k, w, N, bj, act, y, cols);
      else dense_block_4_1(x, k, w, N, bj, act, y, cols);
    }
    for (; r < n; r++) {
      const f32 *x = X + (long)r * k;
      f32 *y = Y + (long)r * N + j0;
      if (NV == 3) dense_block_1_3(x, k, w, N, bj, act, y, cols);
      else if (NV == 2) dense_block_1_2(x, k, w, N, bj, act, y, cols);
      else dense_block_1_1(x, k, w, N, bj, act, y, cols);
    }
  }
}
