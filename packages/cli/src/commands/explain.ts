import type { CommandModule } from 'yargs';
import { NotAvailableError } from '@sop/core';
import type { CliContext, GlobalArgs } from '../context.js';

export function explainCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'explain',
    describe: 'explain (not available yet)',
    handler: async () => {
      void ctx;
      throw new NotAvailableError('sop explain is not available yet');
    },
  };
}
