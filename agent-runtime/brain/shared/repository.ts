import type { BrainEntry, EntryKind } from "./entry.js";

/** How recall and list narrow the entries. `projectId` undefined = the whole workspace (org scope). */
export interface EntryFilters {
  workspaceId: string;
  projectId?: string;
  agent?: string;
  kind?: EntryKind;
  /** Every tag listed must be on the entry. */
  tags?: string[];
  /** Only entries updated at or after this time (ms since the epoch). */
  since?: number;
  /** Superseded entries are hidden unless this is set. Tombstones are never returned. */
  includeSuperseded?: boolean;
  limit: number;
}

export interface RecallHit {
  entry: BrainEntry;
  /** BM25 score from FTS5 (lower is better), or null for a query-less listing. */
  rank: number | null;
}

export interface RecallResult {
  hits: RecallHit[];
  /** Which match was used: all terms, any term (fallback) or none (empty query). */
  matched: "all-terms" | "any-term" | "none";
  /**
   * Set when the query matched more entries than the ranking window: only the newest
   * `rankedWindow` matches were ranked (see SqliteBrainRepository's rankWindow).
   */
  rankedWindow?: number;
  warning?: string;
}

/** A page of entries pulled from the server, applied together with its cursor. */
export interface ApplyResult {
  applied: number;
  skipped: number;
}

/**
 * The brain's storage. SQLite is the implementation today; the interface is what a
 * Postgres implementation (for a large shared server) would provide.
 */
export interface BrainRepository {
  get(workspaceId: string, entryId: string): BrainEntry | undefined;
  /** A local write: stored and marked pending push. */
  saveLocal(entry: BrainEntry): void;
  /** Several local writes in one transaction (supersede touches two entries). */
  saveLocalAll(entries: BrainEntry[]): void;
  recall(query: string, filters: EntryFilters): RecallResult;
  list(filters: EntryFilters): BrainEntry[];
  /** Entries written locally and not yet accepted by the server, oldest version first. */
  pendingPush(workspaceId: string, limit: number): BrainEntry[];
  pendingCount(workspaceId: string): number;
  /** Live (not deleted) entries in the workspace, superseded included. */
  countEntries(workspaceId: string): number;
  /** Clears the pending flag for entries whose version is still the one pushed. */
  markPushed(workspaceId: string, pushed: Array<{ entryId: string; version: string }>): void;
  /** Applies pulled entries newest-wins and stores the cursor, in one transaction. */
  applyPulled(workspaceId: string, entries: BrainEntry[], cursorKey: string, cursor: number, boundNow?: number): ApplyResult;
  /** Marks every entry of the workspace pending and resets the cursor, in one transaction (server lost data). */
  resetSync(workspaceId: string, cursorKey: string): void;
  /** The highest version stored (at most `atMost`), so a restarted clock never issues an older one. */
  maxVersion(atMost?: string): string | undefined;
  /** Entries whose version sorts above `ceiling` or is malformed: written by a clock that ran ahead. */
  poisonedEntries(workspaceId: string, ceiling: string): BrainEntry[];
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
  close(): void;
}
