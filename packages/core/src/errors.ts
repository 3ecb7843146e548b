/**
 * Typed errors. A {@link UserError} is the user's to fix (bad config, missing file, bad input): the CLI exits 1 and
 * prints `message` and `fix`. Anything else is an internal error (exit 2).
 */
export class SopError extends Error {
  constructor(message: string, readonly fix?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The user's input is wrong; `fix` says what to do about it. CLI exit code 1. */
export class UserError extends SopError {
  readonly exitCode = 1;
}

/** A bug or an environment failure. CLI exit code 2. */
export class InternalError extends SopError {
  readonly exitCode = 2;
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/** Format an error for a terminal: message, then `fix:` on its own line. */
export function formatError(e: unknown): string {
  if (e instanceof SopError) return e.fix ? `${e.message}\n  fix: ${e.fix}` : e.message;
  if (e instanceof Error) return e.stack ?? e.message;
  return String(e);
}
