import { describe, expect, it } from 'vitest';
import { createContainer, listPlugins, resolvePlugin, type Metric } from '@sop/core';
import { builtinMetrics, metricsModule } from '../src/index.js';

describe('metricsModule', () => {
  it('binds every built-in metric by name', async () => {
    const c = await createContainer([metricsModule]);
    const names = listPlugins(c).metric;
    expect(names).toEqual([...builtinMetrics.map((m) => m.name)].sort());
    for (const n of ['accuracy', 'error', 'mse', 'fidelity', 'insertion', 'deletion', 'iou', 'coverage', 'purity', 'sparsity-curve', 'group-leakage']) {
      expect(names).toContain(n);
    }
    expect(resolvePlugin<Metric>(c, 'metric', 'coverage').direction).toBe('higher');
    expect(() => resolvePlugin(c, 'metric', 'nope')).toThrow(/unknown metric plugin 'nope'/);
  });
});
