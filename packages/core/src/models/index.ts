// exports of core/src/models (owned by the engineer working on models)
export * from './mlp.js';
export * from './scores-activation.js';
export * from './sop.js';
export * from './sop-explainer.js';
export * from './model.js';
export * from './attention-generator.js';
export * from './sparsemax-selector.js';
