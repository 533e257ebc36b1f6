import { createHash } from "node:crypto";
import { SyncError } from "../shared/errors.js";
import { MAX_CLOCK_SKEW_MS, versionCeiling, type HybridLogicalClock } from "../shared/hlc.js";
import type { BrainRepository } from "../shared/repository.js";
import { MAX_PUSH_ENTRIES, type SyncTransport } from "../shared/sync-protocol.js";

export interface RetryPolicy {
  /** Attempts per request, including the first. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/**
 * 8 attempts, backoff 0.5 s doubling to 8 s with "equal jitter" (at least half of each
 * step): at least ~16 s and at most ~32 s of retrying, so a server restart (~1.5 s, plus
 * systemd's RestartSec) or a deploy is waited out instead of failing the sync.
 */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 500, maxDelayMs: 8000 };

/** A replica clock further than this from the server's is corrected on push (and reported). */
export const CLOCK_SKEW_TOLERANCE_MS = 2 * 60_000;

export interface SyncReport {
  /** This machine's clock minus the server's, when it is off by more than the tolerance. */
  clockSkewMs?: number;
  pushed: number;
  pushIgnored: number;
  pulled: number;
  pullSkipped: number;
  cursor: number;
  pending: number;
  /** Entries re-stamped because a clock that ran ahead had written them (see repairClock). */
  repaired: number;
  /**
   * Local edits the server refused because it held a newer version this replica had already
   * pulled: re-stamped above that version and pushed again (see push).
   */
  restamped: number;
  /**
   * Local edits that lost to a concurrent newer version on the server (newest wins); the
   * pull that follows replaces them, and onWarn names them, so nothing is dropped silently.
   */
  superseded: number;
}

export interface SyncStatus {
  pending: number;
  cursor: number;
  lastSyncAt: number | null;
  lastError: string | null;
}

/**
 * Exponential backoff with equal jitter (half the step fixed, half random), for errors
 * that may pass (unreachable, 5xx, 429). The final error says how long it tried.
 */
export async function withRetry<T>(fn: () => Promise<T>, policy: RetryPolicy, onRetry?: (err: SyncError, delayMs: number) => void): Promise<T> {
  const sleep = policy.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = policy.random ?? Math.random;
  let waited = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof SyncError) || !err.retryable) throw err;
      if (attempt >= policy.attempts) {
        if (attempt === 1) throw err;
        throw new SyncError(
          err.kind,
          `${err.message} (gave up after ${attempt} attempts over ${(waited / 1000).toFixed(1)} s; nothing was lost: run \`picortex brain sync\` again once the server is back, or raise --retries)`,
          err.status,
          { cause: err },
        );
      }
      const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const delay = Math.round(step / 2 + random() * (step / 2));
      onRetry?.(err, delay);
      waited += delay;
      await sleep(delay);
    }
  }
}

/**
 * Pushes local writes and pulls everyone else's. Offline-safe: local state changes only
 * inside transactions after a successful response, so a failure at any point leaves the
 * store as it was (pending entries stay pending, the cursor stays put).
 */
export class BrainSyncClient {
  constructor(
    private readonly repo: BrainRepository,
    private readonly clock: HybridLogicalClock,
    private readonly transport: SyncTransport,
    readonly workspaceId: string,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
    private readonly now: () => number = Date.now,
    private readonly onRetry?: (err: SyncError, delayMs: number) => void,
    /** Called after every batch or page of a multi-batch sync, for progress output on long work. */
    private readonly onProgress?: (event: { phase: "push" | "pull"; done: number; cursor?: number }) => void,
    /** Told when entries are re-stamped by repairClock. */
    private readonly onWarn?: (message: string) => void,
  ) {}

  /** Server clock minus this one (ms, ≥ 0) as last measured by sync; 0 when behind or unknown. */
  private serverAheadMs = 0;

  /** The time the skew bound is measured from: this clock, or the server's when it is ahead. */
  private boundNow(): number {
    return this.now() + this.serverAheadMs;
  }

  /**
   * Reads the server's clock and makes it the reference for the skew bound (this client's
   * and the HLC's) when it is ahead: the server accepted every version it holds against its
   * own clock, so a replica must follow them all, however little its clock trails. The
   * `Date` header has 1 s resolution, hence the extra second. Returns the raw offset.
   */
  private async measureServerClock(): Promise<number | undefined> {
    const server = await this.transport.serverTime?.();
    if (server === undefined || !Number.isFinite(server)) return undefined;
    const offset = server - this.now();
    this.serverAheadMs = Math.max(0, Math.round(offset + 1000));
    this.clock.followServer(this.serverAheadMs);
    return offset;
  }

