import type { CommandModule } from 'yargs';
import { NotAvailableError } from '@sop/core';
import type { CliContext, GlobalArgs } from '../context.js';

export function benchCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'bench',
    describe: 'bench (not available yet)',
    handler: async () => {
      void ctx;
      throw new NotAvailableError('sop bench is not available yet');
    },
  };
}
