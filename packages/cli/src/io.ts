/** Where the CLI writes: stdout for results, stderr for progress and logs. Injectable for tests. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
  /** true when stderr is a terminal (draw a progress bar) */
  isTTY: boolean;
}

export const processIO: CliIO = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
  isTTY: Boolean(process.stderr.isTTY),
};

/** Progress: a redrawn bar on a TTY, plain lines (about every 10%) otherwise. */
export class Progress {
  private lastPct = -1;
  private lastDraw = 0;
  private readonly start = Date.now();

  constructor(
    private readonly io: CliIO,
    private readonly label: string,
    private total: number,
  ) {}

  update(done: number, extra = '', total = this.total): void {
    this.total = total;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const pct = Math.floor(frac * 100);
    const elapsed = (Date.now() - this.start) / 1000;
    const eta = frac > 0 ? (elapsed / frac) * (1 - frac) : 0;
    if (this.io.isTTY) {
      const now = Date.now();
      if (now - this.lastDraw < 80 && done < total) return;
      this.lastDraw = now;
      const width = 28;
      const filled = Math.round(frac * width);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      process.stderr.write(`\r${this.label} ${bar} ${String(pct).padStart(3)}% ${done}/${total} ${fmtTime(elapsed)}<${fmtTime(eta)} ${extra}\x1b[K`);
      if (done >= total) process.stderr.write('\n');
    } else {
      const step = Math.floor(pct / 10) * 10;
      if (step !== this.lastPct && (step > this.lastPct || done >= total)) {
        this.lastPct = step;
        this.io.err(`${this.label}: ${done}/${total} (${pct}%) ${fmtTime(elapsed)} elapsed ${extra}`.trimEnd());
      }
    }
  }
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  return m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