  /**
   * The way back for a replica whose clock ran ahead (a machine set to 2100, or versions
   * pulled before the server bounded them): entries of this workspace with a version
   * beyond the skew bound, or malformed by an overflowed clock, are re-stamped with the
   * current clock and marked for push. The server refuses such versions, so without this
   * the replica's sync would fail for good; with it, the next push also replaces the
   * poisoned copy on the server (an acceptable version always replaces a poisoned one).
   */
  repairClock(): number {
    const poisoned = this.repo.poisonedEntries(this.workspaceId, versionCeiling(this.boundNow()));
    if (poisoned.length === 0) return 0;
    this.onWarn?.(
      `${poisoned.length} entr${poisoned.length === 1 ? "y has a version" : "ies have versions"} dated beyond the allowed clock skew (e.g. ${poisoned[0]!.entryId} at ${poisoned[0]!.version}); re-stamping with this machine's clock and pushing again.`,
    );
    this.repo.saveLocalAll(poisoned.map((e) => ({ ...e, version: this.clock.tick() })));
    return poisoned.length;
  }

  private get cursorKey(): string {
    return `pull_cursor:${this.workspaceId}`;
  }

  status(): SyncStatus {
    const last = this.repo.getMeta(`last_sync_at:${this.workspaceId}`);
    return {
      pending: this.repo.pendingCount(this.workspaceId),
      cursor: Number(this.repo.getMeta(this.cursorKey) ?? "0"),
      lastSyncAt: last ? Number(last) : null,
      lastError: this.repo.getMeta(`last_error:${this.workspaceId}`) || null,
    };
  }

  /**
   * This replica's clock minus the server's (ms) when it is off by more than the
   * tolerance, else 0. A replica an hour behind would otherwise push entries whose
   * updatedAt is an hour in the past, and `recall --since 30m` elsewhere would miss them.
   */
  async clockSkew(): Promise<number> {
    const offset = await this.measureServerClock();
    if (offset === undefined) return 0;
    const skew = -offset;
    return Math.abs(skew) > CLOCK_SKEW_TOLERANCE_MS ? Math.round(skew) : 0;
  }

  async push(skewMs = 0): Promise<{ pushed: number; ignored: number; restamped: number; superseded: number }> {
    let pushed = 0;
    let ignored = 0;
    let restamped = 0;
    let superseded = 0;
    let retried = false;
    for (;;) {
      const pending = this.repo.pendingPush(this.workspaceId, MAX_PUSH_ENTRIES);
      // Times are put on the server's clock for everyone else; the version (HLC), which
      // decides conflicts, is sent unchanged, so this never changes which edit wins.
      const batch = skewMs === 0 ? pending : pending.map((e) => ({ ...e, createdAt: Math.max(0, e.createdAt - skewMs), updatedAt: Math.max(0, e.updatedAt - skewMs) }));
      if (batch.length === 0) break;
      const sent = batch.map((e) => ({ entryId: e.entryId, version: e.version }));
      // The key is derived from exactly what is sent, so a retry after a lost response,
      // even from a restarted process, is recognised by the server as the same batch.
      const idempotencyKey = createHash("sha256")
        .update(sent.map((s) => `${s.entryId}@${s.version}`).join("\n"))
        .digest("base64url");
      const res = await withRetry(() => this.transport.push({ idempotencyKey, entries: batch }), this.retry, this.onRetry);
      this.repo.markPushed(this.workspaceId, sent);
      pushed += res.applied;
      ignored += res.ignored;
      const again = this.settleRefused(res.newer ?? [], sent);
      restamped += again.restamped;
      superseded += again.superseded;
      if (batch.length === MAX_PUSH_ENTRIES) this.onProgress?.({ phase: "push", done: pushed + ignored });
      // Entries edited again mid-push stay pending; stop rather than loop on them forever.
      // Re-stamped edits are pending again: one more pass pushes them (once, never a loop).
      if (batch.length < MAX_PUSH_ENTRIES) {
        if (restamped === 0 || retried) break;
        retried = true;
      }
    }
    return { pushed, ignored, restamped, superseded };
  }

