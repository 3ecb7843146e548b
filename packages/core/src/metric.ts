import type { Task, Modality } from './dataset.js';

export type MetricDirection = 'higher' | 'lower';
export type MetricCategory = 'accuracy' | 'faithfulness' | 'localisation' | 'complexity' | 'leakage';
/** What the metric needs from a method's run. */
export type MetricRequirement =
  | 'predictions'
  | 'attributions'
  | 'allClassAttributions'
  | 'featureMasks'
  | 'groundTruth'
  | 'curves'
  | 'groups'
  | 'keepSweep';

/**
 * A method's results on an evaluation set, in features. The evaluation runner fills what the chosen metrics require.
 * Arrays are row-major; N examples, C outputs, d features.
 */
export interface MethodRun {
  method: string;
  task: Task;
  modality: Modality;
  numOutputs: number;
  numFeatures: number;
  /** classification: class index per example; regression: [N, C]. */
  labels: Float32Array;
  /** The backbone's original outputs on the unmasked inputs [N, C]. */
  backboneOutputs: Float32Array;
  /** The method's own prediction [N, C] at the configured keep (SOP's output, -F: backbone on the kept features). */
  predictions?: Float32Array;
  /** Attribution for the explained class [N, d]. */
  attributions?: Float32Array;
  /** Class explained per example. */
  targets?: Int32Array;
  /** g_c = summed attribution per class [N, C] (fidelity). */
  allClassAttributions?: Float32Array;
  /** The method's selected features at the configured keep [N, d] (0/1). */
  featureMasks?: Float32Array;
  /** Ground-truth relevant features [N, d] (0/1). */
  groundTruth?: Float32Array;
  /** Insertion/deletion curves: fractions f and per-example values [N, steps]. */
  curves?: { fractions: number[]; insertion: Float32Array; deletion: Float32Array };
  /** Group masks [N, m, d] and weights [N, m], for group metrics. */
  groups?: { masks: Float32Array; weights: Float32Array; count: number };
  /** Predictions at each keep fraction (sparsity curve): keeps[i] → [N, C]. */
  keepSweep?: { keeps: number[]; predictions: Float32Array[] };
}

export interface MetricValue {
  /** The headline number. */
  value: number;
  /** Bootstrap std or other spread, when computed. */
  std?: number;
  /** Extra numbers (per-step curve means, per-class values). */
  details?: Record<string, unknown>;
}

/** An evaluation metric. Declares which way is better, what it measures and what it applies to (Quantus-style). */
export interface Metric {
  readonly name: string;
  readonly direction: MetricDirection;
  readonly category: MetricCategory;
  readonly tasks: Task[];
  readonly modalities: Modality[];
  readonly requires: MetricRequirement[];
  compute(run: MethodRun, options?: Record<string, unknown>): MetricValue;
}
