/**
 * Matmul benchmark: GFLOP/s of the kernels behind `matmul` on the same operands in one run — the WebAssembly SIMD
 * kernel (default), the cache-blocked JS kernel (fallback), and a naive i-j-k triple loop — plus the matmul op's
 * forward+backward. Run directly with `npx tsx packages/core/bench/matmul.ts` (prints JSON).
 */
import { pathToFileURL } from 'node:url';
import { Rng } from '../src/rng.js';
import { gemmBlocked, gemmNaive } from '../src/autograd/gemm.js';
import { gemmWasm, hasWasmSimd } from '../src/autograd/gemm-wasm.js';
import { matmul } from '../src/autograd/matmul.js';
import { Tensor } from '../src/autograd/tensor.js';

type Kernel = (A: Float32Array, B: Float32Array, C: Float32Array, M: number, K: number, N: number) => void;

const kernels: Record<string, Kernel> = {
  naive: (A, B, C, M, K, N) => gemmNaive(A, 0, B, 0, C, 0, M, K, N),
  blockedJs: (A, B, C, M, K, N) => gemmBlocked(A, 0, B, 0, C, 0, M, K, N),
  wasmSimd: (A, B, C, M, K, N) => void gemmWasm(A, 0, K, 1, B, 0, N, 1, C, 0, M, K, N),
};

function randn(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** Best-of GFLOP/s over repetitions within a time budget (at least one timed run after one warm-up). */
function measure(f: () => void, flops: number, budgetMs: number): number {
  f();
  let best = Infinity;
  const start = performance.now();
  do {
    const t0 = performance.now();
    f();
    best = Math.min(best, performance.now() - t0);
  } while (performance.now() - start < budgetMs);
  return flops / (best / 1000) / 1e9;
}

export async function run(): Promise<Record<string, unknown>> {
  const rng = new Rng(0);
  const sizes: Array<[number, number, number]> = [
    [256, 256, 256],
    [512, 768, 768],
  ];
  const out: Record<string, unknown> = { wasmSimdAvailable: hasWasmSimd, unit: 'GFLOP/s (best of repeated runs)' };
  for (const [M, K, N] of sizes) {
    const A = randn(M * K, rng);
    const B = randn(K * N, rng);
    const C = new Float32Array(M * N);
    const flops = 2 * M * K * N;
    const r: Record<string, number> = {};
    for (const [name, k] of Object.entries(kernels)) {
      if (name === 'wasmSimd' && !hasWasmSimd) continue;
      r[name] = +measure(() => k(A, B, C, M, K, N), flops, name === 'naive' ? 0 : 600).toFixed(3);
    }
    r.blockedJsOverNaive = +(r.blockedJs / r.naive).toFixed(2);
    if (r.wasmSimd) r.wasmSimdOverNaive = +(r.wasmSimd / r.naive).toFixed(2);
    // the autograd op: forward + backward (3 products)
    const a = new Tensor(A, [M, K], true);
    const b = new Tensor(B, [K, N], true);
    const seed = new Float32Array(M * N).fill(1);
    r.matmulOpFwdBwd = +measure(
      () => {
        a.grad = null;
        b.grad = null;
        matmul(a, b).backward(seed);
      },
      3 * flops,
      600,
    ).toFixed(3);
    out[`${M}x${K}x${N}`] = r;
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then((r) => console.log(JSON.stringify(r, null, 2)));
}
