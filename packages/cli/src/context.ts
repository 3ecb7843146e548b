import type { Container } from 'inversify';
import { resolve } from 'node:path';
import { buildContainer } from './container.js';
import { Progress, type CliIO } from './io.js';

export interface GlobalArgs {
  json?: boolean;
  plugin?: string[];
  [key: string]: unknown;
}

/** What every command handler gets: IO, a lazily built container, JSON output and progress helpers. */
export class CliContext {
  private cached?: Promise<Container>;

  constructor(readonly io: CliIO) {}

  container(args: GlobalArgs): Promise<Container> {
    this.cached ??= buildContainer((args.plugin ?? []).map((p) => String(p)), process.cwd());
    return this.cached;
  }

  /** With --json, the last stdout line is this one JSON object. */
  json(args: GlobalArgs, value: unknown): void {
    if (args.json) this.io.out(JSON.stringify(value));
  }

  /** Human-readable lines: stdout normally, stderr under --json (so stdout stays machine-readable). */
  say(args: GlobalArgs, line: string): void {
    if (args.json) this.io.err(line);
    else this.io.out(line);
  }

  progress(label: string, total: number): Progress {
    return new Progress(this.io, label, total);
  }

  resolvePath(p: string): string {
    return resolve(process.cwd(), p);
  }
}
