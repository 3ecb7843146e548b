import { UserError } from '@sop/core';
import type { EvaluationResult } from '../evaluate.js';
import { encodePng, floatImageToRgb, pngDataUri, type RasterImage } from './png.js';
import { barChart, escapeXml, lineChart } from './svg.js';
import { METRIC_LABELS, bestRow, formatMeanStd, metricHeader } from './table.js';

/** Groups of one input: masks [count, P] (input level, or feature level with `grid`) and a weight per group. */
export interface GroupSet {
  masks: ArrayLike<number>;
  count: number;
  weights: ArrayLike<number>;
  /** Feature grid [gh, gw] when `masks` are per patch: upsampled to the image by nearest neighbour. */
  grid?: number[];
}

export interface ImageExample {
  title?: string;
  /** One image without the batch axis, [C, H, W] (C = 1 or 3) or [H, W]. */
  pixels: ArrayLike<number>;
  shape: number[];
  groups?: GroupSet;
  /** Per-pixel [H·W] or per-patch (with `grid`) attribution, shown as a heat overlay. */
  attributions?: ArrayLike<number>;
  grid?: number[];
  /** Most groups shown (by weight, descending; default 8). */
  maxGroups?: number;
  /** Display width of each tile in px (default 160). */
  tileSize?: number;
}

export interface TextExample {
  title?: string;
  /** Tokens (WordPiece `##` continuations are joined to the previous token). */
  tokens: string[];
  groups?: GroupSet;
  attributions?: ArrayLike<number>;
  maxGroups?: number;
}

export interface TabularExample {
  title?: string;
  featureNames: string[];
  values?: ArrayLike<number>;
  attributions?: ArrayLike<number>;
  groups?: GroupSet;
  maxGroups?: number;
  /** Most features shown in the ranking (default 20). */
  maxFeatures?: number;
}

