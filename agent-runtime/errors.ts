/**
 * What kind of failure an error is. The category alone decides the HTTP status
 * (`httpStatusOf` in http/errors.ts) and the CLI exit code (`exitCodeOf` in cli/shell.ts),
 * each mapped in one place.
 */
export type ErrorCategory =
  /** The caller's input is wrong (a bad argument, body or name): 400, exit 2. */
  | "invalid_input"
  /** Missing or wrong credentials: 401, exit 2. */
  | "unauthorized"
  /** Not allowed for this caller: 403, exit 2. */
  | "forbidden"
  /** The named thing does not exist: 404, exit 2. */
  | "not_found"
  /** The state does not allow it (already exists, not ready): 409, exit 1. */
  | "conflict"
  /** Configuration or state on disk that the operator must fix: 500, exit 2. */
  | "config"
  /** The operation was tried and failed: 500, exit 1. */
  | "failed"
  /** A dependency is unreachable or out of resources; retrying later may work: 503, exit 1. */
  | "unavailable";

/**
 * The one error base of the runtime: a `category` (how callers react), a stable `code`
 * (API clients, `--json` output and tests match on it), a message that says what to do,
 * and the `cause` it wraps.
 */
export class PicortexError extends Error {
  readonly details: unknown;

  constructor(
    readonly category: ErrorCategory,
    readonly code: string,
    message: string,
    options?: { cause?: unknown; details?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options?.details;
  }
}
