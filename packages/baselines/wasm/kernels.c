// WebAssembly SIMD kernels for the baselines' per-explanation arithmetic over a backbone's intermediate tensors
// (FullGrad's bias-gradient maps, GradCAM's channel-weighted maps). Built into src/kernels/kernels-wasm.ts by
// wasm/build.mjs (clang --target=wasm32 -msimd128); the JavaScript in src/methods/ is the reference and fallback.
#include <wasm_simd128.h>

#include "simd-math.h" /* exp4 (packages/core/wasm) */

// FullGrad's ψ summed over channels, added per example b of B: out[b, i] += Σ_k (|g[b,k,i]|·absb[k] − lo) / (hi − lo)
// with lo and hi the min and max of |g[b,k,·]|·absb[k] over all K·hw values, i.e. (S_i − K·lo) / (hi − lo); nothing is
// added when hi − lo is not positive (a constant map: ψ = 0). g [B, K, hw], absb [K] (|bias|), out [B, hw]; f32
// arithmetic. Pixels go 16 at a time (four independent accumulator chains; the block's four vectors fold into lo0 and
// hi0 in a tree, which keeps the live vectors within the x64 registers), then 4, then one by one.
static void channel_sums(const float *gb, const float *absb, int K, int hw, float *sum, float *plo, float *phi) {
  v128_t lo0 = wasm_f32x4_splat(__builtin_inff()), lo1 = lo0, lo2 = lo0, lo3 = lo0;
  v128_t hi0 = wasm_f32x4_splat(0.0f), hi1 = hi0, hi2 = hi0, hi3 = hi0;
  int i = 0;
  for (; i + 16 <= hw; i += 16) {
    v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
    const float *p = gb + i;
    for (int k = 0; k < K; k++, p += hw) {
      v128_t bk = wasm_f32x4_splat(absb[k]);
      v128_t v0 = wasm_f32x4_mul(wasm_f32x4_abs(wasm_v128_load(p)), bk);
      v128_t v1 = wasm_f32x4_mul(wasm_f32x4_abs(wasm_v128_load(p + 4)), bk);
      v128_t v2 = wasm_f32x4_mul(wasm_f32x4_abs(wasm_v128_load(p + 8)), bk);
      v128_t v3 = wasm_f32x4_mul(wasm_f32x4_abs(wasm_v128_load(p + 12)), bk);
      a0 = wasm_f32x4_add(a0, v0);
      a1 = wasm_f32x4_add(a1, v1);
      a2 = wasm_f32x4_add(a2, v2);
      a3 = wasm_f32x4_add(a3, v3);
      lo0 = wasm_f32x4_pmin(lo0, wasm_f32x4_pmin(wasm_f32x4_pmin(v0, v1), wasm_f32x4_pmin(v2, v3)));
      hi0 = wasm_f32x4_pmax(hi0, wasm_f32x4_pmax(wasm_f32x4_pmax(v0, v1), wasm_f32x4_pmax(v2, v3)));
    }
    wasm_v128_store(sum + i, a0);
    wasm_v128_store(sum + i + 4, a1);
    wasm_v128_store(sum + i + 8, a2);
    wasm_v128_store(sum + i + 12, a3);
  }
  for (; i + 4 <= hw; i += 4) {
    v128_t a0 = wasm_f32x4_splat(0.0f);
    const float *p = gb + i;
    for (int k = 0; k < K; k++, p += hw) {
      v128_t v0 = wasm_f32x4_mul(wasm_f32x4_abs(wasm_v128_load(p)), wasm_f32x4_splat(absb[k]));
      a0 = wasm_f32x4_add(a0, v0);
      lo0 = wasm_f32x4_pmin(lo0, v0);
      hi0 = wasm_f32x4_pmax(hi0, v0);
    }
    wasm_v128_store(sum + i, a0);
  }
  v128_t lo = wasm_f32x4_pmin(wasm_f32x4_pmin(lo0, lo1), wasm_f32x4_pmin(lo2, lo3));
  v128_t hi = wasm_f32x4_pmax(wasm_f32x4_pmax(hi0, hi1), wasm_f32x4_pmax(hi2, hi3));
  float l = wasm_f32x4_extract_lane(lo, 0), h = wasm_f32x4_extract_lane(hi, 0);
  float l1 = wasm_f32x4_extract_lane(lo, 1), l2 = wasm_f32x4_extract_lane(lo, 2), l3 = wasm_f32x4_extract_lane(lo, 3);
  float h1 = wasm_f32x4_extract_lane(hi, 1), h2 = wasm_f32x4_extract_lane(hi, 2), h3 = wasm_f32x4_extract_lane(hi, 3);
  if (l1 < l) l = l1;
  if (l2 < l) l = l2;
  if (l3 < l) l = l3;
  if (h1 > h) h = h1;
  if (h2 > h) h = h2;
  if (h3 > h) h = h3;
  for (; i < hw; i++) {
    float s = 0.0f;
    for (int k = 0; k < K; k++) {
      float v = __builtin_fabsf(gb[(long)k * hw + i]) * absb[k];
      s += v;
      if (v < l) l = v;
      if (v > h) h = v;
    }
    sum[i] = s;
  }
  *plo = l;
  *phi = h;
}

