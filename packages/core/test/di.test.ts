import { describe, expect, it } from 'vitest';
import { ContainerModule } from 'inversify';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { bindPlugin, createContainer, listPlugins, loadPlugins, resolvePlugin, UserError } from '@sop/core';

describe('DI registry', () => {
  const mod = new ContainerModule((o) => {
    bindPlugin(o, 'metric', 'alpha', { tag: 'a' }, 'test');
    bindPlugin(o, 'metric', 'beta', { tag: 'b' }, 'test');
    bindPlugin(o, 'backbone', 'gamma', { tag: 'g' }, 'test');
  });

  it('binds by name and lists names per slot', async () => {
    const c = await createContainer([mod]);
    expect(resolvePlugin<{ tag: string }>(c, 'metric', 'beta').tag).toBe('b');
    const list = listPlugins(c);
    expect(list.metric).toEqual(['alpha', 'beta']);
    expect(list.backbone).toEqual(['gamma']);
    expect(list.attributor).toEqual([]);
  });

  it('an unknown name is a UserError naming it and listing the known names', async () => {
    const c = await createContainer([mod]);
    try {
      resolvePlugin(c, 'metric', 'delta', 'evaluate.metrics');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      expect((e as UserError).message).toBe("evaluate.metrics: unknown metric plugin 'delta'");
      expect((e as UserError).fix).toContain('alpha, beta');
    }
  });

  it('loads the example plugins from a path', async () => {
    const c = await createContainer([]);
    const root = resolve(__dirname, '../../..');
    await loadPlugins(c, ['examples/plugins/linear-backbone.ts', './examples/plugins/occlusion-attributor.ts'], root);
    expect(listPlugins(c).backbone).toEqual(['linear-json']);
    expect(listPlugins(c).attributor).toEqual(['occlusion']);
  });

  it('plugin load errors are user errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sop-plugin-'));
    const c = await createContainer([]);
    await expect(loadPlugins(c, ['./missing.ts'], dir)).rejects.toThrow(/plugin file not found/);
    writeFileSync(join(dir, 'nomodule.mjs'), 'export const x = 1;\n');
    await expect(loadPlugins(c, ['./nomodule.mjs'], dir)).rejects.toThrow(/does not export a ContainerModule/);
    writeFileSync(join(dir, 'broken.mjs'), 'export default {;\n');
    await expect(loadPlugins(c, ['./broken.mjs'], dir)).rejects.toThrow(/could not load plugin/);
  });
});