  /**
   * A push the server ignored because it holds a strictly newer version is never just
   * marked pushed. Trigger: `newer` in the push response. If this replica had already
   * pulled that version (its sequence is at or below our cursor) and still holds the edit
   * it pushed, the edit was made after the newer version was seen, yet stamped below it (a
   * clock that did not follow it, e.g. before a restart): it is re-stamped above it and
   * pushed again, so the later edit wins everywhere. Otherwise the two edits were
   * concurrent and newest wins: the next pull brings the newer one, and onWarn says so.
   */
  private settleRefused(newer: NonNullable<Awaited<ReturnType<SyncTransport["push"]>>["newer"]>, sent: Array<{ entryId: string; version: string }>): { restamped: number; superseded: number } {
    let restamped = 0;
    let superseded = 0;
    if (newer.length === 0) return { restamped, superseded };
    const cursor = Number(this.repo.getMeta(this.cursorKey) ?? "0");
    const sentVersion = new Map(sent.map((s) => [s.entryId, s.version]));
    const redo = [];
    for (const n of newer) {
      const mine = sentVersion.get(n.entryId);
      const local = this.repo.get(this.workspaceId, n.entryId);
      if (mine === undefined || !local || local.version !== mine || n.version <= mine) continue;
      // The server accepted n.version against its own clock: follow it even if ours trails by
      // more than we measured, within one more skew bound.
      if (n.seq <= cursor && this.clock.observe(n.version, MAX_CLOCK_SKEW_MS)) {
        redo.push({ ...local, version: this.clock.tick() });
        restamped++;
      } else {
        superseded++;
        this.onWarn?.(`Local edit of ${n.entryId} (${mine}) lost to a concurrent newer edit on the server (${n.version}); the next pull brings that one.`);
      }
    }
    if (redo.length > 0) {
      this.onWarn?.(`${redo.length} local edit${redo.length === 1 ? "" : "s"} (e.g. ${redo[0]!.entryId}) had been stamped below a version already pulled; re-stamped and pushed again.`);
      this.repo.saveLocalAll(redo);
    }
    return { restamped, superseded };
  }

  async pull(): Promise<{ pulled: number; skipped: number; cursor: number; reset: boolean }> {
    let pulled = 0;
    let skipped = 0;
    let reset = false;
    let cursor = Number(this.repo.getMeta(this.cursorKey) ?? "0");
    const serverIdKey = `server_id:${this.workspaceId}`;
    const knownServer = this.repo.getMeta(serverIdKey);
    for (;;) {
      const page = await withRetry(() => this.transport.pull({ cursor }), this.retry, this.onRetry);
      const otherServer = knownServer !== undefined && page.serverId !== knownServer;
      if (page.head < cursor || (otherServer && !reset)) {
        // Trigger: the server's sequence is behind what this client already pulled, or it is
        // another server database. Why: it was restored from an older backup or replaced,
        // and this cursor means nothing there. Outcome: start over from 0 and re-push
        // every local entry, so the clients rebuild the server.
        if (reset) throw new SyncError("server", `Brain server sequence went backwards twice (head ${page.head}, cursor ${cursor}).`);
        this.repo.resetSync(this.workspaceId, this.cursorKey);
        cursor = 0;
        reset = true;
        continue;
      }
      if (page.cursor < cursor) throw new SyncError("server", `Brain server moved the pull cursor backwards (${cursor} → ${page.cursor}).`);
      // Every version seen moves the clock forward, so an edit made after this pull wins over
      // it; a version beyond the skew bound does not (observe refuses it), so it cannot poison the clock.
      for (const e of page.entries) this.clock.observe(e.version);
      const result = this.repo.applyPulled(this.workspaceId, page.entries, this.cursorKey, page.cursor, this.boundNow());
      if (page.serverId !== knownServer) this.repo.setMeta(serverIdKey, page.serverId);
      pulled += result.applied;
      skipped += result.skipped;
      cursor = page.cursor;
      if (!page.hasMore) break;
      this.onProgress?.({ phase: "pull", done: pulled + skipped, cursor });
    }
    return { pulled, skipped, cursor, reset };
  }

  /** Push then pull (or one of them). Records the outcome for `status`, then rethrows any failure. */
  async sync(direction: "both" | "push" | "pull" = "both"): Promise<SyncReport> {
    try {
      // The server's clock first: it is the reference for the skew bound in every step below.
      const measured = await this.clockSkew();
      const repaired = direction === "pull" ? 0 : this.repairClock();
      const skew = direction === "pull" ? 0 : measured;
      const p = direction === "pull" ? { pushed: 0, ignored: 0, restamped: 0, superseded: 0 } : await this.push(skew);
      const q = direction === "push" ? { pulled: 0, skipped: 0, cursor: this.status().cursor, reset: false } : await this.pull();
      // After a server reset, give it back everything this replica holds.
      if (q.reset && direction === "both") {
        const again = await this.push(skew);
        p.pushed += again.pushed;
        p.ignored += again.ignored;
        p.restamped += again.restamped;
        p.superseded += again.superseded;
      }
      this.repo.setMeta(`last_sync_at:${this.workspaceId}`, String(this.now()));
      this.repo.setMeta(`last_error:${this.workspaceId}`, "");
      return { ...(skew ? { clockSkewMs: skew } : {}), pushed: p.pushed, pushIgnored: p.ignored, pulled: q.pulled, pullSkipped: q.skipped, cursor: q.cursor, pending: this.repo.pendingCount(this.workspaceId), repaired, restamped: p.restamped, superseded: p.superseded };
    } catch (err) {
      this.repo.setMeta(`last_error:${this.workspaceId}`, `${new Date(this.now()).toISOString()} ${(err as Error).message}`);
      throw err;
    }
  }
}
