// exports of core/src/features
export * from './columns.js';
export * from './patches.js';
export * from './tokens.js';
export * from './segments.js';
export * from './ground-truth.js';
export { FEATURE_SPACES } from './registry.js';
