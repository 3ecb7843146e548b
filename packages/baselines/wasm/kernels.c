// WebAssembly SIMD kernels for the baselines' per-explanation arithmetic over a backbone's intermediate tensors
// (FullGrad's bias-gradient maps, GradCAM's channel-weighted maps). Built into src/kernels/kernels-wasm.ts by
// wasm/build.mjs (clang --target=wasm32 -msimd128); the JavaScript in src/methods/ is the reference and fallback.
#include <wasm_simd128.h>

#include "simd-math.h" /* exp4 (packages/core/wasm) */

// FullGrad's ψ summed over channels, added per example b of B: out[b, i] += Σ_k (|g[b,k,i]|·absb[k] − lo) / (hi − lo)
// with lo and hi the min and max of |g[b,k,·]|·absb[k] over all K·hw values, i.e. (S_i − K·lo) / (hi − lo); nothing is
// added when hi − lo is not positive (a constant map: ψ = 0). g [B, K, hw], absb [K] (|bias|), out [B, hw]; f32
// arithmetic. Pixels go 16 at a time (four independent accumulator chains), then 4, then one by one.
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
      lo0 = wasm_f32x4_pmin(lo0, v0);
      lo1 = wasm_f32x4_pmin(lo1, v1);
      lo2 = wasm_f32x4_pmin(lo2, v2);
      lo3 = wasm_f32x4_pmin(lo3, v3);
      hi0 = wasm_f32x4_pmax(hi0, v0);
      hi1 = wasm_f32x4_pmax(hi1, v1);
      hi2 = wasm_f32x4_pmax(hi2, v2);
      hi3 = wasm_f32x4_pmax(hi3, v3);
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
// torch's interpolate) / C on every channel.
__attribute__((export_name("maps_to_image"))) void maps_to_image(const float *maps, int B, int h, int w, int C, int H, int W, float *out) {
  const float sy = (float)h / (float)H, sx = (float)w / (float)W, invC = 1.0f / (float)C;
  const long HW = (long)H * W;
  for (int b = 0; b < B; b++) {
    const float *m = maps + (long)b * h * w;
    for (int y = 0; y < H; y++) {
      float fy = h == H ? (float)y : ((float)y + 0.5f) * sy - 0.5f;
      if (fy < 0.0f) fy = 0.0f;
      int y0 = (int)fy;
      if (y0 > h - 1) y0 = h - 1;
      int y1 = y0 + 1 < h ? y0 + 1 : h - 1;
      float ty = fy - (float)y0;
      for (int xx = 0; xx < W; xx++) {
        float fx = w == W ? (float)xx : ((float)xx + 0.5f) * sx - 0.5f;
        if (fx < 0.0f) fx = 0.0f;
        int x0 = (int)fx;
        if (x0 > w - 1) x0 = w - 1;
        int x1 = x0 + 1 < w ? x0 + 1 : w - 1;
        float tx = fx - (float)x0;
        float a = m[y0 * w + x0] + (m[y0 * w + x1] - m[y0 * w + x0]) * tx;
        float e = m[y1 * w + x0] + (m[y1 * w + x1] - m[y1 * w + x0]) * tx;
        float v = (a + (e - a) * ty) * invC;
        for (int c = 0; c < C; c++) out[((long)b * C + c) * HW + (long)y * W + xx] += v;
      }
    }
  }
}
