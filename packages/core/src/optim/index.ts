export * from './adamw.js';
export * from './clip.js';
export * from './schedules.js';
