// exports of core/src/train (owned by the engineer working on train)
export * from './safetensors.js';
export * from './trainer.js';
export * from './run.js';
export * from './helpers.js';
export * from './builtin-models.js';
export * from './pipeline.js';
