import type { CommandModule } from 'yargs';
import type { CliContext, GlobalArgs } from '../context.js';
import { predictCommand } from './predict.js';
import { attributeCommand } from './attribute.js';
import { trainCommand } from './train.js';
import { explainCommand } from './explain.js';
import { evaluateCommand } from './evaluate.js';
import { demoCommand } from './demo.js';
import { benchCommand } from './bench.js';
import { inspectCommand } from './inspect.js';

export function pipelineCommands(ctx: CliContext): CommandModule<GlobalArgs, any>[] {
  return [
    trainCommand(ctx),
    predictCommand(ctx),
    explainCommand(ctx),
    attributeCommand(ctx),
    evaluateCommand(ctx),
    demoCommand(ctx),
    benchCommand(ctx),
    inspectCommand(ctx),
  ];
}
