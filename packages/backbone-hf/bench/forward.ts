/** Throughput of the hf backbone on the tiny fixtures: tokenisation, text forward, image preprocessing + forward. */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HfBackbone } from '../src/index.js';

const ROOT = resolve(import.meta.dirname, '../../..');

async function time<T>(f: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, (performance.now() - t0) / 1000];
}

export async function run(): Promise<Record<string, unknown>> {
  const texts = readFileSync(join(ROOT, 'fixtures/hf/text-data.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { text: string }).text);
  const [bert, loadText] = await time(() => HfBackbone.load({ use: 'hf', path: 'fixtures/hf/tiny-bert', baseDir: ROOT, maxLength: 24 }));
  const [enc, tokS] = await time(() => bert.encodeTexts(texts));
  const inputs = { x: enc.input_ids, attention_mask: enc.attention_mask, token_type_ids: enc.token_type_ids };
  await bert.forward(inputs);
  const [, fwdS] = await time(() => bert.forward(inputs, { outputs: ['hidden'] }));
  await bert.dispose();

  const [vit, loadImage] = await time(() => HfBackbone.load({ use: 'hf', path: 'fixtures/hf/tiny-vit', baseDir: ROOT }));
  const n = 256;
  const raw = { data: new Float32Array(n * 3 * 32 * 32).map((_, i) => (i * 37) % 256), shape: [n, 3, 32, 32] };
  const [encImg, preS] = await time(() => vit.encode({ inputs: { x: raw }, labels: new Float32Array(n) }));
  await vit.forward(encImg.inputs);
  const [, vitS] = await time(() => vit.forward(encImg.inputs));
  await vit.dispose();
  return {
    text_load_s: +loadText.toFixed(3),
    text_tokenise_per_s: Math.round(texts.length / tokS),
    text_forward_rows_per_s: Math.round(texts.length / fwdS),
    image_load_s: +loadImage.toFixed(3),
    image_preprocess_per_s: Math.round(n / preS),
    image_forward_rows_per_s: Math.round(n / vitS),
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  run().then((r) => console.log(JSON.stringify(r, null, 1)));
}
