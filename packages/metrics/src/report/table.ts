import type { MetricDirection } from '@sop/core';
import type { EvaluationResult, EvaluationRow, MetricInfo } from '../evaluate.js';

/** Column titles for the built-in metrics (Table 1 style); other metrics use their own name. */
export const METRIC_LABELS: Record<string, string> = {
  error: 'Err',
  accuracy: 'Acc',
  mse: 'MSE',
  coverage: 'Coverage ("IOU")',
  iou: 'IoU',
  purity: 'Pur',
  fidelity: 'Fid',
  insertion: 'Ins',
  deletion: 'Del',
  'insertion-auc': 'Ins AUC',
  'deletion-auc': 'Del AUC',
  'insertion-mse': 'Ins (MSE)',
  'deletion-mse': 'Del (MSE)',
  'sparsity-curve': 'Sparsity (mean err)',
  'group-leakage': 'Leakage',
};

export function arrow(direction: MetricDirection): string {
  return direction === 'higher' ? '↑' : '↓';
}

export function metricHeader(m: MetricInfo): string {
  return `${METRIC_LABELS[m.name] ?? m.name} ${arrow(m.direction)}`;
}

/**
 * The paper's number format: `0.267±.017` (value with `digits` decimals; std without its leading zero). A missing std
 * gives just the value; a missing value gives `–`.
 */
export function formatMeanStd(value: number | undefined, std?: number, digits = 3): string {
  if (value === undefined || typeof value !== 'number') return '–';
  if (!Number.isFinite(value)) return Number.isNaN(value) ? 'NaN' : String(value);
  const v = value.toFixed(digits);
  const fixed = value !== 0 && Math.abs(value) < 10 ** -digits ? value.toExponential(1) : v;
  if (std === undefined || !Number.isFinite(std)) return fixed;
  const s = std.toFixed(digits).replace(/^0\./, '.');
  return `${fixed}±${s}`;
}

/** Index of the best row for a metric (ignoring the backbone row); -1 when fewer than two methods have the value. */
export function bestRow(rows: EvaluationRow[], m: MetricInfo): number {
  let best = -1;
  let count = 0;
  rows.forEach((r, i) => {
    const v = r[m.name];
    if (r.method === 'backbone' || typeof v !== 'number' || !Number.isFinite(v)) return;
    count++;
    const b = best >= 0 ? (rows[best][m.name] as number) : undefined;
    if (b === undefined || (m.direction === 'higher' ? v > b : v < b)) best = i;
  });
  return count >= 2 ? best : -1;
}

function escapeMd(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/**
 * A Markdown table shaped like the SOP paper's Table 1: one row per method, one column per metric titled with ↑/↓,
 * cells `mean±std`, the best method per column in bold.
 */
export function markdownTable(result: Pick<EvaluationResult, 'rows' | 'metrics'>, digits = 3): string {
  const cols = result.metrics.filter((m) => result.rows.some((r) => typeof r[m.name] === 'number'));
  const header = `| Method | ${cols.map((m) => escapeMd(metricHeader(m))).join(' | ')} |`;
  const rule = `|---|${cols.map(() => '---').join('|')}|`;
  const best = cols.map((m) => bestRow(result.rows, m));
  const lines = result.rows.map((r, i) => {
    const cells = cols.map((m, j) => {
      const cell = formatMeanStd(r[m.name] as number | undefined, r[`${m.name}_std`] as number | undefined, digits);
      return best[j] === i ? `**${cell}**` : cell;
    });
    return `| ${escapeMd(r.method)} | ${cells.join(' | ')} |`;
  });
  return [header, rule, ...lines].join('\n') + '\n';
}

/** RFC 4180 field: quoted when it contains a comma, quote, CR or LF; quotes doubled. */
export function csvField(v: unknown): string {
  const s = v === undefined || v === null ? '' : typeof v === 'number' ? (Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : String(v)) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV with a header `method,<metric>,<metric>_std,…` and one line per method (CRLF-free, `\n` line ends). */
export function toCsv(result: Pick<EvaluationResult, 'rows' | 'metrics'>): string {
  const cols = result.metrics.flatMap((m) => [m.name, `${m.name}_std`]);
  const lines = [['method', ...cols].map(csvField).join(',')];
  for (const r of result.rows) lines.push([r.method, ...cols.map((c) => r[c])].map(csvField).join(','));
  return lines.join('\n') + '\n';
}
