import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { DataLoaderOptions } from '../dataset.js';
import { UserError } from '../errors.js';

/** Small typed readers for a loader's options block; every error names `data.<key>`. */

export function optString(o: Record<string, unknown>, key: string, def?: string, where = 'data'): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'string' || v.length === 0) throw new UserError(`${where}.${key}: expected a non-empty string, found ${JSON.stringify(v)}`, `set ${where}.${key} to a string`);
  return v;
}

export function reqString(o: Record<string, unknown>, key: string, where = 'data'): string {
  const v = optString(o, key, undefined, where);
  if (v === undefined) throw new UserError(`${where}.${key} is required`, `set ${where}.${key}`);
  return v;
}

export function optNumber(o: Record<string, unknown>, key: string, def?: number, where = 'data'): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new UserError(`${where}.${key}: expected a number, found ${JSON.stringify(v)}`, `set ${where}.${key} to a number`);
  return v;
}

export function optInt(o: Record<string, unknown>, key: string, def?: number, where = 'data', min = 0): number | undefined {
  const v = optNumber(o, key, def, where);
  if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new UserError(`${where}.${key}: expected an integer ≥ ${min}, found ${v}`, `set ${where}.${key} to an integer ≥ ${min}`);
  return v;
}

export function optBool(o: Record<string, unknown>, key: string, def: boolean, where = 'data'): boolean {
  const v = o[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'boolean') throw new UserError(`${where}.${key}: expected true or false, found ${JSON.stringify(v)}`, `set ${where}.${key} to true or false`);
  return v;
}

/** Test fraction from `split` (default 0.2). */
export function splitFraction(o: Record<string, unknown>, def = 0.2, where = 'data'): number {
  const v = optNumber(o, 'split', def, where)!;
  if (!(v >= 0 && v < 1)) throw new UserError(`${where}.split: the test fraction must be in [0, 1), found ${v}`, `set ${where}.split to e.g. 0.2, or give a separate test file with ${where}.test`);
  return v;
}

/** `[h, w]` pair option. */
export function optPair(o: Record<string, unknown>, key: string, where = 'data'): [number, number] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return [v, v];
  if (!Array.isArray(v) || v.length !== 2 || !v.every((k) => Number.isInteger(k) && k > 0)) {
    throw new UserError(`${where}.${key}: expected [height, width] of positive integers, found ${JSON.stringify(v)}`, `set ${where}.${key} to e.g. [32, 32]`);
  }
  return [v[0], v[1]];
}

/** Resolve a user path against the config's folder. */
export function resolvePath(options: Pick<DataLoaderOptions, 'baseDir'>, p: string): string {
  return isAbsolute(p) ? p : resolve(options.baseDir ?? process.cwd(), p);
}

/** Throw a UserError if `path` does not exist (or is not a file / folder as required). */
export function requirePath(path: string, what: string, kind: 'file' | 'dir' = 'file'): void {
  if (!existsSync(path)) {
    throw new UserError(`${what} not found: ${path}`, "check the path (relative paths are resolved from the config file's folder)");
  }
  const st = statSync(path);
  if (kind === 'file' && !st.isFile()) throw new UserError(`${what} is not a file: ${path}`, 'point it at a file');
  if (kind === 'dir' && !st.isDirectory()) throw new UserError(`${what} is not a folder: ${path}`, 'point it at a folder');
}

/** Read a whole file; missing and empty files are UserErrors naming the file. */
export function readNonEmpty(path: string, what: string): Buffer {
  requirePath(path, what);
  const buf = readFileSync(path);
  if (buf.length === 0) throw new UserError(`${what} is empty: ${path}`, 'check that the file was written completely');
  return buf;
}
