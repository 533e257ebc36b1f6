import { PicortexError, type ErrorCategory } from "../../errors.js";

/** Why a brain operation failed, in words a person or agent can act on. */
export type BrainErrorCode = "invalid_input" | "not_found" | "conflict" | "rate_limited";

export class BrainError extends PicortexError {
  declare readonly code: BrainErrorCode;

  constructor(code: BrainErrorCode, message: string, options?: { cause?: unknown }) {
    super(code === "rate_limited" ? "unavailable" : code, code, message, options);
  }
}

/** Why a sync failed. `unreachable` and `server` are retried with backoff; the rest are not. */
export type SyncErrorKind = "unreachable" | "unauthorized" | "rejected" | "server" | "not_configured";

const SYNC_CATEGORY: Record<SyncErrorKind, ErrorCategory> = {
  unreachable: "unavailable",
  server: "unavailable",
  unauthorized: "failed",
  rejected: "failed",
  not_configured: "config",
};

/** Code `sync_<kind>`; a sync that is not configured is a usage error (exit 2), any other failed (exit 1). */
export class SyncError extends PicortexError {
  constructor(
    readonly kind: SyncErrorKind,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(SYNC_CATEGORY[kind], `sync_${kind}`, message, options);
  }

  get retryable(): boolean {
    return this.kind === "unreachable" || this.kind === "server";
  }
}
