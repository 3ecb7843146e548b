import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { sop } from './helpers.js';

const root = resolve(__dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'sop-cli-pipe-'));

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('sop train / explain / attribute / predict', () => {
  const digits = write(
    'digits.yaml',
    `name: digits-sop
data: {use: builtin, name: digits, shape: [1, 8, 8], scale: 0.0625}
features: {use: patches, size: [2, 2]}
backbone: {use: onnx, path: ${join(root, 'fixtures/onnx/digits-cnn.onnx')}}
model: {use: sop, groups: 8, keep: 0.25}
train: {epochs: 1, batchSize: 32, lr: 0.005, seed: 0}
`,
  );
  const run = join(dir, 'run-digits');

  it('trains SOP over the ONNX CNN and writes a run directory', async () => {
    const r = await sop('train', digits, '--out', run, '--json');
    expect(r.code, r.stderr.join('\n')).toBe(0);
    expect(r.json.out).toBe(run);
    expect(r.json.metrics.backbone_accuracy).toBeGreaterThan(0.95);
    expect(r.json.metrics.accuracy).toBeGreaterThan(0.2); // well above chance (0.1) after one epoch
    expect(r.json.metrics.max_abs_sum_error).toBeLessThan(1e-5);
    for (const f of ['config.yaml', 'run.json', 'metrics.json', 'train-log.jsonl']) expect(existsSync(join(run, f))).toBe(true);
    // never overwrite without --force
    const again = await sop('train', digits, '--out', run);
    expect(again.code).toBe(1);
    expect(again.stderr.join('\n')).toMatch(/--force/);
  });

  it('explains: group contributions sum to the explained output', async () => {
    const html = join(dir, 'explain.html');
    const r = await sop('explain', run, '--limit', '3', '--json', '--html', html);
    expect(r.code, r.stderr.join('\n')).toBe(0);
    expect(r.json.predictions).toHaveLength(3);
    for (const p of r.json.predictions) {
      const sum = p.groups.reduce((a: number, g: { contribution: number }) => a + g.contribution, 0);
      expect(Math.abs(sum - p.output[p.label])).toBeLessThan(1e-4);
      for (const g of p.groups) expect(g.features.length).toBe(4); // keep 0.25 of 16 patches
    }
    const page = readFileSync(html, 'utf8');
    expect(page).toMatch(/^<!DOCTYPE html>/i);
    expect(page).toContain('data:image/png;base64,');
    expect(existsSync(join(dir, 'explain-2.html'))).toBe(true);
  });

  it('predict on a run directory gives the trained SOP model\'s own outputs (the ones explain decomposes)', async () => {
    const p = await sop('predict', run, '--limit', '3', '--json');
    const e = await sop('explain', run, '--limit', '3', '--json');
    expect(p.code, p.stderr.join('\n')).toBe(0);
    expect(p.json.model).toBe('sop');
    p.json.outputs.forEach((row: number[], i: number) => row.forEach((v, c) => expect(v).toBeCloseTo(e.json.predictions[i].output[c], 5)));
  });

  it('explains inputs from a file, and rejects a wrongly shaped one', async () => {
    const row = Array.from({ length: 64 }, (_, i) => (i % 9) / 16);
    const ok = write('in.json', JSON.stringify([row]));
    const r = await sop('explain', run, '--input', ok, '--json');
    expect(r.code, r.stderr.join('\n')).toBe(0);
    expect(r.json.predictions).toHaveLength(1);
    const bad = write('bad.json', JSON.stringify([[1, 2, 3]]));
    const e = await sop('explain', run, '--input', bad);
    expect(e.code).toBe(1);
    expect(e.stderr.join('\n')).toContain('not a multiple of one input');
  });

  it('predict and attribute over a config', async () => {
    const p = await sop('predict', digits, '--limit', '4', '--json');
    expect(p.code, p.stderr.join('\n')).toBe(0);
    expect(p.json.outputs).toHaveLength(4);
    expect(p.json.outputs[0]).toHaveLength(10);
    const a = await sop('attribute', digits, '--method', 'kernel-shap', '--limit', '2', '--budget', '40', '--json');
    expect(a.code, a.stderr.join('\n')).toBe(0);
    expect(a.json.attributions).toHaveLength(2);
    expect(a.json.attributions[0].values).toHaveLength(16);
    const u = await sop('attribute', digits, '--method', 'shapley-magic');
    expect(u.code).toBe(1);
    expect(u.stderr.join('\n')).toContain("unknown attributor plugin 'shapley-magic'");
  });
});

describe('user plugins through the CLI (examples/plugins)', () => {
  it('a third-party backbone and a custom attributor give the closed-form occlusion values', async () => {
    // linear model y = W x + b on 4 columns; occlusion with the zero masker gives W[t, j] * x_j exactly
    const W = [
      [1, -2, 0.5, 0],
      [-1, 3, 0, 2],
    ];
    write('weights.json', JSON.stringify({ weight: W, bias: [0.1, -0.2] }));
    const rows = ['a,b,c,d,label', '1,2,3,4,0', '0.5,-1,2,1,1', '2,0,1,-1,0', '-1,1,1,1,1', '3,1,0,2,0', '1,1,1,1,1', '0,2,1,0,0', '2,2,2,2,1'];
    write('table.csv', rows.join('\n') + '\n');
    const cfg = write(
      'plugin.yaml',
      `name: plugin-demo
plugins: [${join(root, 'examples/plugins/linear-backbone.ts')}]
data: {use: csv, path: table.csv, label: label, split: 0.5}
features: {use: columns, masker: zero}
backbone: {use: linear-json, path: weights.json}
`,
    );
    const r = await sop('attribute', cfg, '--method', 'occlusion', '--plugin', join(root, 'examples/plugins/occlusion-attributor.ts'), '--target', '1', '--json', '--limit', '1');
    expect(r.code, r.stderr.join('\n')).toBe(0);
    const p = await sop('predict', cfg, '--json', '--limit', '1');
    expect(p.code).toBe(0);
    const values: number[] = r.json.attributions[0].values;
    // recover x from the prediction: we know the test rows come from the CSV; check the closed form on that row
    const out: number[] = p.json.outputs[0];
    const csvRows = rows.slice(1).map((l) => l.split(',').map(Number));
    const x = csvRows.find((row) => Math.abs(W[1].reduce((s, w, j) => s + w * row[j], -0.2) - out[1]) < 1e-5)!;
    expect(x).toBeDefined();
    values.forEach((v, j) => expect(v).toBeCloseTo(W[1][j] * x[j], 5));
  });
});
