export * from './types.js';
export * from './pipeline.js';
export * from './validate.js';
export * from './load.js';
export * from './build.js';
