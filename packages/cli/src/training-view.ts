import type { TrainingEvent } from '@sop/core';
import type { CliContext } from './context.js';
import type { Progress } from './io.js';

/** Renders training events: a progress bar per stage on a TTY, plain lines otherwise. */
export function trainingListener(ctx: CliContext, quietRanking = false): (e: TrainingEvent) => void {
  let bar: Progress | undefined;
  let barStage = '';
  return (e) => {
    switch (e.type) {
      case 'stage':
        ctx.io.err(`stage ${e.stage}${e.message ? `: ${e.message}` : ''}`);
        break;
      case 'step':
        if (!bar || barStage !== e.stage) {
          bar = ctx.progress(`train ${e.stage}`, e.totalSteps);
          barStage = e.stage;
        }
        bar.update(e.step, `loss ${e.loss.toFixed(4)}`, e.totalSteps);
        break;
      case 'epoch':
        if (!ctx.io.isTTY) {
          const m = e.metrics ? ' ' + Object.entries(e.metrics).map(([k, v]) => `${k} ${fmt(v)}`).join(' ') : '';
          ctx.io.err(`${e.stage} epoch ${e.epoch}/${e.totalEpochs} loss ${e.loss.toFixed(4)}${m}`);
        }
        break;
      case 'validation':
        if (!ctx.io.isTTY) ctx.io.err(`${e.stage} validation @${e.step}: ${Object.entries(e.metrics).map(([k, v]) => `${k} ${fmt(v)}`).join(' ')}${e.best ? ' (best)' : ''}`);
        break;
      case 'ranking':
        if (!quietRanking && !ctx.io.isTTY) ctx.io.err(`${e.stage} epoch ${e.epoch} ranking: ${e.ranking.slice(0, 8).map((r) => `${r.feature}(${r.score.toFixed(3)})`).join(' ')}`);
        break;
      case 'checkpoint':
        break;
      case 'done':
        ctx.io.err(`done ${e.stage}: ${Object.entries(e.metrics).map(([k, v]) => `${k} ${fmt(v)}`).join(' ')}`);
        break;
    }
  };
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
}
