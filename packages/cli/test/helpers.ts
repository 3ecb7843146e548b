import { runCli, type CliIO } from '@sop/cli';

export interface CliResult {
  code: number;
  stdout: string[];
  stderr: string[];
  /** the last stdout line parsed as JSON (when --json) */
  json: any;
}

export async function sop(...argv: string[]): Promise<CliResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIO = { out: (l) => stdout.push(l), err: (l) => stderr.push(l), isTTY: false };
  const code = await runCli(argv, io);
  let json: any;
  const last = stdout[stdout.length - 1];
  if (argv.includes('--json') && last) {
    try {
      json = JSON.parse(last);
    } catch {
      json = undefined;
    }
  }
  return { code, stdout, stderr, json };
}