// sum [hw] is scratch (at least hw floats).
__attribute__((export_name("bias_abs_maps"))) void bias_abs_maps(const float *g, const float *absb, int B, int K, int hw, float *out, float *sum) {
  for (int b = 0; b < B; b++) {
    float lo, hi;
    channel_sums(g + (long)b * K * hw, absb, K, hw, sum, &lo, &hi);
    float r = hi - lo;
    if (!(r > 0.0f)) continue;
    float inv = 1.0f / r, klo = (float)K * lo;
    float *ob = out + (long)b * hw;
    for (int i = 0; i < hw; i++) ob[i] += (sum[i] - klo) * inv;
  }
}

// GradCAM before the ReLU, per example b: out[b, i] = Σ_k mean(G[b,k,·]) · A[b,k,i]. G, A [B, K, hw], out [B, hw].
__attribute__((export_name("cam_maps"))) void cam_maps(const float *G, const float *A, int B, int K, int hw, float *out) {
  const int hw4 = hw & ~3;
  const float invhw = 1.0f / (float)hw;
  for (int b = 0; b < B; b++) {
    float *ob = out + (long)b * hw;
    for (int i = 0; i < hw; i++) ob[i] = 0.0f;
    for (int k = 0; k < K; k++) {
      const float *gk = G + ((long)b * K + k) * hw;
      const float *ak = A + ((long)b * K + k) * hw;
      v128_t s4 = wasm_f32x4_splat(0.0f);
      int i = 0;
      for (; i < hw4; i += 4) s4 = wasm_f32x4_add(s4, wasm_v128_load(gk + i));
      float s = wasm_f32x4_extract_lane(s4, 0) + wasm_f32x4_extract_lane(s4, 1) + wasm_f32x4_extract_lane(s4, 2) + wasm_f32x4_extract_lane(s4, 3);
      for (; i < hw; i++) s += gk[i];
      float a = s * invhw;
      if (a == 0.0f) continue;
      v128_t va = wasm_f32x4_splat(a);
      for (i = 0; i < hw4; i += 4) wasm_v128_store(ob + i, wasm_f32x4_add(wasm_v128_load(ob + i), wasm_f32x4_mul(va, wasm_v128_load(ak + i))));
      for (; i < hw; i++) ob[i] += a * ak[i];
    }
  }
}

// Softmax probability of each row's target: out[r] = 1 / Σ_j exp(z[r, j] − z[r, t]) with t = targets[r / per]
// (z [R, C] logits; the target's own term is exp(0) = 1). Columns go four at a time; the last C mod 4 through a
// vector padded with −∞ whose padded lanes are masked out.
__attribute__((export_name("target_probs"))) void target_probs(const float *z, const int *targets, int R, int C, int per, float *out) {
  const int C4 = C & ~3;
  for (int r = 0; r < R; r++) {
    const float *zr = z + (long)r * C;
    v128_t zt = wasm_f32x4_splat(zr[targets[r / per]]);
    v128_t acc = wasm_f32x4_splat(0.0f);
    int j = 0;
    for (; j < C4; j += 4) acc = wasm_f32x4_add(acc, exp4(wasm_f32x4_sub(wasm_v128_load(zr + j), zt)));
    if (j < C) {
      float t[4] = {-__builtin_inff(), -__builtin_inff(), -__builtin_inff(), -__builtin_inff()};
      for (int q = 0; j + q < C; q++) t[q] = zr[j + q];
      v128_t e = exp4(wasm_f32x4_sub(wasm_v128_load(t), zt));
      // padded lanes: exp of the clamp, zeroed
      v128_t keep = wasm_f32x4_gt(wasm_v128_load(t), wasm_f32x4_splat(-__builtin_inff()));
      acc = wasm_f32x4_add(acc, wasm_v128_and(e, keep));
    }
    float s = wasm_f32x4_extract_lane(acc, 0) + wasm_f32x4_extract_lane(acc, 1) + wasm_f32x4_extract_lane(acc, 2) + wasm_f32x4_extract_lane(acc, 3);
    out[r] = 1.0f / s;
  }
}

