/**
 * DI tokens: one per plugin slot. Packages bind implementations to these tokens *by name* (see {@link bindPlugin}),
 * and a pipeline config names them (`use: onnx`). Inject by these explicit tokens, never by reflected type.
 */
export const TOKENS = {
  /** BackboneFactory */
  backbone: Symbol.for('sop.backbone'),
  /** DataLoader */
  dataset: Symbol.for('sop.dataset'),
  /** FeatureSpaceFactory */
  features: Symbol.for('sop.features'),
  /** MaskerFactory */
  masker: Symbol.for('sop.masker'),
  /** ModelFactory (sop | scores-activation | none) */
  model: Symbol.for('sop.model'),
  /** GroupGeneratorFactory */
  generator: Symbol.for('sop.generator'),
  /** GroupSelectorFactory */
  selector: Symbol.for('sop.selector'),
  /** Attributor */
  attributor: Symbol.for('sop.attributor'),
  /** Metric */
  metric: Symbol.for('sop.metric'),
} as const;

export type Slot = keyof typeof TOKENS;
export const SLOTS = Object.keys(TOKENS) as Slot[];

/** Multi-binding listing every registered {slot, name}: what `sop plugins` reads. */
export const PLUGIN_INDEX = Symbol.for('sop.pluginIndex');

/** The active Rng (seeded from the config). */
export const RNG = Symbol.for('sop.rng');
