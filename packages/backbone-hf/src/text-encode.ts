/**
 * Text → fixed-length model inputs with the model's own tokenizer, and character rationales → token masks.
 * transformers.js tokenizers return no offsets, so token character spans are recovered here by aligning each
 * token's surface form with the (lower-cased, accent-stripped) text.
 */
import { UserError, type IntTensor } from '@sop/core';

/** The part of a transformers.js PreTrainedTokenizer used here. */
export interface HfTokenizerLike {
  (text: string, options: Record<string, unknown>): { input_ids: number[]; attention_mask: number[]; token_type_ids?: number[] };
  tokenize(text: string, options?: Record<string, unknown>): string[];
  convert_tokens_to_ids(tokens: string[]): number[];
  readonly pad_token_id?: number;
  readonly mask_token_id?: number;
  readonly unk_token?: string;
  readonly all_special_ids: number[];
  readonly model_max_length: number;
}

export type Span = [number, number];

export interface EncodedTexts {
  input_ids: IntTensor;
  attention_mask: IntTensor;
  token_type_ids: IntTensor;
  /** Per row, per position: the character span in the row's text (segment A) or null (special, padding, segment B). */
  spans: Array<Array<Span | null>>;
  /** Per row, per position: 0 = special or padding, 1 = segment A (text), 2 = segment B (text pair). */
  segments: Uint8Array;
  /** Rows whose token sequence was truncated to fit maxLength. */
  truncated: number[];
}

function stripMarks(s: string): string {
  return s.normalize('NFD').replace(/\p{Mn}/gu, '').toLowerCase();
}

/**
 * Character spans of `tokens` (the tokenizer's tokens for `text`, no special tokens) in `text`. Handles WordPiece
 * ("##"), byte-level BPE ("Ġ") and SentencePiece ("▁") markers, case folding and accents; unknown tokens get the
 * unmatched text between their neighbours.
 */
