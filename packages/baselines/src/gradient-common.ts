/** Shared steps of the gradient attributors: targets, path rows, aggregation. */
import { sizeOf, type AttributeOptions, type FloatTensor, type Inputs } from '@sop/core';
import { takeInputs } from '@sop/core';
import { floatX, type BatchRunner } from './batching.js';
import { needsPrediction, resolveTargets } from './common.js';

/** Targets per example; one forward of the batch (B rows) when 'predicted'. */
export async function gradientTargets(method: string, runner: BatchRunner, inputs: Inputs, options: AttributeOptions): Promise<Int32Array> {
  runner.requireVjp(method);
  floatX(inputs, `attributor '${method}'`);
  const B = inputs.x.shape[0];
  const C = runner.backbone.info.outputDim;
  const out = needsPrediction(options) ? (await runner.forward(inputs)).output : null;
  return resolveTargets(options.target, options.labels, out, B, out ? out.shape[1] : C);
}

/** Inputs whose rows are example rows[r] (aux copied) with x replaced by `x` [R, ...]. */
export function withX(inputs: Inputs, rows: ArrayLike<number>, x: Float32Array): Inputs {
  const rest: Record<string, unknown> = {};
  for (const k of Object.keys(inputs)) if (k !== 'x') rest[k] = inputs[k];
  const taken = Object.keys(rest).length ? takeInputs(rest as Inputs, rows) : ({} as Record<string, unknown>);
  return { ...taken, x: { data: x, shape: [rows.length, ...inputs.x.shape.slice(1)] } } as Inputs;
}

export function rowSizeOf(inputs: Inputs): number {
  return sizeOf(inputs.x.shape.slice(1));
}

export function xData(inputs: Inputs): Float32Array {
  return (inputs.x as FloatTensor).data;
}

/** Per-row targets for R = B·times rows laid out example by example. */
export function repeatTargets(targets: Int32Array, times: number): Int32Array {
  const out = new Int32Array(targets.length * times);
  for (let b = 0; b < targets.length; b++) out.fill(targets[b], b * times, (b + 1) * times);
  return out;
}
