import type { CommandModule } from 'yargs';
import { NotAvailableError } from '@sop/core';
import type { CliContext, GlobalArgs } from '../context.js';

export function evaluateCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'evaluate',
    describe: 'evaluate (not available yet)',
    handler: async () => {
      void ctx;
      throw new NotAvailableError('sop evaluate is not available yet');
    },
  };
}