export function alignTokens(text: string, tokens: string[], unkToken = '[UNK]'): Array<Span | null> {
  let norm = '';
  const map: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const n = stripMarks(text[i]);
    for (const ch of n) {
      norm += ch;
      map.push(i);
    }
  }
  const out: Array<Span | null> = new Array(tokens.length).fill(null);
  let cursor = 0;
  let pending: number[] = [];
  const flush = (until: number): void => {
    if (pending.length === 0) return;
    const gap = norm.slice(cursor, until);
    const chunks: Span[] = [];
    const re = /\S+/gu;
    for (let m = re.exec(gap); m; m = re.exec(gap)) chunks.push([cursor + m.index, cursor + m.index + m[0].length]);
    if (chunks.length > 0) {
      const whole: Span = [chunks[0][0], chunks[chunks.length - 1][1]];
      pending.forEach((t, k) => {
        const c = chunks.length === pending.length ? chunks[k] : whole;
        out[t] = [map[c[0]], map[c[1] - 1] + 1];
      });
    }
    pending = [];
  };
  for (let t = 0; t < tokens.length; t++) {
    const tok = tokens[t];
    const clean = stripMarks(tok.replace(/^##/, '').replace(/^[Ġ▁]/, '').replace(/Ċ/g, '\n'));
    if (tok === unkToken || clean.trim().length === 0) {
      pending.push(t);
      continue;
    }
    const p = norm.indexOf(clean, cursor);
    if (p < 0) {
      pending.push(t);
      continue;
    }
    flush(p);
    out[t] = [map[p], map[p + clean.length - 1] + 1];
    cursor = p + clean.length;
  }
  flush(norm.length);
  return out;
}

function findSub(hay: number[], needle: number[], from: number): number {
  if (needle.length === 0) return -1;
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Tokenise `texts` (and `pairs`) into [N, L] int64 tensors, padded (right) to `maxLength`. Too-long rows are truncated
 * longest-first (tokens dropped from the end of the longer segment; special tokens kept).
 */
export function encodeTexts(tokenizer: HfTokenizerLike, texts: string[], pairs: Array<string | null | undefined> | undefined, maxLength: number): EncodedTexts {
  const n = texts.length;
  const L = maxLength;
  if (pairs && pairs.length !== n) {
    throw new UserError(`textPairs has ${pairs.length} entries but texts has ${n}`, 'give one text pair (or null) per text');
  }
  const ids = new BigInt64Array(n * L);
  const am = new BigInt64Array(n * L);
  const tt = new BigInt64Array(n * L);
  const segments = new Uint8Array(n * L);
  const spans: Array<Array<Span | null>> = [];
  const truncated: number[] = [];
  const special = new Set(tokenizer.all_special_ids);
  const pad = BigInt(tokenizer.pad_token_id ?? 0);
  for (let r = 0; r < n; r++) {
    const text = texts[r];
    if (typeof text !== 'string') throw new UserError(`texts[${r}] is not a string`, 'give every example a text');
    const pair = pairs?.[r] ?? null;
    const enc = tokenizer(text, { text_pair: pair, add_special_tokens: true, return_tensor: false, return_token_type_ids: true });
    const full = enc.input_ids.map(Number);
    const types = (enc.token_type_ids ?? full.map(() => 0)).map(Number);
    const aTokens = tokenizer.tokenize(text);
    const aSpans = alignTokens(text, aTokens, tokenizer.unk_token);
    const aIds = tokenizer.convert_tokens_to_ids(aTokens).map(Number);
    let a0 = findSub(full, aIds, 0);
    let nA = aIds.length;
    let b0 = -1;
    let nB = 0;
    if (pair !== null) {
      const bIds = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(pair)).map(Number);
      b0 = findSub(full, bIds, a0 < 0 ? 0 : a0 + nA);
      nB = bIds.length;
    }
    if (a0 < 0 || (pair !== null && b0 < 0)) {
      // context-dependent tokenization: fall back to runs of non-special tokens
      const runs: Span[] = [];
      for (let j = 0; j < full.length; j++) {
        if (special.has(full[j])) continue;
        if (runs.length && runs[runs.length - 1][1] === j) runs[runs.length - 1][1] = j + 1;
        else runs.push([j, j + 1]);
      }
      a0 = runs[0]?.[0] ?? 0;
      nA = runs[0] ? runs[0][1] - runs[0][0] : 0;
      if (pair !== null) {
        b0 = runs[1]?.[0] ?? full.length;
        nB = runs[1] ? runs[1][1] - runs[1][0] : 0;
      }
    }
    const rowSpans: Array<Span | null> = full.map(() => null);
    for (let j = 0; j < nA; j++) rowSpans[a0 + j] = nA === aSpans.length ? aSpans[j] : null;
    const seg = full.map(() => 0);
    for (let j = 0; j < nA; j++) seg[a0 + j] = 1;
    for (let j = 0; j < nB; j++) seg[b0 + j] = 2;

    let keep = full.map(() => true);
    if (full.length > L) {
      truncated.push(r);
      const nSpecial = full.length - nA - nB;
      const budget = L - nSpecial;
      if (budget < 0) {
        throw new UserError(`backbone.maxLength ${L} is shorter than the tokenizer's ${nSpecial} special tokens`, 'raise backbone.maxLength');
      }
      let kA = nA;
      let kB = nB;
      while (kA + kB > budget) {
        if (kA > kB) kA--;
        else kB--;
      }
      keep = full.map((_, j) => {
        if (seg[j] === 1) return j - a0 < kA;
        if (seg[j] === 2) return j - b0 < kB;
        return true;
      });
    }
    const rowOut: Array<Span | null> = new Array(L).fill(null);
    let o = 0;
    for (let j = 0; j < full.length; j++) {
      if (!keep[j]) continue;
      ids[r * L + o] = BigInt(full[j]);
      am[r * L + o] = 1n;
      tt[r * L + o] = BigInt(types[j]);
      segments[r * L + o] = seg[j];
      rowOut[o] = rowSpans[j];
      o++;
    }
    for (; o < L; o++) ids[r * L + o] = pad;
    spans.push(rowOut);
  }
  return {
    input_ids: { data: ids, shape: [n, L] },
    attention_mask: { data: am, shape: [n, L] },
    token_type_ids: { data: tt, shape: [n, L] },
    spans,
    segments,
    truncated,
  };
}

/** Token feature masks [N, L]: 1 where a token's character span overlaps one of the row's rationale spans. */
export function rationaleMasks(spans: Array<Array<Span | null>>, rationales: Array<Array<[number, number]>>, L: number): Float32Array {
  if (rationales.length !== spans.length) {
    throw new UserError(`rationales has ${rationales.length} rows but there are ${spans.length} texts`, 'give one list of [start, end) character spans per text');
  }
  const out = new Float32Array(spans.length * L);
  for (let r = 0; r < spans.length; r++) {
    const rs = rationales[r] ?? [];
    for (let j = 0; j < L; j++) {
      const s = spans[r][j];
      if (!s) continue;
      for (const [a, b] of rs) {
        if (s[0] < b && s[1] > a) {
          out[r * L + j] = 1;
          break;
        }
      }
    }
  }
  return out;
}
