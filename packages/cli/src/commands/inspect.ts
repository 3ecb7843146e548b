import type { CommandModule } from 'yargs';
import { NotAvailableError } from '@sop/core';
import type { CliContext, GlobalArgs } from '../context.js';

interface InspectArgs extends GlobalArgs {
  model?: string;
}

export function inspectCommand(ctx: CliContext): CommandModule<GlobalArgs, InspectArgs> {
  return {
    command: 'inspect <model>',
    describe: 'List an ONNX model\'s inputs, outputs, initializers and intermediate tensors',
    builder: (y) => y.positional('model', { type: 'string', demandOption: true, describe: 'path to a .onnx file' }) as any,
    handler: async (_args) => {
      void ctx;
      throw new NotAvailableError('sop inspect is not available yet');
    },
  };
}
