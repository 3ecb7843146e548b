import type { CommandModule } from 'yargs';
import { NotAvailableError } from '@sop/core';
import type { CliContext, GlobalArgs } from '../context.js';

export function demoCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'demo',
    describe: 'demo (not available yet)',
    handler: async () => {
      void ctx;
      throw new NotAvailableError('sop demo is not available yet');
    },
  };
}
