import { readFileSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { UserError } from '../errors.js';
import type { SopConfig } from './types.js';
import { validateConfig } from './validate.js';

const PLUGIN_KEYS = ['data', 'features', 'backbone', 'model'];

export interface LoadedConfig {
  config: SopConfig;
  /** Folder that relative paths resolve against (the config file's folder). */
  baseDir: string;
  path?: string;
}

/** Parse JSON or YAML text (by extension, falling back to YAML, which also reads JSON). */
export function parseConfigText(text: string, source = 'config'): unknown {
  try {
    return parseYaml(text);
  } catch (e) {
    throw new UserError(`${source}: not valid YAML/JSON: ${(e as Error).message.split('\n')[0]}`, 'fix the syntax at the position shown');
  }
}

/** Parse one `--set a.b=v` override value as a YAML scalar/flow value (numbers, booleans, [lists], {maps}). */
export function parseSetValue(text: string): unknown {
  try {
    return parseYaml(text);
  } catch {
    return text;
  }
}

/** Apply `a.b.c=value` overrides to a raw (unvalidated) config object, creating intermediate maps. */
export function applyOverrides(raw: Record<string, unknown>, sets: string[]): Record<string, unknown> {
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new UserError(`--set ${s}: expected KEY.PATH=VALUE`, 'e.g. --set train.epochs=5');
    const keys = s.slice(0, eq).split('.');
    const value = parseSetValue(s.slice(eq + 1));
    let node: Record<string, unknown> = raw;
    for (let i = 0; i < keys.length - 1; i++) {
      const k = keys[i];
      if (typeof node[k] === 'string' && (i === 0 ? PLUGIN_KEYS.includes(k) : k === 'masker')) node[k] = { use: node[k] };
      if (node[k] === undefined || node[k] === null) node[k] = {};
      if (typeof node[k] !== 'object' || Array.isArray(node[k])) {
        throw new UserError(`--set ${s}: ${keys.slice(0, i + 1).join('.')} is not a mapping`, 'override a leaf key, or replace the whole value');
      }
      node = node[k] as Record<string, unknown>;
    }
    node[keys[keys.length - 1]] = value;
  }
  return raw;
}

/** Read, override and validate a config file. */
export function loadConfig(path: string, sets: string[] = []): LoadedConfig {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new UserError(`config file not found: ${abs}`, 'pass the path of a .yaml/.yml/.json pipeline config (see examples/)');
  const text = readFileSync(abs, 'utf8');
  if (text.trim().length === 0) throw new UserError(`config file is empty: ${abs}`, 'see examples/ for a complete config');
  const raw = parseConfigText(text, abs);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new UserError(`${abs}: expected a mapping of keys at the top level`, 'see examples/ for a complete config');
  }
  applyOverrides(raw as Record<string, unknown>, sets);
  return { config: validateConfig(raw, `(${abs})`), baseDir: dirname(abs), path: abs };
}

/** A config from an in-memory object (demo, tests). */
export function configFromObject(obj: Record<string, unknown>, baseDir: string, sets: string[] = []): LoadedConfig {
  const raw = structuredClone(obj);
  applyOverrides(raw, sets);
  return { config: validateConfig(raw), baseDir };
}

/** Serialise a resolved config (saved with every output). */
export function configToYaml(config: SopConfig): string {
  return stringifyYaml(config);
}

