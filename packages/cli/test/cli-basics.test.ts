import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { sop } from './helpers.js';

const root = resolve(__dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'sop-cli-'));

describe('sop CLI basics', () => {
  it('plugins --json lists every slot, and --plugin adds user plugins', async () => {
    const r = await sop('plugins', '--json', '--plugin', join(root, 'examples/plugins/occlusion-attributor.ts'));
    expect(r.code).toBe(0);
    expect(Object.keys(r.json).sort()).toEqual(['attributor', 'backbone', 'dataset', 'features', 'generator', 'masker', 'metric', 'model', 'selector']);
    expect(r.json.attributor).toContain('occlusion');
  });

  it('a bad config exits 1 and names the key path', async () => {
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'data: {use: builtin, name: iris}\nbackbone: {use: mlp}\ntrain: {batchSize: -3}\n');
    const r = await sop('predict', cfg);
    expect(r.code).toBe(1);
    expect(r.stderr.join('\n')).toContain('train.batchSize: expected a positive integer, found number -3');
  });

  it('an unknown plugin name exits 1, names it and lists the known names', async () => {
    const cfg = join(dir, 'unknown.yaml');
    writeFileSync(cfg, 'data: {use: builtin, name: iris}\nbackbone: {use: tensorflow}\n');
    const r = await sop('predict', cfg);
    expect(r.code).toBe(1);
    const err = r.stderr.join('\n');
    expect(err).toContain("backbone.use: unknown backbone plugin 'tensorflow'");
    expect(err).toMatch(/use one of: .*linear-json|use one of: .*mlp|use one of/);
  });

  it('a missing config file exits 1', async () => {
    const r = await sop('predict', join(dir, 'nope.yaml'));
    expect(r.code).toBe(1);
    expect(r.stderr.join('\n')).toMatch(/not found/);
  });

  it('unknown commands and options exit 1 with help hints', async () => {
    expect((await sop('frobnicate')).code).toBe(1);
    expect((await sop('plugins', '--frob')).code).toBe(1);
  });

  it('--set on a bad key path is reported with the path', async () => {
    const cfg = join(dir, 'ok.yaml');
    writeFileSync(cfg, 'data: {use: builtin, name: iris}\nbackbone: {use: mlp}\n');
    const r = await sop('predict', cfg, '--set', 'train.epochz=3');
    expect(r.code).toBe(1);
    expect(r.stderr.join('\n')).toContain('train.epochz');
  });
});
