// exports of core/src/maskers
export * from './common.js';
export * from './zero.js';
export * from './mean.js';
export * from './blur.js';
export * from './attention.js';
export { MASKERS } from './registry.js';
