import { sliceInputs, takeInputs, type Inputs } from '../inputs.js';
import type { Task } from '../dataset.js';
import { concatRows, type FloatTensor } from '../tensor.js';
import { Tensor, crossEntropy, mse } from '../autograd/index.js';
import type { SplitPart } from './run.js';

export function takeLabels(labels: Float32Array, rows: ArrayLike<number>, width: number): Float32Array {
  const out = new Float32Array(rows.length * width);
  for (let i = 0; i < rows.length; i++) out.set(labels.subarray(rows[i] * width, (rows[i] + 1) * width), i * width);
  return out;
}

export function takePart(part: SplitPart, rows: ArrayLike<number>, width: number): SplitPart {
  return { inputs: takeInputs(part.inputs, rows), labels: takeLabels(part.labels, rows, width), rows: rows.length };
}

/** Task loss: mean cross-entropy (classification) or mean squared error (regression). */
export function taskLoss(task: Task, output: Tensor, labels: Float32Array): Tensor {
  if (task === 'classification') return crossEntropy(output, Int32Array.from(labels));
  return mse(output, new Tensor(labels, [...output.shape]));
}

/** Predict in chunks of `chunk` rows and concatenate. */
export async function predictChunked(predict: (inputs: Inputs) => Promise<FloatTensor>, inputs: Inputs, chunk = 512): Promise<FloatTensor> {
  const n = inputs.x.shape[0];
  const parts: FloatTensor[] = [];
  for (let s = 0; s < n; s += chunk) parts.push(await predict(sliceInputs(inputs, s, Math.min(n, s + chunk))));
  return concatRows(parts);
}

/** accuracy (classification) or mse (regression), plus the mean loss. */
export function taskMetrics(task: Task, output: FloatTensor, labels: Float32Array): Record<string, number> {
  const [B, C] = output.shape;
  if (task === 'classification') {
    let correct = 0;
    let loss = 0;
    for (let b = 0; b < B; b++) {
      let best = 0;
      let mx = -Infinity;
      for (let c = 0; c < C; c++) {
        const v = output.data[b * C + c];
        if (v > mx) {
          mx = v;
          best = c;
        }
      }
      let s = 0;
      for (let c = 0; c < C; c++) s += Math.exp(output.data[b * C + c] - mx);
      loss += mx + Math.log(s) - output.data[b * C + labels[b]];
      if (best === labels[b]) correct++;
    }
    return { accuracy: B ? correct / B : NaN, loss: B ? loss / B : NaN };
  }
  let se = 0;
  for (let i = 0; i < B * C; i++) se += (output.data[i] - labels[i]) ** 2;
  return { mse: B ? se / (B * C) : NaN };
}

/** Higher-is-better validation score from {@link taskMetrics} (accuracy, ties broken by loss; or −mse). */
export function validationScore(task: Task, m: Record<string, number>): number {
  return task === 'classification' ? m.accuracy - 1e-6 * Math.min(m.loss, 1e3) : -m.mse;
}
