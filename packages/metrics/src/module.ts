import { ContainerModule } from 'inversify';
import { bindPlugin } from '@sop/core';
import { builtinMetrics } from './metrics/index.js';

/** This package's plugins: every built-in metric, bound by name to core's `metric` slot. */
export const metricsModule = new ContainerModule((options) => {
  for (const m of builtinMetrics) bindPlugin(options, 'metric', m.name, m, '@sop/metrics');
});
