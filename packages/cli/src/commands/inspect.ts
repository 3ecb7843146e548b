import type { CommandModule } from 'yargs';
import { inspectModel, formatInspection } from '@sop/backbone-onnx';
import type { CliContext, GlobalArgs } from '../context.js';

interface InspectArgs extends GlobalArgs {
  model?: string;
  run?: boolean;
}

export function inspectCommand(ctx: CliContext): CommandModule<GlobalArgs, InspectArgs> {
  return {
    command: 'inspect <model>',
    describe: "List an ONNX model's inputs, outputs, initializers and intermediate tensors (with shapes where known)",
    builder: (y) =>
      y
        .positional('model', { type: 'string', demandOption: true, describe: 'path to a .onnx file' })
        .option('run', { type: 'boolean', default: true, describe: 'run the model once on a dummy batch to learn shapes the graph does not declare' }) as any,
    handler: async (args) => {
      const info = await inspectModel(ctx.resolvePath(args.model!), { run: args.run });
      if (!args.json) ctx.io.out(formatInspection(info));
      ctx.json(args, info);
    },
  };
}
