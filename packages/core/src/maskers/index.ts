// exports of core/src/maskers
export { blend as blendMasked } from './common.js';
export * from './zero.js';
export * from './mean.js';
export * from './blur.js';
export * from './attention.js';
export { MASKERS } from './registry.js';
