import { OnnxBackbone, readNpy } from './src/index.js';
const F = '/work/main/fixtures/onnx/';
const X = readNpy(F + 'shapes-test-x.npy'); const M = readNpy(F + 'shapes-test-masks.npy');
console.log(X.shape, M.shape, X.dtype ?? '');
const N = 100;
const x = { data: Float32Array.from((X.data as Float32Array).subarray(0, N * 256)), shape: [N, 1, 16, 16] };
const b = await OnnxBackbone.load({ path: F + 'shapes-vit.onnx', cacheDir: '/tmp/sopcache-t' });
const out = (await b.forward({ x })).output;
const pred = Array.from({ length: N }, (_, i) => { let bi = 0; for (let c = 1; c < 4; c++) if (out.data[i * 4 + c] > out.data[i * 4 + bi]) bi = c; return bi; });
// patch mask fraction
const patchObj = (i: number, p: number) => { const r = Math.floor(p / 4), c = p % 4; let s = 0; for (let y = 0; y < 4; y++) for (let xx = 0; xx < 4; xx++) s += Number((M.data as any)[i * 256 + (r * 4 + y) * 16 + c * 4 + xx]); return s / 16; };
for (const layer of ['/blocks.1/norm1/LayerNormalization_output_0', '/blocks.1/qkv/Add_output_0', '/blocks.0/Add_1_output_0', '/blocks.0/norm1/LayerNormalization_output_0', '/Add_output_0']) {
  for (const mode of ['logit', 'prob']) {
    const cot = new Float32Array(N * 4);
    for (let i = 0; i < N; i++) {
      if (mode === 'logit') cot[i * 4 + pred[i]] = 1;
      else { let mx = -1e9; for (let c = 0; c < 4; c++) mx = Math.max(mx, out.data[i*4+c]); const e = [0,1,2,3].map(c => Math.exp(out.data[i*4+c]-mx)); const s = e.reduce((a,b)=>a+b); const p = e.map(v=>v/s); for (let c = 0; c < 4; c++) cot[i*4+c] = p[pred[i]] * ((c===pred[i]?1:0) - p[c]); }
    }
    const r = await b.vjp({ x }, { cotangents: { output: { data: cot, shape: [N, 4] } }, wrt: [layer] });
    const A = r.outputs[layer]!, G = r.grads[layer]; const [, T, K] = A.shape;
    let cov = 0, zeros = 0;
    for (let i = 0; i < N; i++) {
      const map = new Float64Array(16);
      for (let k = 0; k < K; k++) { let a = 0; for (let t = 1; t < T; t++) a += G.data[(i*T+t)*K+k]; a /= 16; for (let t = 1; t < T; t++) map[t-1] += a * A.data[(i*T+t)*K+k]; }
      for (let t = 0; t < 16; t++) { if (map[t] < 0) map[t] = 0; if (map[t] === 0) zeros++; }
      const top = [...map.keys()].sort((a, bb) => map[bb] - map[a]).slice(0, 4);
      let obj = 0, tot = 0; for (let p = 0; p < 16; p++) { tot += patchObj(i, p); } for (const p of top) obj += patchObj(i, p);
      cov += obj / Math.max(1e-9, tot);
    }
    console.log(layer, mode, 'coverage', (cov / N).toFixed(3), 'zero frac', (zeros / N / 16).toFixed(2));
  }
}
// chance
let ch = 0; for (let i = 0; i < N; i++) { let tot = 0; for (let p = 0; p < 16; p++) tot += patchObj(i, p); ch += 0.25; } console.log('chance ~0.25');
