/** Why a brain operation failed, in words a person or agent can act on. */
export type BrainErrorCode = "invalid_input" | "not_found" | "conflict";

export class BrainError extends Error {
  constructor(
    readonly code: BrainErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "BrainError";
  }
}

/** Why a sync failed. `unreachable` and `server` are retried with backoff; the rest are not. */
export type SyncErrorKind = "unreachable" | "unauthorized" | "rejected" | "server" | "not_configured";

export class SyncError extends Error {
  constructor(
    readonly kind: SyncErrorKind,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "SyncError";
  }

  get retryable(): boolean {
    return this.kind === "unreachable" || this.kind === "server";
  }
}
