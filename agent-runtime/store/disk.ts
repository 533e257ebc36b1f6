import { statfsSync } from "node:fs";
import { HttpError } from "../http/errors.js";

/**
 * Free space the runtime wants in its data dir before it calls a full disk healed:
 * SQLite's WAL grows by whole pages per commit and a checkpoint needs room for the
 * pages it moves, so a few bytes free are not enough to work again.
 */
export const DISK_HEADROOM_BYTES = 16 * 1024 * 1024;

const mib = (n: number) => `${Math.ceil(n / (1024 * 1024))} MiB`;

/** A write failed because the filesystem holding `path` is full. Maps to HTTP 507. */
export class DiskFullError extends HttpError {
  constructor(
    readonly path: string,
    readonly freeBytes: number | undefined,
    readonly needBytes: number,
    cause?: unknown,
  ) {
    super(
      507,
      "disk_full",
      `disk full: ${path}, need ~${mib(needBytes)} free (${freeBytes === undefined ? "free space unknown" : `${mib(freeBytes)} free`}). ` +
        "Free space there; the runtime keeps serving reads and recovers by itself once there is room, no restart needed.",
      { path, freeBytes: freeBytes ?? null, needBytes },
      { cause },
    );
  }
}

export function freeBytes(path: string): number | undefined {
  try {
    const s = statfsSync(path);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}

/** True when `err` is a full disk: SQLITE_FULL, ENOSPC/EDQUOT, or an SQLite I/O error on a filesystem with no room. */
function looksFull(err: unknown, path: string): boolean {
  const code = String((err as { code?: unknown })?.code ?? "");
  if (code === "SQLITE_FULL" || code === "ENOSPC" || code === "EDQUOT") return true;
  if (code.startsWith("SQLITE_IOERR")) {
    const free = freeBytes(path);
    return free !== undefined && free < DISK_HEADROOM_BYTES;
  }
  return false;
}

export interface DiskStatus {
  path: string;
  full: boolean;
  freeBytes: number | null;
  needBytes: number;
  /** When the last write failed for lack of space (ISO), while the disk is reported full. */
  since: string | null;
  message: string | null;
}

/**
 * Tracks whether the data dir's filesystem is full. Writers report failures here
 * (`check`); the condition clears by itself once a write succeeds again or the free
 * space is back above the headroom, so the runtime recovers without a restart.
 */
export class DiskHealth {
  private fullSince: number | undefined;
  private last: DiskFullError | undefined;

  constructor(readonly path: string) {}

  /** The typed error when `err` is a full disk (and records it), otherwise undefined. */
  classify(err: unknown): DiskFullError | undefined {
    if (err instanceof DiskFullError) return err;
    if (!looksFull(err, this.path)) return undefined;
    const e = new DiskFullError(this.path, freeBytes(this.path), DISK_HEADROOM_BYTES, err);
    this.fullSince ??= Date.now();
    this.last = e;
    return e;
  }

  /** Rethrows a full disk as DiskFullError; anything else unchanged. */
  rethrow(err: unknown): never {
    throw this.classify(err) ?? err;
  }

  /** A write went through: the disk has room again. */
  ok(): void {
    this.fullSince = undefined;
    this.last = undefined;
  }

  get full(): boolean {
    if (this.fullSince === undefined) return false;
    const free = freeBytes(this.path);
    if (free !== undefined && free >= DISK_HEADROOM_BYTES) this.ok();
    return this.fullSince !== undefined;
  }

  status(): DiskStatus {
    const full = this.full;
    return {
      path: this.path,
      full,
      freeBytes: freeBytes(this.path) ?? null,
      needBytes: DISK_HEADROOM_BYTES,
      since: full && this.fullSince ? new Date(this.fullSince).toISOString() : null,
      message: full ? (this.last?.message ?? null) : null,
    };
  }
}
