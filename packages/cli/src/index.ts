export { runCli } from './app.js';
export { buildContainer } from './container.js';
export type { CliIO } from './io.js';
