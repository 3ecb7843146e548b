/** The `backbone: {use: hf, ...}` config block, validated. */
import { isAbsolute, resolve } from 'node:path';
import { UserError } from '@sop/core';
import { TOKEN_REMOVAL_KINDS, type TokenRemovalKind } from './removal.js';
import type { HfDevice } from './ort.js';
import type { PixelRange } from './image-encode.js';

export type HfTask = 'text-classification' | 'image-classification';

/** transformers.js dtype names → ONNX file suffix (onnx/model{suffix}.onnx), as transformers.js names them. */
export const DTYPE_SUFFIX: Readonly<Record<string, string>> = {
  fp32: '',
  fp16: '_fp16',
  int8: '_int8',
  uint8: '_uint8',
  q8: '_quantized',
  q4: '_q4',
  q4f16: '_q4f16',
  bnb4: '_bnb4',
  q2: '_q2',
  q2f16: '_q2f16',
  q1: '_q1',
  q1f16: '_q1f16',
};

export interface HfBackboneOptions {
  /** Local transformers.js model folder (config.json, onnx/, tokenizer or preprocessor files). */
  path: string;
  /** Default: image-classification when the folder has preprocessor_config.json and no tokenizer.json. */
  task?: HfTask;
  /** transformers.js dtype name (fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4, ...). Default fp32 (or the folder's transformers.js_config.dtype). */
  dtype?: string;
  /** 'cpu' (default) or 'cuda' (needs the CUDA build of onnxruntime-node). */
  device?: HfDevice;
  /** ONNX file base name under onnx/ (default 'model'). */
  file?: string;
  /** Name of the logits output (default 'logits', else the graph's first output). */
  output?: string;
  /** ONNX tensor to read as the pooled hidden state ([B, k], or [B, L, k] → position 0). Default: the classifier's input. false: none. */
  hidden?: string | false;
  /** ONNX tensor to read as per-feature states [B, L, k] (image: a leading [CLS] row is dropped). */
  embeddings?: string;
  /** How a removed token is removed (text). Default 'pad+attention' (the reference's baselines and metrics). */
  removal?: TokenRemovalKind;
  /** Keep segment B (token_type_ids = 1) always on when removing tokens. Default true. */
  keepSegmentB?: boolean;
  /** Fixed token length L (text). Default min(tokenizer model_max_length, max_position_embeddings, 512). */
  maxLength?: number;
  /** Rows per ONNX run (default 32). */
  maxBatch?: number;
  /** Image inputs: apply the model's preprocessor in encode (default true). */
  preprocess?: boolean;
  /** Raw pixel scale for images: 255, 1 or 'auto' (max ≤ 1 means 0..1). */
  pixelRange?: PixelRange;
}

const KEYS = new Set(['use', 'baseDir', 'path', 'task', 'dtype', 'device', 'file', 'output', 'hidden', 'embeddings', 'removal', 'keepSegmentB', 'maxLength', 'maxBatch', 'preprocess', 'pixelRange']);

function bad(key: string, found: unknown, want: string): never {
  throw new UserError(`backbone.${key}: expected ${want}, found ${JSON.stringify(found)}`, `set backbone.${key} to ${want}`);
}

/** Validate a raw config block (`baseDir` resolves a relative path). */
export function parseHfOptions(raw: Record<string, unknown>): HfBackboneOptions & { dir: string } {
  for (const k of Object.keys(raw)) {
    if (!KEYS.has(k)) {
      throw new UserError(`backbone: unknown option '${k}' for use: hf`, `use only: ${[...KEYS].filter((x) => x !== 'use' && x !== 'baseDir').join(', ')}`);
    }
  }
  const path = raw.path;
  if (typeof path !== 'string' || path.length === 0) bad('path', path, 'the path of a local transformers.js model folder');
  const baseDir = typeof raw.baseDir === 'string' ? raw.baseDir : process.cwd();
  const dir = isAbsolute(path) ? path : resolve(baseDir, path);
  const o: HfBackboneOptions & { dir: string } = { path, dir };
  if (raw.task !== undefined) {
    if (raw.task !== 'text-classification' && raw.task !== 'image-classification') bad('task', raw.task, 'text-classification or image-classification');
    o.task = raw.task;
  }
  if (raw.dtype !== undefined) {
    if (typeof raw.dtype !== 'string' || !(raw.dtype in DTYPE_SUFFIX)) bad('dtype', raw.dtype, `one of ${Object.keys(DTYPE_SUFFIX).join(', ')}`);
    o.dtype = raw.dtype;
  }
  if (raw.device !== undefined) {
    if (raw.device !== 'cpu' && raw.device !== 'cuda') bad('device', raw.device, 'cpu or cuda');
    o.device = raw.device;
  }
  for (const k of ['file', 'output', 'embeddings'] as const) {
    if (raw[k] !== undefined) {
      if (typeof raw[k] !== 'string' || (raw[k] as string).length === 0) bad(k, raw[k], 'a name');
      o[k] = raw[k] as string;
    }
  }
  if (raw.hidden !== undefined) {
    if (raw.hidden !== false && (typeof raw.hidden !== 'string' || raw.hidden.length === 0)) bad('hidden', raw.hidden, 'an ONNX tensor name or false');
    o.hidden = raw.hidden as string | false;
  }
  if (raw.removal !== undefined) {
    if (!TOKEN_REMOVAL_KINDS.includes(raw.removal as TokenRemovalKind)) bad('removal', raw.removal, TOKEN_REMOVAL_KINDS.join(' | '));
    o.removal = raw.removal as TokenRemovalKind;
  }
  for (const k of ['keepSegmentB', 'preprocess'] as const) {
    if (raw[k] !== undefined) {
      if (typeof raw[k] !== 'boolean') bad(k, raw[k], 'true or false');
      o[k] = raw[k] as boolean;
    }
  }
  for (const k of ['maxLength', 'maxBatch'] as const) {
    if (raw[k] !== undefined) {
      const v = raw[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) bad(k, v, 'a positive integer');
      o[k] = v;
    }
  }
  if (raw.pixelRange !== undefined) {
    if (raw.pixelRange !== 255 && raw.pixelRange !== 1 && raw.pixelRange !== 'auto') bad('pixelRange', raw.pixelRange, '255, 1 or auto');
    o.pixelRange = raw.pixelRange;
  }
  return o;
}