export interface ReportExamples {
  images?: ImageExample[];
  texts?: TextExample[];
  tabular?: TabularExample[];
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}h3{font-size:15px}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f4f4f4}td.best{font-weight:bold}
.charts,.tiles{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
figure{margin:0}figcaption{font-size:12px;color:#555;text-align:center}
img.px{image-rendering:pixelated;border:1px solid #ccc}
.tokens{line-height:1.9;font-size:14px}.tok{padding:1px 2px;border-radius:3px}
.group{margin:6px 0}.gl{font-size:12px;color:#555;margin-right:8px}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}.note{color:#666;font-size:12px}`;

/** Wrap body HTML in a complete, self-contained document (inline CSS, no external assets). */
export function htmlDocument(title: string, body: string): string {
  return `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>${escapeXml(title)}</title>\n<style>${STYLE}</style>\n</head>\n<body>\n${body}\n</body>\n</html>\n`;
}

function fmt(v: number): string {
  return Number.isFinite(v) ? (Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(3) : v.toExponential(2)) : String(v);
}

function groupOrder(g: GroupSet, max: number): number[] {
  const idx = Array.from({ length: g.count }, (_, j) => j);
  idx.sort((a, b) => g.weights[b] - g.weights[a] || a - b);
  return idx.slice(0, max);
}

/** Upsample one row of a [count, P] mask set to H×W (input-level masks pass through). */
function maskAt(masks: ArrayLike<number>, j: number, count: number, h: number, w: number, grid?: number[]): Float32Array {
  const per = masks.length / count;
  const out = new Float32Array(h * w);
  if (per === h * w) {
    for (let i = 0; i < h * w; i++) out[i] = masks[j * per + i];
    return out;
  }
  const [gh, gw] = grid && grid.length === 2 ? grid : grid && grid.length === 1 ? [1, grid[0]] : [0, 0];
  if (gh * gw !== per) {
    throw new UserError(`image masks have ${per} values per group, neither H·W = ${h * w} nor a feature grid`, 'pass input-level masks [count, H·W] or feature masks with grid: [gh, gw]');
  }
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = masks[j * per + Math.floor((y * gh) / h) * gw + Math.floor((x * gw) / w)];
  return out;
}

function imageTile(uri: string, caption: string, size: number, w: number, h: number): string {
  const dh = Math.round((size * h) / w);
  return `<figure><img class="px" src="${uri}" width="${size}" height="${dh}" alt="${escapeXml(caption)}"><figcaption>${escapeXml(caption)}</figcaption></figure>`;
}

/** Image example: the input, an optional attribution heat map, and each top group as an overlay (outside dimmed). */
export function renderImageExample(ex: ImageExample): string {
  const base = floatImageToRgb(ex.pixels, ex.shape);
  const { width: w, height: h } = base;
  const size = ex.tileSize ?? 160;
  const tiles: string[] = [imageTile(pngDataUri(encodePng(base)), 'input', size, w, h)];
  if (ex.attributions) {
    const a = maskAt(ex.attributions, 0, 1, h, w, ex.grid ?? ex.groups?.grid);
    let mx = 0;
    for (const v of a) mx = Math.max(mx, Math.abs(v));
    const heat: RasterImage = { width: w, height: h, channels: 3, data: new Uint8Array(w * h * 3) };
    for (let i = 0; i < w * h; i++) {
      const t = mx > 0 ? a[i] / mx : 0;
      const target = t >= 0 ? [230, 40, 20] : [20, 80, 230];
      const alpha = Math.min(1, Math.abs(t)) * 0.7;
      for (let k = 0; k < 3; k++) heat.data[i * 3 + k] = Math.round(base.data[i * 3 + k] * (1 - alpha) + target[k] * alpha);
    }
    tiles.push(imageTile(pngDataUri(encodePng(heat)), 'attribution', size, w, h));
  }
  if (ex.groups) {
    for (const j of groupOrder(ex.groups, ex.maxGroups ?? 8)) {
      const m = maskAt(ex.groups.masks, j, ex.groups.count, h, w, ex.groups.grid ?? ex.grid);
      const img: RasterImage = { width: w, height: h, channels: 4, data: new Uint8Array(w * h * 4) };
      for (let i = 0; i < w * h; i++) {
        const on = m[i] > 0.5;
        for (let k = 0; k < 3; k++) img.data[i * 4 + k] = on ? base.data[i * 3 + k] : Math.round(base.data[i * 3 + k] * 0.2 + 255 * 0.15);
        img.data[i * 4 + 3] = 255;
      }
      tiles.push(imageTile(pngDataUri(encodePng(img)), `group ${j} · w = ${fmt(ex.groups.weights[j])}`, size, w, h));
    }
  }
  return `<div class="example image">${ex.title ? `<h3>${escapeXml(ex.title)}</h3>` : ''}<div class="tiles">${tiles.join('')}</div></div>`;
}

function tokenLine(tokens: string[], strength: (i: number) => number): string {
  const out: string[] = [];
  tokens.forEach((tok, i) => {
    const cont = tok.startsWith('##') && i > 0;
    const text = cont ? tok.slice(2) : tok;
    const s = Math.max(-1, Math.min(1, strength(i)));
    const style = s === 0 ? '' : ` style="background:rgba(${s > 0 ? '230,90,20' : '20,90,230'},${(0.15 + 0.7 * Math.abs(s)).toFixed(2)})"`;
    out.push(`${cont || i === 0 ? '' : ' '}<span class="tok"${style}>${escapeXml(text)}</span>`);
  });
  return out.join('');
}

/** Text example: the attribution as highlighted tokens and each top group as a line of highlighted spans. */
export function renderTextExample(ex: TextExample): string {
  const parts: string[] = [];
  const L = ex.tokens.length;
  if (ex.attributions) {
    let mx = 0;
    for (let i = 0; i < L; i++) mx = Math.max(mx, Math.abs(ex.attributions[i]));
    parts.push(`<div class="group"><span class="gl">attribution</span><span class="tokens">${tokenLine(ex.tokens, (i) => (mx > 0 ? ex.attributions![i] / mx : 0))}</span></div>`);
  }
  if (ex.groups) {
    const g = ex.groups;
    const per = g.masks.length / g.count;
    if (per !== L) throw new UserError(`text groups have ${per} values per group but there are ${L} tokens`, 'pass group masks [count, tokens]');
    let mw = 0;
    for (let j = 0; j < g.count; j++) mw = Math.max(mw, Math.abs(g.weights[j]));
    for (const j of groupOrder(g, ex.maxGroups ?? 8)) {
      const wj = g.weights[j];
      const s = mw > 0 ? Math.sign(wj) * (0.3 + (0.7 * Math.abs(wj)) / mw) : 1;
      parts.push(
        `<div class="group"><span class="gl">group ${j} · w = ${fmt(wj)}</span><span class="tokens">${tokenLine(ex.tokens, (i) => (g.masks[j * per + i] > 0.5 ? s || 1 : 0))}</span></div>`,
      );
    }
  }
  if (parts.length === 0) parts.push(`<div class="tokens">${tokenLine(ex.tokens, () => 0)}</div>`);
  return `<div class="example text">${ex.title ? `<h3>${escapeXml(ex.title)}</h3>` : ''}${parts.join('')}</div>`;
}

/** Tabular example: a ranking of features by |attribution| as a bar chart, and groups with their weights. */
export function renderTabularExample(ex: TabularExample): string {
  const parts: string[] = [];
  const names = ex.featureNames;
  const label = (j: number) => (ex.values ? `${names[j]} = ${fmt(ex.values[j])}` : names[j]);
  if (ex.attributions) {
    const idx = names.map((_, j) => j).sort((a, b) => Math.abs(ex.attributions![b]) - Math.abs(ex.attributions![a]) || a - b);
    const top = idx.slice(0, ex.maxFeatures ?? 20);
    parts.push(barChart(top.map(label), top.map((j) => ex.attributions![j]), { title: 'feature attribution', width: 520 }));
  }
  if (ex.groups) {
    const g = ex.groups;
    const per = g.masks.length / g.count;
    if (per !== names.length) throw new UserError(`tabular groups have ${per} values per group but there are ${names.length} features`, 'pass group masks [count, d]');
    const order = groupOrder(g, ex.maxGroups ?? 8);
    const labels = order.map((j) => {
      const members = names.filter((_, k) => g.masks[j * per + k] > 0.5);
      const text = members.length > 4 ? `${members.slice(0, 4).join(', ')}, +${members.length - 4}` : members.join(', ');
      return `g${j}: ${text || '(empty)'}`;
    });
    parts.push(barChart(labels, order.map((j) => g.weights[j]), { title: 'group weights', width: 620 }));
  }
  return `<div class="example tabular">${ex.title ? `<h3>${escapeXml(ex.title)}</h3>` : ''}<div class="charts">${parts.join('')}</div></div>`;
}

export function renderExamples(examples: ReportExamples): string {
  return [...(examples.images ?? []).map(renderImageExample), ...(examples.texts ?? []).map(renderTextExample), ...(examples.tabular ?? []).map(renderTabularExample)].join('\n');
}

/** One input's explanation, for `sop explain --html`. */
export interface ExplanationView {
  title?: string;
  method?: string;
  /** e.g. "predicted: cat (0.93)". */
  prediction?: string;
  image?: ImageExample;
  text?: TextExample;
  tabular?: TabularExample;
}

/** A complete self-contained HTML page showing one input's groups (or attribution). */
export function renderExplanationHtml(view: ExplanationView): string {
  const title = view.title ?? `Explanation${view.method ? ` (${view.method})` : ''}`;
  const parts = [`<h1>${escapeXml(title)}</h1>`];
  if (view.method || view.prediction) {
    parts.push(`<p>${view.method ? `method: <b>${escapeXml(view.method)}</b>` : ''}${view.method && view.prediction ? ' · ' : ''}${view.prediction ? escapeXml(view.prediction) : ''}</p>`);
  }
  parts.push('<section id="explanation">');
  if (view.image) parts.push(renderImageExample(view.image));
  if (view.text) parts.push(renderTextExample(view.text));
  if (view.tabular) parts.push(renderTabularExample(view.tabular));
  parts.push('</section>');
  return htmlDocument(title, parts.join('\n'));
}

/** The results table as HTML (best per column in bold). */
export function htmlTable(result: Pick<EvaluationResult, 'rows' | 'metrics'>): string {
  const cols = result.metrics.filter((m) => result.rows.some((r) => typeof r[m.name] === 'number'));
  const best = cols.map((m) => bestRow(result.rows, m));
  const head = `<thead><tr><th>Method</th>${cols.map((m) => `<th title="${escapeXml(`${m.name} (${m.category})`)}">${escapeXml(metricHeader(m))}</th>`).join('')}</tr></thead>`;
  const body = result.rows
    .map((r, i) => {
      const cells = cols.map((m, j) => `<td${best[j] === i ? ' class="best"' : ''}>${escapeXml(formatMeanStd(r[m.name] as number | undefined, r[`${m.name}_std`] as number | undefined))}</td>`);
      return `<tr><td>${escapeXml(r.method)}</td>${cells.join('')}</tr>`;
    })
    .join('');
  return `<table>${head}<tbody>${body}</tbody></table>`;
}

export interface ReportHtmlOptions {
  title?: string;
  config?: unknown;
  examples?: ReportExamples;
}

/**
 * The evaluation report: results table, sparsity curves, insertion/deletion curves per method, examples, skipped
 * metrics and the config. Self-contained (inline CSS, inline SVG, PNG data URIs).
 */
export function renderReportHtml(result: EvaluationResult, options: ReportHtmlOptions = {}): string {
  const title = options.title ?? 'SOP evaluation report';
  const parts: string[] = [];
  parts.push(`<h1>${escapeXml(title)}</h1>`);
  parts.push(
    `<p class="note">${escapeXml(`${result.task} · ${result.modality} · ${result.numExamples} examples · ${result.numFeatures} features · ${result.numOutputs} outputs · keep ${result.keep} · budget ${result.budget} · seed ${result.seed}`)}</p>`,
  );
  parts.push(`<section id="summary"><h2>Results</h2>${htmlTable(result)}<p class="note">mean ± bootstrap std; ↑ higher is better, ↓ lower is better; best method per column in bold (backbone row excluded).</p></section>`);
  const methods = Object.entries(result.meta ?? {});
  if (methods.length > 0) {
    const rows = methods
      .map(([name, m]) => {
        const ev = typeof m.evaluations === 'number' ? m.evaluations / Math.max(1, result.numExamples) : undefined;
        const kind = name === 'backbone' ? 'unmasked model' : m.faithfulByConstruction ? 'faithful by construction' : 'post-hoc (-F)';
        return `<tr><td>${escapeXml(name)}</td><td>${escapeXml(kind)}</td><td>${ev === undefined ? '–' : escapeXml(ev.toFixed(1))}</td></tr>`;
      })
      .join('');
    parts.push(`<section id="methods"><h2>Methods</h2><table><thead><tr><th>Method</th><th>Kind</th><th>Model evaluations per example (main explanation)</th></tr></thead><tbody>${rows}</tbody></table></section>`);
  }
  const sp = result.curves.sparsity;
  if (sp.length > 0) {
    const yl = sp[0].kind === 'error' ? 'error' : 'MSE';
    parts.push(
      `<section id="sparsity"><h2>Sparsity curve</h2><div class="charts">${lineChart(
        sp.map((s) => ({ name: s.method, x: s.keeps, y: s.values })),
        { title: `${yl} vs fraction of features kept`, xLabel: 'keep fraction', yLabel: yl, width: 520, height: 320 },
      )}</div></section>`,
    );
  }
  const id = result.curves.insertionDeletion;
  if (id.length > 0) {
    const yl = id[0].kind === 'probability' ? 'p(original class)' : 'MSE';
    const charts = id.map((c) =>
      lineChart(
        [
          { name: 'insertion', x: c.fractions, y: c.insertion },
          { name: 'deletion', x: c.fractions, y: c.deletion },
        ],
        { title: `${c.method} (${c.mode})`, xLabel: 'fraction of features kept', yLabel: yl, yRange: c.kind === 'probability' ? [0, 1] : undefined, width: 340, height: 250 },
      ),
    );
    const ins = lineChart(id.map((c) => ({ name: c.method, x: c.fractions, y: c.insertion })), { title: 'insertion, all methods', xLabel: 'fraction kept', yLabel: yl, width: 420, height: 280 });
    const del = lineChart(id.map((c) => ({ name: c.method, x: c.fractions, y: c.deletion })), { title: 'deletion, all methods', xLabel: 'fraction kept (least important first)', yLabel: yl, width: 420, height: 280 });
    parts.push(`<section id="insertion-deletion"><h2>Insertion / deletion</h2><div class="charts">${ins}${del}</div><div class="charts">${charts.join('')}</div></section>`);
  }
  if (options.examples) {
    const ex = renderExamples(options.examples);
    if (ex) parts.push(`<section id="examples"><h2>Examples</h2>${ex}</section>`);
  }
  if (result.skipped.length > 0) {
    parts.push(
      `<section id="skipped"><h2>Not computed</h2><ul>${result.skipped.map((s) => `<li>${escapeXml(`${METRIC_LABELS[s.metric] ?? s.metric} for ${s.method === '*' ? 'all methods' : s.method}: ${s.reason}`)}</li>`).join('')}</ul></section>`,
    );
  }
  if (options.config !== undefined) parts.push(`<section id="config"><h2>Config</h2><pre>${escapeXml(JSON.stringify(options.config, jsonReplacer, 2))}</pre></section>`);
  return htmlDocument(title, parts.join('\n'));
}

/** JSON replacer: typed arrays → arrays, non-finite numbers → null, bigint → string. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? v.toString() : Number.isFinite(v) ? v : null));
  return value;
}