// FullGrad's input part: out[b, ·] = x ⊙ g per example b ([B, n]), or with absminmax ψ(x ⊙ g): |x ⊙ g| min-max
// normalised per example (a constant example becomes 0).
__attribute__((export_name("input_part"))) void input_part(const float *x, const float *g, int B, int n, int absminmax, float *out) {
  for (int b = 0; b < B; b++) {
    const float *xb = x + (long)b * n, *gb = g + (long)b * n;
    float *ob = out + (long)b * n;
    if (!absminmax) {
      for (int i = 0; i < n; i++) ob[i] = xb[i] * gb[i];
      continue;
    }
    float lo = __builtin_inff(), hi = -__builtin_inff();
    for (int i = 0; i < n; i++) {
      float v = __builtin_fabsf(xb[i] * gb[i]);
      ob[i] = v;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    float r = hi - lo;
    if (!(r > 0.0f)) {
      for (int i = 0; i < n; i++) ob[i] = 0.0f;
      continue;
    }
    for (int i = 0; i < n; i++) ob[i] = (ob[i] - lo) / r;
  }
}

// Spread per-example maps [B, h, w] over an image [B, C, H, W]: out += bilinear resize (align_corners = false, as
// torch's interpolate) / C on every channel. Same size: out += maps / C (four pixels at a time). Otherwise separably:
// each source row is interpolated along x into `scratch` (column indices and weights computed once per call), then
// every output row blends its two interpolated source rows (four pixels at a time) — the same float32 expressions as
// interpolating pixel by pixel. scratch: at least 3·W + h·W words.
__attribute__((export_name("maps_to_image"))) void maps_to_image(const float *maps, int B, int h, int w, int C, int H, int W, float *out, int *scratch) {
  const float invC = 1.0f / (float)C;
  const v128_t vc = wasm_f32x4_splat(invC);
  const long HW = (long)H * W, hw = (long)h * w;
  if (h == H && w == W) {
    for (int b = 0; b < B; b++) {
      const float *m = maps + (long)b * hw;
      for (int c = 0; c < C; c++) {
        float *o = out + ((long)b * C + c) * HW;
        long i = 0;
        for (; i + 4 <= HW; i += 4) wasm_v128_store(o + i, wasm_f32x4_add(wasm_v128_load(o + i), wasm_f32x4_mul(wasm_v128_load(m + i), vc)));
        for (; i < HW; i++) o[i] += m[i] * invC;
      }
    }
    return;
  }
  const float sy = (float)h / (float)H, sx = (float)w / (float)W;
  int *x0s = scratch, *x1s = scratch + W;
  float *txs = (float *)(scratch + 2 * W), *rows = (float *)(scratch + 3 * W);
  for (int xx = 0; xx < W; xx++) {
    float fx = w == W ? (float)xx : ((float)xx + 0.5f) * sx - 0.5f;
    if (fx < 0.0f) fx = 0.0f;
    int x0 = (int)fx;
    if (x0 > w - 1) x0 = w - 1;
    x0s[xx] = x0;
    x1s[xx] = x0 + 1 < w ? x0 + 1 : w - 1;
    txs[xx] = fx - (float)x0;
  }
  for (int b = 0; b < B; b++) {
    const float *m = maps + (long)b * hw;
    for (int r = 0; r < h; r++) {
      const float *src = m + (long)r * w;
      float *dst = rows + (long)r * W;
      for (int xx = 0; xx < W; xx++) dst[xx] = src[x0s[xx]] + (src[x1s[xx]] - src[x0s[xx]]) * txs[xx];
    }
    for (int y = 0; y < H; y++) {
      float fy = h == H ? (float)y : ((float)y + 0.5f) * sy - 0.5f;
      if (fy < 0.0f) fy = 0.0f;
      int y0 = (int)fy;
      if (y0 > h - 1) y0 = h - 1;
      int y1 = y0 + 1 < h ? y0 + 1 : h - 1;
      const float ty = fy - (float)y0;
      const v128_t vty = wasm_f32x4_splat(ty);
      const float *a = rows + (long)y0 * W, *e = rows + (long)y1 * W;
      for (int c = 0; c < C; c++) {
        float *o = out + ((long)b * C + c) * HW + (long)y * W;
        int xx = 0;
        for (; xx + 4 <= W; xx += 4) {
          v128_t va = wasm_v128_load(a + xx), ve = wasm_v128_load(e + xx);
          v128_t v = wasm_f32x4_mul(wasm_f32x4_add(va, wasm_f32x4_mul(wasm_f32x4_sub(ve, va), vty)), vc);
          wasm_v128_store(o + xx, wasm_f32x4_add(wasm_v128_load(o + xx), v));
        }
        for (; xx < W; xx++) o[xx] += (a[xx] + (e[xx] - a[xx]) * ty) * invC;
      }
    }
  }
}

// A patches feature space's aggregate (core's PatchesSpace.aggregate, same float32 additions in the same order):
// out[b, feature[p]] = Σ_c Σ_p attr[b, c, p] for attr [B, C, hw], feature [hw] (feature index of every pixel), out [B, d].
__attribute__((export_name("aggregate_patches"))) void aggregate_patches(const float *attr, int B, int C, int hw, const int *feature, int d, float *out) {
  for (long i = 0; i < (long)B * d; i++) out[i] = 0.0f;
  for (int b = 0; b < B; b++) {
    float *o = out + (long)b * d;
    for (int c = 0; c < C; c++) {
      const float *a = attr + ((long)b * C + c) * hw;
      for (int p = 0; p < hw; p++) o[feature[p]] += a[p];
    }
  }
}

// Separable Gaussian blur of N planes [H, W] (AMPE's translation-invariance kernel; GaussianBlur.apply in spatial.ts is
// the reference, with the same float64 sums rounded to float32 after each pass): taps ker [2r + 1] (float64), taps
// falling outside the plane are dropped (zero padding, no renormalisation). tmp and out [N, H, W].
__attribute__((export_name("blur_sep"))) void blur_sep(const float *data, int N, int H, int W, const double *ker, int r, float *tmp, float *out) {
  for (int p = 0; p < N; p++) {
    const long o = (long)p * H * W;
    for (int y = 0; y < H; y++) {
      const long row = o + (long)y * W;
      for (int x = 0; x < W; x++) {
        double acc = 0;
        const int i0 = x - r < 0 ? -x : -r, i1 = x + r >= W ? W - 1 - x : r;
        for (int i = i0; i <= i1; i++) acc += ker[i + r] * data[row + x + i];
        tmp[row + x] = (float)acc;
      }
    }
    for (int y = 0; y < H; y++) {
      const int i0 = y - r < 0 ? -y : -r, i1 = y + r >= H ? H - 1 - y : r;
      for (int x = 0; x < W; x++) {
        double acc = 0;
        for (int i = i0; i <= i1; i++) acc += ker[i + r] * tmp[o + (long)(y + i) * W + x];
        out[o + (long)y * W + x] = (float)acc;
      }
    }
  }
}

// AMPE's noisy rows with BulkRng's draws (src/random.ts is the reference: same xoshiro128** stream, same ziggurat
// fast path, same float64 expressions): st [4] the generator state (read and written back), kn, wn [128] the ziggurat
// tables. noisy_normals: out[r·n + i] = base[⌊r / per⌋·n + i] + scale·z for the flat indices idx = start … end − 1 in
// order (z standard normal); returns end, or the index whose draw fell outside its layer's rectangle, with slow = {j, iz}
// (the state is past that draw; the caller finishes it on its slow path and continues at idx + 1).
static inline unsigned rotl32(unsigned x, int k) { return (x << k) | (x >> (32 - k)); }

// xoshiro128** (the state in locals after inlining): the next 32-bit draw.
typedef struct {
  unsigned s0, s1, s2, s3;
} xoshiro;

static inline unsigned xoshiro_next(xoshiro *g) {
  unsigned r = rotl32(g->s1 * 5u, 7) * 9u;
  unsigned t = g->s1 << 9;
  g->s2 ^= g->s0;
  g->s3 ^= g->s1;
  g->s1 ^= g->s2;
  g->s0 ^= g->s3;
  g->s2 ^= t;
  g->s3 = rotl32(g->s3, 11);
  return r;
}

__attribute__((export_name("noisy_normals"))) int noisy_normals(unsigned *st, const double *kn, const double *wn, float *out, const float *base, int per, int n, double scale, int start, int end, int *slow) {
  xoshiro g = {st[0], st[1], st[2], st[3]};
  int idx = start, ret = end;
  int row = start / n, i = start - row * n;
  const float *brow = base + (long)(row / per) * n;
  for (; idx < end; idx++) {
    int r = (int)xoshiro_next(&g);
    int iz = r & 127, j = r >> 7;
    if ((double)(j < 0 ? -j : j) < kn[iz]) out[idx] = (float)((double)brow[i] + scale * ((double)j * wn[iz]));
    else {
      slow[0] = j;
      slow[1] = iz;
      ret = idx;
      break;
    }
    if (++i == n) {
      i = 0;
      row++;
      brow = base + (long)(row / per) * n;
    }
  }
  st[0] = g.s0;
  st[1] = g.s1;
  st[2] = g.s2;
  st[3] = g.s3;
  return ret;
}

// out[i] *= lo + U_i·step for i < m, U_i the next 32-bit draws as unsigned integers (BulkRng.mulUniform, step = (hi − lo)/2³²).
__attribute__((export_name("mul_uniform"))) void mul_uniform(unsigned *st, float *out, int m, double lo, double step) {
  xoshiro g = {st[0], st[1], st[2], st[3]};
  for (int i = 0; i < m; i++) out[i] = (float)((double)out[i] * (lo + (double)xoshiro_next(&g) * step));
  st[0] = g.s0;
  st[1] = g.s1;
  st[2] = g.s2;
  st[3] = g.s3;
}

// One AMPE step after its gradients (ampe.ts is the reference: the mean over samples, GaussianBlur.apply and step,
// with the same float64 expressions in the same order, so the values are the same). grads [B·S, n] (the S samples of
// example b are rows b·S … b·S + S − 1); mean [B, n] = Σ_s grads / S; smooth = the blur of mean over planes [H, W]
// (ker [2r + 1], tmp and smooth [B·n]) when ker is non-null, else mean; then per example the L1-normalised momentum
// mom [B, n] (float64), the sign step of α clipped to the ε-ball around x and to [lo, hi] (cur [B, n]) and the path
// attribution attr −= (x_{t+1} − x_t) ⊙ mean.
__attribute__((export_name("ampe_step"))) void ampe_step(const float *grads, int B, int S, int n, float *mean, const double *ker, int r, int H, int W, float *tmp, float *smooth, float *cur, double *mom, float *attr, const float *x, double mu, double alpha, double eps, double lo, double hi) {
  const double inv = 1.0 / (double)S;
  for (int b = 0; b < B; b++) {
    for (int i = 0; i < n; i++) {
      double acc = 0;
      for (int s = 0; s < S; s++) acc += grads[((long)b * S + s) * n + i];
      mean[(long)b * n + i] = (float)(acc * inv);
    }
  }
  const float *sm = mean;
  if (ker) {
    blur_sep(mean, (int)(((long)B * n) / ((long)H * W)), H, W, ker, r, tmp, smooth);
    sm = smooth;
  }
  for (int b = 0; b < B; b++) {
    const long o = (long)b * n;
    double l1 = 0;
    for (long i = o; i < o + n; i++) l1 += __builtin_fabs((double)sm[i]);
    l1 = l1 > 0 ? l1 / (double)n : 1;
    for (long k = o; k < o + n; k++) {
      const double mk = mu * mom[k] + (double)sm[k] / l1;
      mom[k] = mk;
      const double old = cur[k];
      double nv = old - (mk > 0 ? alpha : mk < 0 ? -alpha : 0);
      const double xk = x[k];
      if (nv > xk + eps) nv = xk + eps;
      if (nv < xk - eps) nv = xk - eps;
      if (nv > hi) nv = hi;
      if (nv < lo) nv = lo;
      attr[k] = (float)((double)attr[k] - (nv - old) * (double)mean[k]);
      cur[k] = (float)nv;
    }
  }
}
