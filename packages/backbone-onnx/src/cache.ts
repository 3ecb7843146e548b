/**
 * Where modified models (extra graph outputs) are written: `<model folder>/.sop-cache/<name>.<hash>.onnx`, or a
 * folder under the OS temp dir when the model's folder is not writable. The user's file is never modified. The hash
 * covers the original bytes and the modification, so a changed model or a different `expose` list gets a new file
 * and an unchanged one is reused.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '@sop/core';
import { encodeModelProto, hasExternalData, onnx } from './proto.js';
import type { IModelProto } from './proto.js';

export function hashBytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function cacheKey(originalHash: string, what: string): string {
  return createHash('sha256').update(originalHash).update('\0').update(what).digest('hex').slice(0, 16);
}

function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Write `model` (a modification of the model at `modelPath`) to the cache and return its path; reuse an existing
 * file with the same key. Models with external data are written next to the original (so relative data paths
 * still resolve), as a hidden file.
 */
export function writeCachedModel(modelPath: string, model: IModelProto, key: string, cacheDir?: string): string {
  const stem = basename(modelPath).replace(/\.onnx$/i, '');
  const external = hasExternalData(model);
  const candidates: Array<{ dir: string; file: string }> = [];
  if (cacheDir) candidates.push({ dir: cacheDir, file: `${stem}.${key}.onnx` });
  else if (external) candidates.push({ dir: dirname(modelPath), file: `.${stem}.sop-${key}.onnx` });
  else candidates.push({ dir: join(dirname(modelPath), '.sop-cache'), file: `${stem}.${key}.onnx` });
  candidates.push({ dir: join(tmpdir(), 'sop-onnx-cache'), file: `${stem}.${key}.onnx` });
  let lastError: unknown;
  for (const [i, c] of candidates.entries()) {
    const path = join(c.dir, c.file);
    if (existsSync(path) && statSync(path).size > 0) return path;
    if (!writable(c.dir)) continue;
    try {
      let m = model;
      if (external && i > 0) m = absolutiseExternalData(model, dirname(modelPath));
      writeFileAtomic(path, encodeModelProto(m));
      return path;
    } catch (e) {
      lastError = e;
    }
  }
  throw new Error(`could not write a modified copy of ${modelPath} to ${candidates.map((c) => c.dir).join(' or ')}: ${String(lastError)}`);
}

function absolutiseExternalData(model: IModelProto, baseDir: string): IModelProto {
  const copy = onnx.ModelProto.decode(encodeModelProto(model));
  for (const t of copy.graph?.initializer ?? []) {
    if (t.dataLocation !== 1) continue;
    for (const e of t.externalData ?? []) if (e.key === 'location' && e.value) e.value = resolve(baseDir, e.value);
  }
  return copy;
}
