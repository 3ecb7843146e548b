import type { CommandModule } from 'yargs';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UserError, writeFileAtomic } from '@sop/core';
import type { CliContext, GlobalArgs } from '../context.js';

interface BenchArgs extends GlobalArgs {
  only?: string[];
  out?: string;
  force?: boolean;
}

/** Every `packages/<pkg>/bench/<name>.ts` exporting `run()`. */
export function findBenchmarks(): Array<{ id: string; file: string }> {
  const packagesDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../');
  const out: Array<{ id: string; file: string }> = [];
  for (const pkg of readdirSync(packagesDir).sort()) {
    const dir = join(packagesDir, pkg, 'bench');
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) {
      if (f.endsWith('.ts') && !f.startsWith('_')) out.push({ id: `${pkg}/${f.replace(/\.ts$/, '')}`, file: join(dir, f) });
    }
  }
  return out;
}

export function benchCommand(ctx: CliContext): CommandModule<GlobalArgs, BenchArgs> {
  return {
    command: 'bench',
    describe: 'Run the benchmarks (ratios measured side by side in one run); prints JSON',
    builder: (y) =>
      y
        .option('only', { type: 'string', array: true, describe: 'run only benchmarks whose id contains this (e.g. matmul, core/sop)' })
        .option('out', { type: 'string', describe: 'also write the JSON results to this file' })
        .option('force', { type: 'boolean', describe: 'overwrite --out' }) as any,
    handler: async (args) => {
      let benches = findBenchmarks();
      if (args.only?.length) benches = benches.filter((b) => args.only!.some((o) => b.id.includes(String(o))));
      if (!benches.length) throw new UserError(`no benchmark matches ${args.only?.join(', ')}`, `available: ${findBenchmarks().map((b) => b.id).join(', ')}`);
      if (args.out && existsSync(args.out) && !args.force) throw new UserError(`${args.out} exists`, 'pass --force to overwrite it, or choose another --out');
      const results: Record<string, unknown> = {};
      const started = new Date().toISOString();
      for (const [i, b] of benches.entries()) {
        ctx.io.err(`bench ${i + 1}/${benches.length}: ${b.id} (${relative(process.cwd(), b.file)})`);
        let mod: { run?: () => Promise<Record<string, unknown>> };
        try {
          mod = (await import(pathToFileURL(b.file).href)) as typeof mod;
        } catch (e) {
          // a file that fails as it loads is one failed benchmark, not the end of the run
          results[b.id] = { error: `could not load ${relative(process.cwd(), b.file)}: ${(e as Error).message}` };
          continue;
        }
        if (typeof mod.run !== 'function') {
          results[b.id] = { error: 'no exported run()' };
          continue;
        }
        const t0 = performance.now();
        try {
          results[b.id] = await mod.run();
        } catch (e) {
          results[b.id] = { error: (e as Error).message };
        }
        ctx.io.err(`  done in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
      }
      const report = { started, node: process.version, platform: `${process.platform}-${process.arch}`, results };
      if (args.out) writeFileAtomic(resolve(args.out), JSON.stringify(report, null, 2) + '\n');
      ctx.io.out(JSON.stringify(report));
    },
  };
}
