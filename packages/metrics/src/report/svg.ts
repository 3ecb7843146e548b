/** Escape text for XML/HTML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A colour-blind-friendly palette (Okabe-Ito), cycled by series index. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];

export interface Series {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color?: string;
}

export interface LineChartOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
  /** Fixed y range; default: the data's range (padded; includes 0 when close). */
  yRange?: [number, number];
  xRange?: [number, number];
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(1);
  return String(Number(v.toFixed(3)));
}

/** "Nice" tick values covering [lo, hi] (about `count` of them). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(12)));
  return out;
}

function extent(values: number[]): [number, number] {
  const f = values.filter(Number.isFinite);
  if (f.length === 0) return [0, 1];
  let lo = Math.min(...f);
  let hi = Math.max(...f);
  if (hi === lo) {
    lo -= 0.5;
    hi += 0.5;
  }
  return [lo, hi];
}

/** A self-contained SVG line chart with axes, ticks, markers and a legend. */
export function lineChart(series: Series[], options: LineChartOptions = {}): string {
  const W = options.width ?? 420;
  const H = options.height ?? 260;
  const m = { l: 52, r: 12, t: options.title ? 26 : 10, b: 40 };
  const legendH = series.length > 1 ? 16 * Math.ceil(series.length / 3) : 0;
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b - legendH;
  const xs = series.flatMap((s) => Array.from(s.x));
  const ys = series.flatMap((s) => Array.from(s.y));
  const [x0, x1] = options.xRange ?? extent(xs);
  let [y0, y1] = options.yRange ?? extent(ys);
  if (!options.yRange) {
    const pad = (y1 - y0) * 0.05;
    y0 = y0 >= 0 && y0 - (y1 - y0) * 0.3 <= 0 ? 0 : y0 - pad;
    y1 += pad;
  }
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0 || 1)) * pw;
  const sy = (y: number) => m.t + ph - ((y - y0) / (y1 - y0 || 1)) * ph;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" font-family="sans-serif" font-size="11">`);
  if (options.title) parts.push(`<title>${escapeXml(options.title)}</title><text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(options.title)}</text>`);
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  for (const t of niceTicks(y0, y1)) {
    const y = sy(t).toFixed(1);
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y}" y2="${y}" stroke="#eee"/><text x="${m.l - 4}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1)) {
    const x = sx(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.t + ph}" y2="${m.t + ph + 4}" stroke="#999"/><text x="${x}" y="${m.t + ph + 15}" text-anchor="middle">${fmt(t)}</text>`);
  }
  if (options.xLabel) parts.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 30}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`);
  if (options.yLabel) parts.push(`<text transform="translate(12 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`);
  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const pts: string[] = [];
    for (let k = 0; k < s.x.length; k++) if (Number.isFinite(s.y[k])) pts.push(`${sx(s.x[k]).toFixed(1)},${sy(s.y[k]).toFixed(1)}`);
    parts.push(`<g><title>${escapeXml(s.name)}</title><polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    for (const p of pts) {
      const [px, py] = p.split(',');
      parts.push(`<circle cx="${px}" cy="${py}" r="2.5" fill="${color}"/>`);
    }
    parts.push('</g>');
    if (series.length > 1) {
      const lx = m.l + (i % 3) * (pw / 3);
      const ly = H - legendH + 16 * Math.floor(i / 3) + 4;
      parts.push(`<rect x="${lx}" y="${ly}" width="10" height="10" fill="${color}"/><text x="${lx + 14}" y="${ly + 9}">${escapeXml(s.name)}</text>`);
    }
  });
  parts.push('</svg>');
  return parts.join('');
}

export interface BarChartOptions {
  title?: string;
  width?: number;
  /** Height of one bar row in px (default 18). */
  rowHeight?: number;
  positiveColor?: string;
  negativeColor?: string;
}

/** A horizontal bar chart (one row per label; negative values extend left of the zero line). */
export function barChart(labels: string[], values: ArrayLike<number>, options: BarChartOptions = {}): string {
  const W = options.width ?? 420;
  const rh = options.rowHeight ?? 18;
  const top = options.title ? 24 : 6;
  const H = top + rh * labels.length + 6;
  const labelW = Math.min(160, 12 + 6.5 * Math.max(1, ...labels.map((l) => l.length)));
  const valueW = 56;
  const pw = W - labelW - valueW - 8;
  const vals = Array.from(values).slice(0, labels.length);
  const lo = Math.min(0, ...vals.filter(Number.isFinite));
  const hi = Math.max(0, ...vals.filter(Number.isFinite));
  const span = hi - lo || 1;
  const sx = (v: number) => labelW + ((v - lo) / span) * pw;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" font-family="sans-serif" font-size="11">`);
  if (options.title) parts.push(`<title>${escapeXml(options.title)}</title><text x="${W / 2}" y="15" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(options.title)}</text>`);
  labels.forEach((label, i) => {
    const v = vals[i] ?? 0;
    const y = top + i * rh;
    const a = sx(Math.min(0, v));
    const b = sx(Math.max(0, v));
    const color = v >= 0 ? (options.positiveColor ?? '#D55E00') : (options.negativeColor ?? '#0072B2');
    parts.push(
      `<text x="${labelW - 4}" y="${y + rh / 2}" text-anchor="end" dominant-baseline="middle">${escapeXml(label)}</text>` +
        `<rect x="${a.toFixed(1)}" y="${y + 2}" width="${Math.max(0.5, b - a).toFixed(1)}" height="${rh - 4}" fill="${color}"><title>${escapeXml(`${label}: ${fmt(v)}`)}</title></rect>` +
        `<text x="${W - valueW}" y="${y + rh / 2}" dominant-baseline="middle">${fmt(v)}</text>`,
    );
  });
  parts.push(`<line x1="${sx(0).toFixed(1)}" x2="${sx(0).toFixed(1)}" y1="${top}" y2="${H - 6}" stroke="#333"/>`);
  parts.push('</svg>');
  return parts.join('');
}
