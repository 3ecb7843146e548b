import { existsSync, statSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildPipeline, loadConfig, configFromObject, configToYaml, parseConfigText, UserError, writeFileAtomic, type LoadedConfig, type Pipeline } from '@sop/core';
import type { CliContext, GlobalArgs } from './context.js';

export interface ConfigArgs extends GlobalArgs {
  config?: string;
  set?: string[];
}

/** A run directory holds config.yaml + source.json (baseDir) + run.json, written by `sop train`. */
export function isRunDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory() && existsSync(join(p, 'config.yaml'));
}

/** Load a config file, or the saved config of a run directory (so a model is explained with its own data handling). */
export function loadConfigOrRun(path: string, sets: string[] = []): LoadedConfig & { runDir?: string } {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new UserError(`not found: ${abs}`, 'pass a pipeline config (.yaml/.json) or a run directory written by sop train');
  if (statSync(abs).isDirectory()) {
    if (!isRunDir(abs)) throw new UserError(`${abs} is a folder but not a run directory (no config.yaml)`, 'pass the --out folder of a finished sop train, or a config file');
    const raw = parseConfigText(readFileSync(join(abs, 'config.yaml'), 'utf8'), join(abs, 'config.yaml')) as Record<string, unknown>;
    let baseDir = abs;
    const runJson = join(abs, 'source.json');
    if (existsSync(runJson)) baseDir = (JSON.parse(readFileSync(runJson, 'utf8')) as { baseDir?: string }).baseDir ?? abs;
    return { ...configFromObject(raw, baseDir, sets), runDir: abs, path: join(abs, 'config.yaml') };
  }
  return loadConfig(abs, sets);
}

export async function loadPipelineFor(ctx: CliContext, args: ConfigArgs, path: string): Promise<{ loaded: LoadedConfig & { runDir?: string }; pipeline: Pipeline }> {
  const loaded = loadConfigOrRun(path, (args.set ?? []).map(String));
  const container = await ctx.container(args);
  const pipeline = await buildPipeline(container, loaded, { onStage: (s) => ctx.io.err(`sop: ${s}`) });
  return { loaded, pipeline };
}

/** Save the resolved config and where its relative paths point, so explain/evaluate rebuild the same pipeline. */
export function saveRunSource(runDir: string, pipeline: Pipeline, loaded: LoadedConfig): void {
  writeFileAtomic(join(runDir, 'config.yaml'), configToYaml(pipeline.config));
  writeFileAtomic(join(runDir, 'source.json'), JSON.stringify({ baseDir: loaded.baseDir, ...(loaded.path ? { config: loaded.path } : {}) }, null, 2) + '\n');
}
