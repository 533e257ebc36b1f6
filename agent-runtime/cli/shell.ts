import { PicortexError, type ErrorCategory } from "../errors.js";
import { terminalJson, terminalText } from "./terminal-text.js";

/**
 * The one CLI shell every `picortex` subcommand prints and exits through. Exit codes, the
 * same for every command: 0 ok, 1 the operation failed, 2 usage or configuration (a bad
 * argument, an unknown name, a missing data dir or token).
 */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** The exit code of each kind of failure: the one place a `PicortexError` becomes an exit code. */
const EXIT_OF_CATEGORY: Record<ErrorCategory, number> = {
  invalid_input: EXIT_USAGE,
  unauthorized: EXIT_USAGE,
  forbidden: EXIT_USAGE,
  not_found: EXIT_USAGE,
  config: EXIT_USAGE,
  conflict: EXIT_FAILED,
  failed: EXIT_FAILED,
  unavailable: EXIT_FAILED,
};

export function exitCodeOf(err: unknown): number {
  return err instanceof PicortexError ? EXIT_OF_CATEGORY[err.category] : EXIT_FAILED;
}

/** One line (or JSON document) on stdout. */
export function out(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : text + "\n");
}

export interface FailOptions {
  /** What stderr lines start with, e.g. "picortex chat". */
  prefix: string;
  /** `--json`: the error goes to stdout as `{...extra, error: {code, message}}`. */
  json?: boolean;
  /** Fields before `error` in the JSON document (e.g. `{ok: false}`). */
  extra?: Record<string, unknown>;
}

/** Reports a failure (its code and message) and exits with its exit code. */
export function fail(err: unknown, o: FailOptions): never {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof PicortexError ? err.code : "error";
  // A message can carry a runtime's answer or a name from elsewhere: no escape sequences (cli/terminal-text.ts).
  if (o.json) out(terminalJson({ ...o.extra, error: { code, message } }));
  else process.stderr.write(`${o.prefix}: ${terminalText(message)}\n`);
  process.exit(exitCodeOf(err));
}

/** Runs a command's body; any failure goes through `fail`. */
export async function runCommand(o: FailOptions, body: () => unknown): Promise<void> {
  try {
    await body();
  } catch (err) {
    fail(err, o);
  }
}
