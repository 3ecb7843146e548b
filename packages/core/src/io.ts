import { existsSync, mkdirSync, renameSync, writeFileSync, rmSync, readdirSync, statSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { UserError } from './errors.js';

/** Write a file atomically: write `path.tmp-<pid>` then rename over `path`. Creates parent folders. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now()}`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Make sure `dir` can be used as an output folder: refuses a non-empty existing folder unless `force`.
 */
export function prepareOutDir(dir: string, force = false, flag = '--force'): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new UserError(`output path ${dir} exists and is not a folder`, 'choose another --out');
    if (readdirSync(dir).length > 0 && !force) {
      throw new UserError(`output folder ${dir} already exists and is not empty`, `choose another --out, or pass ${flag} to overwrite it`);
    }
  }
  mkdirSync(dir, { recursive: true });
}

/** Read a file, turning "not found" into a UserError naming `what`. */
export function requireFile(path: string, what: string): void {
  if (!existsSync(path)) throw new UserError(`${what} not found: ${path}`, 'check the path (relative paths are resolved from the config file\'s folder)');
}
