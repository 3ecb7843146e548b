/**
 * The `backbone: {use: onnx, ...}` config block, validated into {@link OnnxBackboneOptions}. Every bad value is a
 * UserError naming the key.
 */
import { isAbsolute, resolve } from 'node:path';
import { UserError } from '@sop/core';
import { GRAPH_OPTIMIZATION_LEVELS } from './session.js';
import type { GraphOptimizationLevel, SessionConfig } from './session.js';

export interface OnnxBackboneOptions extends SessionConfig {
  /** Path to the .onnx file; relative paths are resolved from `baseDir`. */
  path: string;
  /** Folder relative paths are resolved from (the config file's folder). Default: the working directory. */
  baseDir?: string;
  /** Graph input fed from `inputs.x`. Default: the only input, or the one not named like an auxiliary input. */
  input?: string;
  /** Graph output (or intermediate) used as `output` [B, C]. Default: the first graph output. */
  output?: string;
  /** Pooled hidden state [B, k]: a graph output or any intermediate tensor name. */
  hidden?: string;
  /** Per-feature states [B, d, k]: a graph output or any intermediate tensor name. */
  embeddings?: string;
  /** Initializer holding the classifier weight; becomes `info.classifierWeight` [C, k]. */
  classifierWeight?: string;
  /** Intermediate tensors to add as extra outputs (returned by `forward({outputs: [name]})`). */
  expose?: string[];
  /** Rows per onnxruntime call (default 64). */
  maxBatch?: number;
  /** Where modified models are cached (default: `.sop-cache/` next to the model, or the OS temp dir). */
  cacheDir?: string;
  /** Backbone name shown in reports (default: the file name). */
  name?: string;
  /**
   * The layer GradCAM uses (an intermediate or output tensor name). Default: found by `OnnxBackbone.gradcamLayer()`
   * (the last spatial map of a CNN, the input tokens of a ViT's last attention block).
   */
  gradcamLayer?: string;
  /**
   * Initializers (weights) a trained model may fine-tune through `vjp` with `params` (read by `model:
   * scores-activation`); the backbone itself never changes them.
   */
  finetune?: string[];
}

const KEYS = new Set([
  'use',
  'baseDir',
  'path',
  'input',
  'output',
  'hidden',
  'embeddings',
  'classifierWeight',
  'expose',
  'maxBatch',
  'executionProviders',
  'threads',
  'graphOptimizationLevel',
  'logSeverityLevel',
  'cacheDir',
  'name',
  'gradcamLayer',
  'finetune',
  'spinning',
]);

function bool(raw: Record<string, unknown>, key: string): boolean | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new UserError(`backbone.${key}: expected true or false, found ${JSON.stringify(v)}`, `set backbone.${key}: false`);
  return v;
}

function str(raw: Record<string, unknown>, key: string, required = false): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (required) throw new UserError(`backbone.${key} is required for backbone 'onnx'`, `set backbone.${key}${key === 'path' ? ': path/to/model.onnx' : ''}`);
    return undefined;
  }
  if (typeof v !== 'string' || v.length === 0) throw new UserError(`backbone.${key}: expected a non-empty string, found ${JSON.stringify(v)}`, `set backbone.${key} to a name`);
  return v;
}

function strList(raw: Record<string, unknown>, key: string): string[] | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && x.length > 0)) {
    throw new UserError(`backbone.${key}: expected a list of names, found ${JSON.stringify(v)}`, `write backbone.${key}: [name1, name2]`);
  }
  return list as string[];
}

function posInt(raw: Record<string, unknown>, key: string): number | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new UserError(`backbone.${key}: expected a positive integer, found ${JSON.stringify(v)}`, `set backbone.${key} to e.g. 64`);
  return v;
}

/** Validate a raw config block (from YAML/JSON) into options. Unknown keys are an error (they are usually typos). */
export function parseOnnxBackboneOptions(raw: Record<string, unknown>): OnnxBackboneOptions {
  for (const k of Object.keys(raw)) {
    if (!KEYS.has(k)) {
      throw new UserError(`backbone.${k}: unknown option for backbone 'onnx'`, `known options: ${[...KEYS].filter((x) => x !== 'use' && x !== 'baseDir').join(', ')}`);
    }
  }
  const level = raw.graphOptimizationLevel;
  if (level !== undefined && !GRAPH_OPTIMIZATION_LEVELS.includes(level as GraphOptimizationLevel)) {
    throw new UserError(`backbone.graphOptimizationLevel: expected one of ${GRAPH_OPTIMIZATION_LEVELS.join(', ')}, found ${JSON.stringify(level)}`, 'use all (default) unless debugging');
  }
  const eps = strList(raw, 'executionProviders');
  const log = raw.logSeverityLevel;
  if (log !== undefined && !(typeof log === 'number' && [0, 1, 2, 3, 4].includes(log))) {
    throw new UserError(`backbone.logSeverityLevel: expected 0..4, found ${JSON.stringify(log)}`, 'use 3 (errors only)');
  }
  return {
    path: str(raw, 'path', true)!,
    baseDir: typeof raw.baseDir === 'string' ? raw.baseDir : undefined,
    input: str(raw, 'input'),
    output: str(raw, 'output'),
    hidden: str(raw, 'hidden'),
    embeddings: str(raw, 'embeddings'),
    classifierWeight: str(raw, 'classifierWeight'),
    expose: strList(raw, 'expose'),
    maxBatch: posInt(raw, 'maxBatch'),
    executionProviders: eps,
    threads: posInt(raw, 'threads'),
    graphOptimizationLevel: level as GraphOptimizationLevel | undefined,
    logSeverityLevel: log as SessionConfig['logSeverityLevel'],
    cacheDir: str(raw, 'cacheDir'),
    name: str(raw, 'name'),
    gradcamLayer: str(raw, 'gradcamLayer'),
    finetune: strList(raw, 'finetune'),
    spinning: bool(raw, 'spinning'),
  };
}

export function resolveModelPath(options: Pick<OnnxBackboneOptions, 'path' | 'baseDir'>): string {
  return isAbsolute(options.path) ? options.path : resolve(options.baseDir ?? process.cwd(), options.path);
}
