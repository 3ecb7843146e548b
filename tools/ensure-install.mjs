// Makes `pnpm sop ...` and `pnpm test` work on a fresh clone: installs dependencies (from the committed lockfile)
// when node_modules is missing or older than pnpm-lock.yaml. Quiet when everything is in place.
import { existsSync, statSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const marker = join(root, 'node_modules', '.pnpm', 'lock.yaml');
const lock = join(root, 'pnpm-lock.yaml');
const stale = !existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000);
if (stale) {
  process.stderr.write('sop: installing dependencies (pnpm install --frozen-lockfile) ...\n');
  execSync('pnpm install --frozen-lockfile --reporter=append-only', { cwd: root, stdio: ['ignore', 2, 2] });
}
