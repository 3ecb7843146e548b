import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, writeFileAtomic } from '@sop/core';
import type { EvaluationResult } from '../evaluate.js';
import { jsonReplacer, renderReportHtml, type ReportExamples } from './html.js';
import { markdownTable, toCsv } from './table.js';

export interface WriteReportOptions {
  config?: unknown;
  examples?: ReportExamples;
  title?: string;
  /** Overwrite report files that already exist in `dir` (default false: refuse). */
  force?: boolean;
}

export const REPORT_FILES = ['results.json', 'results.csv', 'results.md', 'report.html'] as const;

/** The JSON document written as results.json (everything but the per-example runs). */
export function resultsJson(result: EvaluationResult, config?: unknown): string {
  const { runs: _runs, ...rest } = result;
  return JSON.stringify({ ...rest, ...(config !== undefined ? { config } : {}) }, jsonReplacer, 2) + '\n';
}

/**
 * Write results.json, results.csv, results.md (Table 1-shaped) and a self-contained report.html into `dir`, each
 * atomically. Refuses to overwrite existing report files unless `force`. Returns the paths written.
 */
export function writeReport(dir: string, result: EvaluationResult, options: WriteReportOptions = {}): string[] {
  const paths = REPORT_FILES.map((f) => join(dir, f));
  if (!options.force) {
    const existing = paths.filter((p) => existsSync(p));
    if (existing.length > 0) throw new UserError(`report files already exist: ${existing.join(', ')}`, 'choose another output folder, or pass --force to overwrite');
  }
  const title = options.title ?? 'SOP evaluation report';
  const md = `# ${title}\n\n${result.task} · ${result.modality} · ${result.numExamples} examples · keep ${result.keep} · budget ${result.budget}\n\n${markdownTable(result)}\nmean ± bootstrap std; ↑ higher is better, ↓ lower is better; best method per column in bold.\n`;
  writeFileAtomic(paths[0], resultsJson(result, options.config));
  writeFileAtomic(paths[1], toCsv(result));
  writeFileAtomic(paths[2], md);
  writeFileAtomic(paths[3], renderReportHtml(result, { title, config: options.config, examples: options.examples }));
  return paths;
}
