import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 as zlibCrc32, inflateSync } from 'node:zlib';
import { UserError } from '@sop/core';
import {
  barChart,
  crc32,
  csvField,
  decodePng,
  encodePng,
  escapeXml,
  evaluate,
  builtinMetric,
  floatImageToRgb,
  formatMeanStd,
  lineChart,
  markdownTable,
  niceTicks,
  renderExplanationHtml,
  renderReportHtml,
  toCsv,
  writeReport,
  type EvaluationResult,
} from '../src/index.js';
import { columnsSpace, linearBackbone, linearExplainer, zeroMasker } from './helpers.js';

/** Minimal well-formedness check: every non-void tag closes in order; returns the problems found. */
function checkHtml(html: string): string[] {
  const voids = new Set(['meta', 'img', 'br', 'hr', 'input', 'link', 'area', 'base', 'col', 'source', 'wbr']);
  const body = html.replace(/<!DOCTYPE[^>]*>/i, '').replace(/<!--[\s\S]*?-->/g, '');
  const stack: string[] = [];
  const problems: string[] = [];
  const re = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+(?:="[^"]*")?)*)\s*(\/?)>/g;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(body))) {
    const between = body.slice(last, m.index);
    if (/[<>]/.test(between)) problems.push(`stray < or > before ${m[0].slice(0, 40)}`);
    last = re.lastIndex;
    const [, close, name, , selfClose] = m;
    const tag = name.toLowerCase();
    if (close) {
      const top = stack.pop();
      if (top !== tag) problems.push(`</${tag}> closes <${top}>`);
    } else if (!selfClose && !voids.has(tag)) stack.push(tag);
  }
  if (/[<>]/.test(body.slice(last))) problems.push('stray < or > at the end');
  if (stack.length) problems.push(`unclosed: ${stack.join(',')}`);
  return problems;
}

const result: Pick<EvaluationResult, 'rows' | 'metrics'> = {
  metrics: [
    { name: 'error', direction: 'lower', category: 'accuracy' },
    { name: 'coverage', direction: 'higher', category: 'localisation' },
  ],
  rows: [
    { method: 'backbone', error: 0.097, error_std: 0.01 },
    { method: 'LIME-F', error: 0.327, error_std: 0.014, coverage: 0.36, coverage_std: 0.012 },
    { method: 'SOP', error: 0.267, error_std: 0.017, coverage: 0.63, coverage_std: 0.006 },
  ],
};

describe('tables', () => {
  it('formats mean ± std like the paper', () => {
    expect(formatMeanStd(0.267, 0.017)).toBe('0.267±.017');
    expect(formatMeanStd(0.0254, 0.0021)).toBe('0.025±.002');
    expect(formatMeanStd(1.5, 1.25, 2)).toBe('1.50±1.25');
    expect(formatMeanStd(0.5)).toBe('0.500');
    expect(formatMeanStd(undefined)).toBe('–');
    expect(formatMeanStd(0)).toBe('0.000');
  });
  it('Markdown table shaped like Table 1 with ↑/↓ and the best in bold (backbone excluded)', () => {
    expect(markdownTable(result)).toBe(
      [
        '| Method | Err ↓ | Coverage ("IOU") ↑ |',
        '|---|---|---|',
        '| backbone | 0.097±.010 | – |',
        '| LIME-F | 0.327±.014 | 0.360±.012 |',
        '| SOP | **0.267±.017** | **0.630±.006** |',
        '',
      ].join('\n'),
    );
    expect(markdownTable({ metrics: result.metrics, rows: [{ method: 'a|b', error: 0.1 }] })).toContain('| a\\|b | 0.100 |');
  });
  it('CSV escaping (RFC 4180)', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(undefined)).toBe('');
    expect(csvField(NaN)).toBe('NaN');
    expect(csvField(0.25)).toBe('0.25');
    expect(toCsv({ metrics: [result.metrics[0]], rows: [{ method: 'x,"y"', error: 0.5, error_std: 0.1 }, { method: 'z', error: 1 }] })).toBe(
      'method,error,error_std\n"x,""y""",0.5,0.1\nz,1,\n',
    );
  });
});

