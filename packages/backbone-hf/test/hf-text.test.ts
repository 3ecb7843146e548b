import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { readFileSync, mkdtempSync, writeFileSync, rmSync, mkdirSync, copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { AutoModelForSequenceClassification, env } from '@huggingface/transformers';
import { UserError, createContainer, resolvePlugin, type BackboneFactory } from '@sop/core';
import { HfBackbone, alignTokens, backboneHfModule, encodeTexts, removeTokens, type HfTokenizerLike } from '../src/index.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const DIR = join(ROOT, 'fixtures/hf/tiny-bert');
const ref = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as {
  maxLength: number;
  texts: string[];
  textPairs: Array<string | null>;
  tokens: string[][];
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids: number[][];
  logits: number[][];
  pooler_output: number[][];
  last_hidden_state_row0: number[][];
  classifier_weight: number[][];
};
const data = readFileSync(join(ROOT, 'fixtures/hf/text-data.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { text: string; label: number; rationale: Array<[number, number]> });

function expectClose(actual: ArrayLike<number>, expected: number[], atol: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThanOrEqual(atol);
}

let bb: HfBackbone;
beforeAll(async () => {
  bb = await HfBackbone.load({ use: 'hf', path: 'fixtures/hf/tiny-bert', baseDir: ROOT, maxLength: ref.maxLength, embeddings: 'last_hidden_state' });
});
afterAll(async () => {
  await bb?.dispose();
});

describe('hf text backbone (tiny BERT fixture)', () => {
  it('loads locally with remote models disabled and reports the model', () => {
    expect(env.allowRemoteModels).toBe(false);
    expect(bb.details.task).toBe('text-classification');
    expect(bb.details.modelType).toBe('bert');
    expect(bb.details.labels).toEqual(['negative', 'positive']);
    expect(bb.details.hiddenName).toBe('pooler_output');
    expect(bb.info.outputDim).toBe(2);
    expect(bb.info.hiddenDim).toBe(32);
    expect(bb.info.embeddingDim).toBe(32);
    expect(bb.info.inputShape).toEqual([ref.maxLength]);
    expect(bb.capabilities).toMatchObject({ hidden: true, embeddings: true });
    expectClose(bb.info.classifierWeight!.data, ref.classifier_weight.flat(), 0);
    expect(bb.info.classifierWeight!.shape).toEqual([2, 32]);
  });

  it('tokenises exactly like the Python-side ids used for the references (pairs included)', () => {
    const enc = bb.encodeTexts(ref.texts, ref.textPairs);
    expect(enc.input_ids.shape).toEqual([ref.texts.length, ref.maxLength]);
    expect(Array.from(enc.input_ids.data, Number)).toEqual(ref.input_ids.flat());
    expect(Array.from(enc.attention_mask.data, Number)).toEqual(ref.attention_mask.flat());
    expect(Array.from(enc.token_type_ids.data, Number)).toEqual(ref.token_type_ids.flat());
    for (let r = 0; r < ref.texts.length; r++) expect(bb.tokenizer!.tokenize(ref.texts[r])).toEqual(ref.tokens[r]);
  });

  it('logits, pooled hidden and token states equal PyTorch (atol 1e-4)', async () => {
    const enc = bb.encodeTexts(ref.texts, ref.textPairs);
    const out = await bb.forward({ x: enc.input_ids, attention_mask: enc.attention_mask, token_type_ids: enc.token_type_ids }, { outputs: ['hidden', 'embeddings'] });
    expect(out.output.shape).toEqual([ref.texts.length, 2]);
    expectClose(out.output.data, ref.logits.flat(), 1e-4);
    expectClose(out.hidden!.data, ref.pooler_output.flat(), 1e-4);
    expect(out.embeddings!.shape).toEqual([ref.texts.length, ref.maxLength, 32]);
    expectClose(out.embeddings!.data.subarray(0, ref.maxLength * 32), ref.last_hidden_state_row0.flat(), 1e-4);
  });

  it('chunks to maxBatch without changing results', async () => {
    const small = await HfBackbone.load({ use: 'hf', path: DIR, baseDir: '/', maxLength: ref.maxLength, maxBatch: 3 });
    const enc = small.encodeTexts(ref.texts, ref.textPairs);
    const out = await small.forward({ x: enc.input_ids, attention_mask: enc.attention_mask, token_type_ids: enc.token_type_ids });
    expectClose(out.output.data, ref.logits.flat(), 1e-4);
    await small.dispose();
  });

  it("agrees with transformers.js's own model call on the same folder", async () => {
    const model = await AutoModelForSequenceClassification.from_pretrained(DIR, { local_files_only: true, device: 'cpu', dtype: 'fp32' });
    const tok = bb.tokenizer as unknown as (t: string[], o: object) => Record<string, unknown>;
    const batch = tok(ref.texts.slice(0, 4), { padding: 'max_length', max_length: ref.maxLength, truncation: true });
    const tjs = (await (model as unknown as (x: unknown) => Promise<{ logits: { data: Float32Array } }>)(batch)).logits.data;
    expectClose(tjs, ref.logits.slice(0, 4).flat(), 1e-4);
    await (model as unknown as { dispose(): Promise<void> }).dispose();
  });

  it('maps character rationales to token feature masks', async () => {
    const split = { inputs: { x: { data: new Float32Array(0), shape: [0] } }, labels: new Float32Array(data.length), texts: data.map((d) => d.text), rationales: data.map((d) => d.rationale) };
    const { inputs, featureMasks } = await bb.encode(split);
    const L = ref.maxLength;
    expect(inputs.x.shape).toEqual([data.length, L]);
    expect(featureMasks!.length).toBe(data.length * L);
    const vocab = Object.entries((JSON.parse(readFileSync(join(DIR, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab);
    const idToTok = new Map(vocab.map(([t, i]) => [i, t]));
    for (let r = 0; r < data.length; r++) {
      const cue = data[r].text.slice(...data[r].rationale[0]).toLowerCase();
      const marked: string[] = [];
      for (let j = 0; j < L; j++) if (featureMasks![r * L + j] === 1) marked.push(idToTok.get(Number(inputs.x.data[r * L + j]))!);
      expect(marked.join('').replace(/##/g, '')).toBe(cue);
    }
    // first example by hand: "the Movies was wonderful ." → [CLS] the movie ##s was wonderful . [SEP]
    expect(data[0].text).toBe('the Movies was wonderful .');
    expect(Array.from(featureMasks!.subarray(0, 8))).toEqual([0, 0, 0, 0, 0, 1, 0, 0]);
  });

  it('aligns tokens to character spans (case, accents, [UNK], sub-words)', () => {
    const text = 'Unhappy actors, ugly sets!';
    const toks = bb.tokenizer!.tokenize(text);
    expect(toks).toEqual(['un', '##happy', 'actors', ',', '[UNK]', '[UNK]', '!']);
    const spans = alignTokens(text, toks);
    expect(spans.map((s) => text.slice(...s!))).toEqual(['Un', 'happy', 'actors', ',', 'ugly', 'sets', '!']);
    const t2 = 'Thé GOOD filmś';
    const s2 = alignTokens(t2, ['the', 'good', '[UNK]']);
    expect(s2.map((s) => t2.slice(...s!))).toEqual(['Thé', 'GOOD', 'filmś']);
  });

  it('truncates longest-first, keeping special tokens and segment spans', () => {
    const tok = bb.tokenizer as HfTokenizerLike;
    const enc = encodeTexts(tok, ['the movie was very good and the ending too', 'bad'], ['what sentiment ?', null], 8);
    expect(enc.truncated).toEqual([0]);
    const row0 = Array.from(enc.input_ids.data.subarray(0, 8), Number);
    // [CLS] A(3) [SEP] B(2) [SEP]: A had 9 tokens, B 3 → longest-first drops from A until 3/2... fits 5
    expect(row0[0]).toBe(2);
    expect(row0[7]).toBe(3);
    expect(row0.filter((i) => i === 3).length).toBe(2);
    expect(Array.from(enc.segments.subarray(0, 8))).toEqual([0, 1, 1, 1, 0, 2, 2, 0]);
    expect(enc.spans[0].slice(1, 4).map((s) => 'the movie was very good and the ending too'.slice(...s!))).toEqual(['the', 'movie', 'was']);
    expect(Array.from(enc.token_type_ids.data.subarray(0, 8), Number)).toEqual([0, 0, 0, 0, 0, 1, 1, 1]);
    expect(Array.from(enc.attention_mask.data.subarray(8, 16), Number)).toEqual([1, 1, 1, 0, 0, 0, 0, 0]);
  });

  it('removal by attention mask vs [PAD] / [MASK] id changes the inputs as specified; specials and segment B stay', async () => {
    const enc = bb.encodeTexts(['the movie was good', 'i love this film'], [null, 'is it good ?']);
    const inputs = { x: enc.input_ids, attention_mask: enc.attention_mask, token_type_ids: enc.token_type_ids };
    const L = ref.maxLength;
    const masks = new Float32Array(2 * L); // remove everything
    const ids = (t: { data: BigInt64Array | Float32Array }, r: number, n = 12): number[] => Array.from(t.data.subarray(r * L, r * L + n), Number);
    const orig0 = ids(inputs.x, 0);
    const base = { padTokenId: 0, maskTokenId: 4, specialIds: [2, 3], keepSegmentB: true };

    const att = removeTokens(inputs, masks, [0, 1], { ...base, removal: 'attention' });
    expect(ids(att.x, 0)).toEqual(orig0);
    expect(ids(att.attention_mask, 0)).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);

    const pad = removeTokens(inputs, masks.subarray(0, L), [0], { ...base, removal: 'pad' });
    expect(ids(pad.x, 0)).toEqual([2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0]);
    expect(ids(pad.attention_mask, 0)).toEqual(ids(inputs.attention_mask, 0));

    const mask = removeTokens(inputs, masks.subarray(0, L), [0], { ...base, removal: 'mask' });
    expect(ids(mask.x, 0)).toEqual([2, 4, 4, 4, 4, 3, 0, 0, 0, 0, 0, 0]);

    const both = removeTokens(inputs, masks.subarray(0, L), [1], { ...base, removal: 'pad+attention' });
    // row 1: [CLS] i love this film [SEP] is it good ? [SEP] — segment B kept
    expect(ids(both.x, 0)).toEqual([2, 0, 0, 0, 0, 3, ...ids(inputs.x, 1).slice(6)]);
    expect(ids(both.attention_mask, 0)).toEqual([1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0]);
    const noB = removeTokens(inputs, masks.subarray(0, L), [1], { ...base, removal: 'pad+attention', keepSegmentB: false });
    expect(ids(noB.attention_mask, 0)).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);

    // keeping the rationale token keeps its id; removing it changes the model's output
    const keepCue = new Float32Array(L);
    keepCue[4] = 1; // 'good'
    const kept = bb.removeFeatures(inputs, keepCue, [0]);
    expect(ids(kept.x, 0).slice(0, 6)).toEqual([2, 0, 0, 0, orig0[4], 3]);
    const dropCue = new Float32Array(L).fill(1);
    dropCue[4] = 0;
    const a = await bb.forward(removeTokens(inputs, dropCue, [0], { ...base, removal: 'attention' }));
    const p = await bb.forward(removeTokens(inputs, dropCue, [0], { ...base, removal: 'pad' }));
    const full = await bb.forward(removeTokens(inputs, new Float32Array(L).fill(1), [0], { ...base, removal: 'pad' }));
    expect(full.output.data[1] - full.output.data[0]).toBeGreaterThan(2); // positive with the cue
    expect(a.output.data[1] - a.output.data[0]).toBeLessThan(full.output.data[1] - full.output.data[0]);
    expect(Math.abs(a.output.data[0] - p.output.data[0])).toBeGreaterThan(1e-4);
    expect(bb.masker().apply(inputs, dropCue, [0], undefined as never).x.data).toEqual(removeTokens(inputs, dropCue, [0], { ...base, removal: 'pad+attention' }).x.data);
  });

  it('missing folder, missing files and unknown dtype are UserErrors naming the path', async () => {
    const missing = join(ROOT, 'fixtures/hf/no-such-model');
    const err = await HfBackbone.load({ use: 'hf', path: 'fixtures/hf/no-such-model', baseDir: ROOT }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain(missing);
    expect((err as UserError).fix).toMatch(/never downloads/);
    expect(env.allowRemoteModels).toBe(false);

    const tmp = mkdtempSync(join(tmpdir(), 'hf-'));
    try {
      writeFileSync(join(tmp, 'config.json'), readFileSync(join(DIR, 'config.json')));
      const e2 = await HfBackbone.load({ use: 'hf', path: tmp, baseDir: '/' }).catch((e: unknown) => e);
      expect(e2).toBeInstanceOf(UserError);
      expect((e2 as UserError).message).toContain(`${tmp} has no tokenizer.json`);
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(DIR, f), join(tmp, f));
      mkdirSync(join(tmp, 'onnx'));
      copyFileSync(join(DIR, 'onnx/model.onnx'), join(tmp, 'onnx/model.onnx'));
      const e3 = await HfBackbone.load({ use: 'hf', path: tmp, baseDir: '/', dtype: 'q8' }).catch((e: unknown) => e);
      expect(e3).toBeInstanceOf(UserError);
      expect((e3 as UserError).message).toContain(join(tmp, 'onnx/model_quantized.onnx'));
      expect((e3 as UserError).fix).toContain('fp32');
      const e4 = await HfBackbone.load({ use: 'hf', path: tmp, baseDir: '/', hidden: 'nope' }).catch((e: unknown) => e);
      expect(e4).toBeInstanceOf(UserError);
      const e5 = await HfBackbone.load({ use: 'hf', path: tmp, baseDir: '/', removal: 'zero' }).catch((e: unknown) => e);
      expect((e5 as UserError).message).toContain('backbone.removal');
      // dtype names map to transformers.js file names; the folder's transformers.js_config.dtype is the default
      copyFileSync(join(DIR, 'onnx/model.onnx'), join(tmp, 'onnx/model_quantized.onnx'));
      const cfg = JSON.parse(readFileSync(join(DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(tmp, 'config.json'), JSON.stringify({ ...cfg, 'transformers.js_config': { dtype: 'q8' } }));
      const q = await HfBackbone.load({ use: 'hf', path: tmp, baseDir: '/', maxLength: ref.maxLength });
      expect(q.details.dtype).toBe('q8');
      expect(q.details.file).toBe(join(tmp, 'onnx/model_quantized.onnx'));
      const enc = q.encodeTexts(ref.texts.slice(0, 2));
      expectClose((await q.forward({ x: enc.input_ids, attention_mask: enc.attention_mask, token_type_ids: enc.token_type_ids })).output.data, ref.logits.slice(0, 2).flat(), 1e-4);
      await q.dispose();
      const f32 = await HfBackbone.load({ use: 'hf', path: tmp, baseDir: '/', dtype: 'fp32', maxLength: 8 });
      expect(f32.details.file).toBe(join(tmp, 'onnx/model.onnx'));
      await f32.dispose();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('never touches the network (fetch stubbed to throw)', async () => {
    const realFetch = globalThis.fetch;
    let calls = 0;
    globalThis.fetch = (async () => {
      calls++;
      throw new Error('network access attempted');
    }) as typeof fetch;
    try {
      const b = await HfBackbone.load({ use: 'hf', path: DIR, baseDir: '/', maxLength: 12 });
      const enc = b.encodeTexts(['i love this movie']);
      const out = await b.forward({ x: enc.input_ids, attention_mask: enc.attention_mask, token_type_ids: enc.token_type_ids });
      expect(out.output.data[1]).toBeGreaterThan(out.output.data[0]);
      await b.dispose();
      const v = await HfBackbone.load({ use: 'hf', path: join(ROOT, 'fixtures/hf/tiny-vit'), baseDir: '/' });
      await v.dispose();
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(calls).toBe(0);
  });

  it('is bound as backbone "hf" in the container', async () => {
    const c = await createContainer([backboneHfModule]);
    const f = resolvePlugin<BackboneFactory>(c, 'backbone', 'hf');
    const b = await f.create({ use: 'hf', path: 'fixtures/hf/tiny-bert', baseDir: ROOT, maxLength: 16 }, { seed: 0 });
    expect(b.info.outputDim).toBe(2);
    expect(b.info.inputShape).toEqual([16]);
    await b.dispose?.();
  });
});
