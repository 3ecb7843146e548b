import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { sop } from './helpers.js';

const out = join(mkdtempSync(join(tmpdir(), 'sop-demo-')), 'demo');

function findChromium(): string | undefined {
  for (const c of ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome']) if (existsSync(c)) return c;
  return undefined;
}

describe('sop demo --quick', () => {
  it('trains SOP on the bundled ViT, evaluates it against the baselines and writes the report', async () => {
    const r = await sop('demo', '--quick', '--out', out, '--json');
    expect(r.code, r.stderr.join('\n')).toBe(0);
    const rows: Array<Record<string, number | string>> = r.json.rows;
    const byName = Object.fromEntries(rows.map((row) => [row.method, row]));
    expect(Object.keys(byName)).toEqual(expect.arrayContaining(['backbone', 'sop', 'lime-f', 'kernel-shap-f', 'rise-f', 'archipelago-f', 'integrated-gradients-f', 'gradcam-f']));
    // SOP is faithful by construction: fidelity exactly 0; post-hoc methods are not
    expect(Math.abs(byName.sop.fidelity as number)).toBeLessThan(1e-6);
    for (const m of ['lime-f', 'kernel-shap-f', 'rise-f']) expect(byName[m].fidelity as number).toBeGreaterThan(0.05);
    expect(r.json.train.max_abs_sum_error).toBeLessThan(1e-5);
    expect(r.json.train.backbone_accuracy).toBeGreaterThan(0.95);
    // coverage of the object masks is reported for every method
    for (const m of ['sop', 'lime-f']) expect(byName[m].coverage as number).toBeGreaterThan(0.3);
    for (const f of ['results.json', 'results.csv', 'results.md', 'report.html']) expect(existsSync(join(out, 'report', f))).toBe(true);
    const html = readFileSync(join(out, 'report', 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('data:image/png;base64,');
    expect(html).not.toMatch(/<(script|link)[^>]+(src|href)=["']https?:/); // self-contained
    // refuses to overwrite without --force, and overwrites with it (run and report)
    const refused = await sop('demo', '--quick', '--out', out);
    expect(refused.code).toBe(1);
    expect(refused.stderr.join('\n')).toContain('--force');
    const before = statSync(join(out, 'report', 'report.html')).mtimeMs;
    const again = await sop('demo', '--quick', '--out', out, '--force', '--json');
    expect(again.code, again.stderr.join('\n')).toBe(0);
    expect(statSync(join(out, 'report', 'report.html')).mtimeMs).toBeGreaterThan(before);
    expect(again.json.train.max_abs_sum_error).toBeLessThan(1e-5);
  });

  const chromium = findChromium();
  it.skipIf(!chromium)('the report renders in headless Chromium (screenshot)', () => {
    const png = join(out, 'report.png');
    execFileSync(chromium!, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${mkdtempSync(join(tmpdir(), 'chr-'))}`,
      '--window-size=1200,1600', `--screenshot=${png}`, `file://${join(out, 'report', 'report.html')}`,
    ], { stdio: 'ignore', timeout: 60_000 });
    const bytes = readFileSync(png);
    expect(bytes.subarray(1, 4).toString()).toBe('PNG');
    expect(statSync(png).size).toBeGreaterThan(20_000); // a blank page is a few KB
  });
});