describe('PNG', () => {
  it('CRC-32 check value and a known chunk CRC', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new TextEncoder().encode('IEND'))).toBe(0xae426082);
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 37) & 255);
    expect(crc32(bytes)).toBe(zlibCrc32(bytes));
  });
  it('encodes a valid PNG that decodes back to the same pixels', () => {
    const data = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
    const png = encodePng({ width: 2, height: 2, channels: 3, data });
    expect(Array.from(png.subarray(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    // IHDR: length 13, type, 2×2, depth 8, colour type 2; CRC over type + data
    const dv = new DataView(png.buffer, png.byteOffset);
    expect(dv.getUint32(8)).toBe(13);
    expect(String.fromCharCode(...png.subarray(12, 16))).toBe('IHDR');
    expect([dv.getUint32(16), dv.getUint32(20), png[24], png[25]]).toEqual([2, 2, 8, 2]);
    expect(dv.getUint32(29)).toBe(zlibCrc32(png.subarray(12, 29)));
    // last chunk is IEND with its well-known CRC
    expect(Array.from(png.subarray(png.length - 12))).toEqual([0, 0, 0, 0, 73, 69, 78, 68, 0xae, 0x42, 0x60, 0x82]);
    // scanlines: filter byte 0 + raw bytes
    const idatLen = dv.getUint32(33);
    const raw = inflateSync(png.subarray(41, 41 + idatLen));
    expect(Array.from(raw)).toEqual([0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 10, 20, 30]);
    expect(decodePng(png)).toEqual({ width: 2, height: 2, channels: 3, data });
    const gray = encodePng({ width: 3, height: 1, channels: 1, data: Uint8Array.from([0, 128, 255]) });
    expect(decodePng(gray).data).toEqual(Uint8Array.from([0, 128, 255]));
  });
  it('detects corruption and bad sizes', () => {
    const png = encodePng({ width: 1, height: 1, channels: 4, data: Uint8Array.from([1, 2, 3, 4]) });
    const bad = Uint8Array.from(png);
    bad[20] ^= 1;
    expect(() => decodePng(bad)).toThrow(/CRC/);
    expect(() => encodePng({ width: 2, height: 2, channels: 1, data: new Uint8Array(3) })).toThrow(UserError);
  });
  it('float images are min-max scaled to RGB', () => {
    expect(Array.from(floatImageToRgb([0, 0.5, 1, 1], [2, 2]).data)).toEqual([0, 0, 0, 128, 128, 128, 255, 255, 255, 255, 255, 255]);
    expect(Array.from(floatImageToRgb([0, 1, 2], [3, 1, 1]).data)).toEqual([0, 128, 255]);
  });
});

describe('SVG', () => {
  it('ticks, escaping and well-formed charts', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(escapeXml(`<a b="c">&'`)).toBe('&lt;a b=&quot;c&quot;&gt;&amp;&#39;');
    const svg = lineChart([{ name: 'a<b', x: [0, 1], y: [0, 1] }, { name: 'c', x: [0, 1], y: [1, 0] }], { title: 'T & U' });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('a&lt;b');
    expect(checkHtml(svg)).toEqual([]);
    expect(checkHtml(barChart(['x', 'y'], [1, -2], { title: 't' }))).toEqual([]);
  });
});

