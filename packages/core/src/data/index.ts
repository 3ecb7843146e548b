// exports of core/src/data
export * from './split.js';
export * from './synthetic.js';
