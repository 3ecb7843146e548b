import type { CommandModule } from 'yargs';
import { listPlugins, SLOTS } from '@sop/core';
import type { CliContext, GlobalArgs } from '../context.js';

export function pluginsCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'plugins',
    describe: 'List registered plugins by slot (built-in and loaded with --plugin)',
    handler: async (args) => {
      const container = await ctx.container(args);
      const list = listPlugins(container);
      if (!args.json) {
        for (const slot of SLOTS) ctx.io.out(`${slot.padEnd(11)} ${list[slot].join(', ') || '(none)'}`);
      }
      ctx.json(args, list);
    },
  };
}
