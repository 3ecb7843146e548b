/** Learning-rate schedules as functions step → multiplier of the base learning rate. */
import { UserError } from '../errors.js';

export type Schedule = (step: number) => number;

/**
 * SOP's schedule: t/warmup for t < warmup, else √(warmup / t). With `phaseLength`, t restarts every phase (one phase
 * per generator head): t = step mod phaseLength. With warmup ≤ 0 the formula degenerates (√(0/t) = 0), so the
 * multiplier is constant 1 instead.
 */
export function warmupInverseSqrt(warmup: number, phaseLength?: number): Schedule {
  return (step: number) => {
    const t = phaseLength && phaseLength > 0 ? step % phaseLength : step;
    if (warmup <= 0) return 1;
    if (t < warmup) return t / warmup;
    return Math.sqrt(warmup / t);
  };
}

/**
 * Cosine decay to 0 after a linear warm-up (HF `get_cosine_schedule_with_warmup`, half a cycle); stays at 0 after
 * `totalSteps` (HF's formula would rise again).
 */
export function cosineSchedule(totalSteps: number, warmup = 0): Schedule {
  return (step: number) => {
    if (step < warmup) return step / Math.max(1, warmup);
    const progress = Math.min(1, (step - warmup) / Math.max(1, totalSteps - warmup));
    return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
  };
}

export function constantSchedule(): Schedule {
  return () => 1;
}

export type ScheduleName = 'warmup-inverse-sqrt' | 'cosine' | 'constant';

export interface ScheduleOptions {
  warmup?: number;
  phaseLength?: number;
  totalSteps?: number;
}

export function makeSchedule(name: ScheduleName, opts: ScheduleOptions = {}): Schedule {
  switch (name) {
    case 'warmup-inverse-sqrt':
      return warmupInverseSqrt(opts.warmup ?? 0, opts.phaseLength);
    case 'cosine':
      if (opts.totalSteps === undefined) throw new UserError('the cosine schedule needs totalSteps', 'set totalSteps in the schedule options');
      return cosineSchedule(opts.totalSteps, opts.warmup ?? 0);
    case 'constant':
      return constantSchedule();
    default:
      throw new UserError(`unknown learning-rate schedule "${String(name)}"`, 'use warmup-inverse-sqrt, cosine or constant');
  }
}