describe('HTML report', () => {
  async function evaluated() {
    const W = [
      [1, 0],
      [1, 0],
      [0, 1],
      [0, 1],
    ];
    const backbone = linearBackbone(W);
    return evaluate({
      explainers: [linearExplainer('exact-F', backbone, W), linearExplainer('sop', backbone, W, 1, true)],
      backbone,
      space: columnsSpace(4),
      masker: zeroMasker,
      inputs: { x: { data: Float32Array.from([2, 1, 0, 0, 0, 0, 1, 3, 1, 0, 0, 2, 0, 2, 1, 0]), shape: [4, 4] } },
      labels: Float32Array.from([0, 1, 1, 0]),
      task: 'classification',
      modality: 'tabular',
      numOutputs: 2,
      metrics: ['error', 'insertion', 'deletion', 'sparsity-curve', 'coverage'].map((n) => builtinMetric(n)!),
      keep: 0.5,
      steps: 4,
    });
  }
  const examples = {
    images: [
      {
        title: 'img <1>',
        pixels: Float32Array.from({ length: 3 * 4 * 4 }, (_, i) => i),
        shape: [3, 4, 4],
        groups: { masks: Float32Array.from([1, 0, 0, 1, 0, 1, 1, 0]), count: 2, weights: [0.2, 0.8], grid: [2, 2] },
        attributions: [1, -1, 0, 2],
        grid: [2, 2],
      },
    ],
    texts: [{ title: 'text', tokens: ['the', 'play', '##ful', '<cat>'], groups: { masks: [1, 0, 0, 1, 0, 1, 1, 0], count: 2, weights: [0.5, -0.5] }, attributions: [0, 1, 0.5, -1] }],
    tabular: [{ title: 'row', featureNames: ['age', 'income', 'x&y'], values: [30, 2, 1], attributions: [0.1, -0.5, 0.2], groups: { masks: [1, 1, 0, 0, 0, 1], count: 2, weights: [0.3, 0.7] } }],
  };

  it('has the expected sections, is well-formed and self-contained', async () => {
    const res = await evaluated();
    const html = renderReportHtml(res, { config: { name: 'demo <x>' }, examples });
    for (const id of ['summary', 'methods', 'sparsity', 'insertion-deletion', 'examples', 'config']) expect(html).toContain(`<section id="${id}">`);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(checkHtml(html)).toEqual([]);
    expect(html).toContain('data:image/png;base64,');
    expect(html).toContain('Err ↓');
    expect(html).toContain('demo &lt;x&gt;');
    expect(html).toContain('&lt;cat&gt;');
    expect(html).toContain('playful'.slice(0, 4));
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/<script/);
    // embedded PNGs decode
    const uris = [...html.matchAll(/data:image\/png;base64,([A-Za-z0-9+/=]+)/g)].map((m) => m[1]);
    expect(uris.length).toBe(1 + 1 + 2);
    for (const u of uris) expect(decodePng(new Uint8Array(Buffer.from(u, 'base64'))).width).toBe(4);
  });

  it('renderExplanationHtml renders one input', () => {
    const html = renderExplanationHtml({ method: 'sop', prediction: 'predicted: 1 (0.9)', tabular: examples.tabular[0], text: examples.texts[0] });
    expect(checkHtml(html)).toEqual([]);
    expect(html).toContain('<section id="explanation">');
    expect(html).toContain('x&amp;y');
    expect(html).toContain('g1: x&amp;y');
    expect(html).toContain('group 1 · w = -0.500');
    expect(() => renderExplanationHtml({ text: { tokens: ['a'], groups: { masks: [1, 1], count: 1, weights: [1] } } })).toThrow(UserError);
  });

  it('writeReport writes the four files atomically and refuses to overwrite without force', async () => {
    const res = await evaluated();
    const dir = mkdtempSync(join(tmpdir(), 'sop-report-'));
    try {
      const files = writeReport(dir, res, { config: { seed: 1 }, examples });
      expect(files.map((f) => f.slice(dir.length + 1))).toEqual(['results.json', 'results.csv', 'results.md', 'report.html']);
      const json = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
      expect(json.rows.map((r: { method: string }) => r.method)).toEqual(['backbone', 'exact-F', 'sop']);
      expect(json.runs).toBeUndefined();
      expect(json.config).toEqual({ seed: 1 });
      expect(json.curves.sparsity[0].keeps).toHaveLength(10);
      expect(readFileSync(join(dir, 'results.csv'), 'utf8').split('\n')[0]).toBe(
        'method,error,error_std,coverage,coverage_std,insertion,insertion_std,deletion,deletion_std,sparsity-curve,sparsity-curve_std'.replace(',coverage,coverage_std', ''),
      );
      expect(readFileSync(join(dir, 'results.md'), 'utf8')).toContain('| Method | Err ↓ | Ins ↑ | Del ↓ |');
      expect(() => writeReport(dir, res)).toThrow(/already exist/);
      expect(() => writeReport(dir, res, { force: true })).not.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
