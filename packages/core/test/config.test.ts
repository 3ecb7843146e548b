import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { applyOverrides, ConfigError, loadConfig, UserError, validateConfig } from '@sop/core';

const good = {
  name: 'digits-sop',
  task: 'classification',
  data: { use: 'builtin', name: 'digits' },
  features: { use: 'patches', size: [2, 2] },
  backbone: { use: 'onnx', path: 'm.onnx' },
  model: { use: 'sop', groups: 20, keep: 0.2 },
  train: { epochs: 3, batchSize: 16, lr: 5e-6, seed: 0 },
};

function issuesOf(raw: unknown): string[] {
  try {
    validateConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).issues.map((i) => `${i.path}|${i.expected}`);
  }
  return [];
}

describe('config validation', () => {
  it('accepts the documented shape and fills defaults', () => {
    const c = validateConfig({ data: { use: 'csv', path: 'a.csv' }, backbone: { use: 'mlp' } });
    expect(c.task).toBe('classification');
    expect(c.features.use).toBe('columns');
    expect(c.model.use).toBe('sop');
    expect(c.train).toMatchObject({ batchSize: 16, seed: 0, epochs: 3 });
    expect(c.plugins).toEqual([]);
    expect(validateConfig(good).model).toEqual(good.model);
  });

  it('names the key path, what was expected and what was found', () => {
    const issues = issuesOf({ ...good, train: { ...good.train, batchSize: 'sixteen' } });
    expect(issues).toEqual(['train.batchSize|a positive integer']);
    try {
      validateConfig({ ...good, train: { ...good.train, batchSize: 'sixteen' } });
    } catch (e) {
      expect((e as Error).message).toContain('train.batchSize: expected a positive integer, found string "sixteen"');
      expect((e as UserError).fix).toMatch(/config/);
    }
  });

  it('reports every problem at once', () => {
    const issues = issuesOf({ task: 'clustering', data: 3, model: { use: 'sop', keep: 1.5 }, trian: {} });
    expect(issues.map((i) => i.split('|')[0]).sort()).toEqual(['backbone', 'data', 'model.keep', 'task', 'trian']);
  });

  it('rejects unknown train keys and bad masker blocks', () => {
    expect(issuesOf({ ...good, train: { epochz: 2 } })[0]).toMatch(/^train.epochz\|one of epochs/);
    expect(issuesOf({ ...good, features: { use: 'patches', masker: 5 } })[0]).toMatch(/^features.masker/);
    expect(issuesOf({ ...good, features: { use: 'patches', size: [0, 2] } })[0]).toMatch(/^features.size/);
  });

  it('accepts a plugin name as a plain string', () => {
    const c = validateConfig({ ...good, model: 'none', features: { use: 'tokens', masker: 'attention' } });
    expect(c.model).toEqual({ use: 'none' });
    expect(c.features.masker).toEqual({ use: 'attention' });
  });
});

describe('--set overrides', () => {
  it('sets nested keys with YAML-typed values', () => {
    const raw: Record<string, unknown> = structuredClone(good);
    applyOverrides(raw, ['train.epochs=5', 'model.keep=0.3', 'features.size=[4, 4]', 'backbone.path=other.onnx', 'evaluate.methods=[lime, sop]']);
    const c = validateConfig(raw);
    expect(c.train.epochs).toBe(5);
    expect(c.model.keep).toBe(0.3);
    expect(c.features.size).toEqual([4, 4]);
    expect(c.backbone.path).toBe('other.onnx');
    expect(c.evaluate?.methods).toEqual(['lime', 'sop']);
  });

  it('turns a string plugin block into a mapping when a sub-key is set', () => {
    const raw: Record<string, unknown> = { ...structuredClone(good), model: 'sop' };
    applyOverrides(raw, ['model.groups=8']);
    expect(raw.model).toEqual({ use: 'sop', groups: 8 });
  });

  it('rejects malformed overrides', () => {
    expect(() => applyOverrides({}, ['train.epochs'])).toThrow(/KEY.PATH=VALUE/);
    expect(() => applyOverrides({ name: 'x' }, ['name.sub=1'])).toThrow(/not a mapping/);
  });
});

describe('loadConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sop-config-'));
  it('reads YAML and JSON and resolves baseDir', () => {
    const y = join(dir, 'a.yaml');
    writeFileSync(y, 'name: a\ndata: {use: builtin, name: iris}\nbackbone: {use: mlp, hidden: [8]}\ntrain: {epochs: 2}\n');
    const l = loadConfig(y, ['train.seed=7']);
    expect(l.baseDir).toBe(dir);
    expect(l.config.train).toMatchObject({ epochs: 2, seed: 7 });
    const j = join(dir, 'a.json');
    writeFileSync(j, JSON.stringify(good));
    expect(loadConfig(j).config.name).toBe('digits-sop');
  });
  it('gives clear errors for missing, empty and unparsable files', () => {
    expect(() => loadConfig(join(dir, 'nope.yaml'))).toThrow(/config file not found/);
    writeFileSync(join(dir, 'empty.yaml'), '  \n');
    expect(() => loadConfig(join(dir, 'empty.yaml'))).toThrow(/empty/);
    writeFileSync(join(dir, 'bad.yaml'), 'data: {use: [\n');
    expect(() => loadConfig(join(dir, 'bad.yaml'))).toThrow(UserError);
    writeFileSync(join(dir, 'list.yaml'), '- 1\n- 2\n');
    expect(() => loadConfig(join(dir, 'list.yaml'))).toThrow(/mapping/);
  });
});
