import type { Db } from "../store/database.js";
import { migrate, openDatabase } from "../store/database.js";
import type { BrainEntry } from "./entry.js";
import { isPoisoned } from "./hlc.js";
import { ENTRY_COLUMNS_SQL, rowToEntry, entryToRow, upsertSql, type EntryRow } from "./entry-row.js";
import { buildMatchExpression, isFtsSyntaxError } from "./query.js";
import type { ApplyResult, BrainRepository, EntryFilters, RecallResult } from "./repository.js";

/** The local brain's schema: entries, their FTS5 index (kept in step by triggers) and sync metadata. */
export const LOCAL_MIGRATIONS = [
  `CREATE TABLE brain_entries (${ENTRY_COLUMNS_SQL},
     -- 1 while a local write waits to be pushed; pulled rows are stored with 0 so they are never echoed back.
     dirty INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (workspace_id, entry_id)
   ) STRICT;
   CREATE INDEX brain_entries_scope ON brain_entries (workspace_id, project_id, updated_at);
   CREATE INDEX brain_entries_dirty ON brain_entries (workspace_id, version) WHERE dirty = 1;
   CREATE INDEX brain_entries_version ON brain_entries (version);
   CREATE VIRTUAL TABLE brain_fts USING fts5(
     title, summary, conclusion, tags,
     content = 'brain_entries', content_rowid = 'rowid',
     tokenize = 'porter unicode61 remove_diacritics 2'
   );
   CREATE TRIGGER brain_entries_ai AFTER INSERT ON brain_entries BEGIN
     INSERT INTO brain_fts (rowid, title, summary, conclusion, tags)
     VALUES (new.rowid, new.title, new.summary, new.conclusion, new.tags);
   END;
   CREATE TRIGGER brain_entries_ad AFTER DELETE ON brain_entries BEGIN
     INSERT INTO brain_fts (brain_fts, rowid, title, summary, conclusion, tags)
     VALUES ('delete', old.rowid, old.title, old.summary, old.conclusion, old.tags);
   END;
   CREATE TRIGGER brain_entries_au AFTER UPDATE OF title, summary, conclusion, tags ON brain_entries BEGIN
     INSERT INTO brain_fts (brain_fts, rowid, title, summary, conclusion, tags)
     VALUES ('delete', old.rowid, old.title, old.summary, old.conclusion, old.tags);
     INSERT INTO brain_fts (rowid, title, summary, conclusion, tags)
     VALUES (new.rowid, new.title, new.summary, new.conclusion, new.tags);
   END;
   CREATE TABLE brain_sync_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;`,
];

/** BM25 column weights: title, summary, conclusion, tags. A hit in the title or conclusion counts most. */
const BM25_WEIGHTS = "10.0, 2.0, 5.0, 4.0";

interface Where {
  sql: string[];
  params: Record<string, unknown>;
}

function filterClauses(f: EntryFilters): Where {
  const sql = ["e.workspace_id = @workspaceId", "e.status != 'deleted'"];
  const params: Record<string, unknown> = { workspaceId: f.workspaceId, limit: f.limit };
  if (f.projectId !== undefined) {
    sql.push("e.project_id = @projectId");
    params.projectId = f.projectId;
  }
  if (f.agent !== undefined) {
    sql.push("e.agent = @agent");
    params.agent = f.agent;
  }
  if (f.kind !== undefined) {
    sql.push("e.kind = @kind");
    params.kind = f.kind;
  }
  if (f.since !== undefined) {
    sql.push("e.updated_at >= @since");
    params.since = f.since;
  }
  if (!f.includeSuperseded) sql.push("e.status != 'superseded'");
  (f.tags ?? []).forEach((tag, i) => {
    sql.push(`EXISTS (SELECT 1 FROM json_each(e.tags) WHERE json_each.value = @tag${i})`);
    params[`tag${i}`] = tag;
  });
  return { sql, params };
}

/**
 * BM25 has to score every matching entry, so a term found in half of 100k entries costs
 * ~100 ms while a specific one costs well under 1 ms (bench/brain). When a query matches
 * more than this many entries, only the newest this-many matches are ranked (~4x faster);
 * if the filters then leave fewer results than asked for, the full ranking runs instead.
 */
export const DEFAULT_RANK_WINDOW = 5000;

export class SqliteBrainRepository implements BrainRepository {
  private readonly upsert;
  private readonly selectOne;
  private readonly windowStart;

  constructor(
    readonly db: Db,
    private readonly warn: (message: string) => void = () => {},
    private readonly rankWindow = DEFAULT_RANK_WINDOW,
    private readonly now: () => number = Date.now,
  ) {
    migrate(db, "brain", LOCAL_MIGRATIONS);
    this.upsert = db.prepare(upsertSql("brain_entries", ["dirty"]));
    this.selectOne = db.prepare("SELECT * FROM brain_entries WHERE workspace_id = ? AND entry_id = ?");
    this.windowStart = db.prepare("SELECT rowid FROM brain_fts WHERE brain_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?");
  }

  static open(path: string, warn?: (message: string) => void, rankWindow?: number): SqliteBrainRepository {
    return new SqliteBrainRepository(openDatabase(path), warn, rankWindow);
  }

  get(workspaceId: string, entryId: string): BrainEntry | undefined {
    const row = this.selectOne.get(workspaceId, entryId) as EntryRow | undefined;
    return row ? rowToEntry(row) : undefined;
  }

  saveLocal(entry: BrainEntry): void {
    this.upsert.run({ ...entryToRow(entry), dirty: 1 });
  }

  saveLocalAll(entries: BrainEntry[]): void {
    this.db.transaction(() => entries.forEach((e) => this.saveLocal(e)))();
  }

  recall(query: string, filters: EntryFilters): RecallResult {
    const strict = buildMatchExpression(query, "and");
    if (strict === undefined) {
      return { hits: this.list(filters).map((entry) => ({ entry, rank: null })), matched: "none" };
    }
    const where = filterClauses(filters);
    const stmt = this.db.prepare(
      `SELECT e.*, bm25(brain_fts, ${BM25_WEIGHTS}) AS rank
         FROM brain_fts JOIN brain_entries e ON e.rowid = brain_fts.rowid
        WHERE brain_fts MATCH @match AND brain_fts.rowid >= @fromRowid AND ${where.sql.join(" AND ")}
        ORDER BY rank, e.version DESC
        LIMIT @limit`,
    );
    const ranked = (match: string, fromRowid: number) =>
      (stmt.all({ ...where.params, match, fromRowid }) as Array<EntryRow & { rank: number }>).map((r) => ({
        entry: rowToEntry(r),
        rank: r.rank,
      }));
    const run = (match: string): { hits: RecallResult["hits"]; rankedWindow?: number } => {
      const start = this.windowStart.get(match, this.rankWindow - 1) as { rowid: number } | undefined;
      if (start) {
        // Trigger: more matches than the ranking window. Why: BM25 cost grows with the
        // number of matches, and such a query is too broad for the score to single out an
        // old entry anyway. Outcome: rank the newest matches; if filters leave too few, rank all.
        const hits = ranked(match, start.rowid);
        if (hits.length >= filters.limit) return { hits, rankedWindow: this.rankWindow };
      }
      return { hits: ranked(match, Number.MIN_SAFE_INTEGER) };
    };
    try {
      const first = run(strict);
      if (first.hits.length > 0) return { ...first, matched: "all-terms" };
      const loose = buildMatchExpression(query, "or")!;
      // Trigger: no entry has every term. Why: agents ask in sentences, and one stray
      // word should not hide the entry that answers. Outcome: any-term match, still BM25-ranked.
      if (loose === strict) return { ...first, matched: "all-terms" };
      return { ...run(loose), matched: "any-term" };
    } catch (err) {
      // Trigger: FTS5 rejected the expression despite sanitising. Why: a recall must not
      // crash an agent's planning step. Outcome: empty result plus a warning; other errors raise.
      if (!isFtsSyntaxError(err)) throw err;
      const warning = `Search query could not be parsed (${(err as Error).message}); no results.`;
      this.warn(warning);
      return { hits: [], matched: "none", warning };
    }
  }

  list(filters: EntryFilters): BrainEntry[] {
    const where = filterClauses(filters);
    const rows = this.db
      .prepare(`SELECT e.* FROM brain_entries e WHERE ${where.sql.join(" AND ")} ORDER BY e.updated_at DESC, e.version DESC LIMIT @limit`)
      .all(where.params) as EntryRow[];
    return rows.map(rowToEntry);
  }

  pendingPush(workspaceId: string, limit: number): BrainEntry[] {
    const rows = this.db
      .prepare("SELECT * FROM brain_entries WHERE workspace_id = ? AND dirty = 1 ORDER BY version LIMIT ?")
      .all(workspaceId, limit) as EntryRow[];
    return rows.map(rowToEntry);
  }

  pendingCount(workspaceId: string): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM brain_entries WHERE workspace_id = ? AND dirty = 1").get(workspaceId) as { n: number }).n;
  }

  countEntries(workspaceId: string): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM brain_entries WHERE workspace_id = ? AND status != 'deleted'").get(workspaceId) as { n: number }).n;
  }

  markPushed(workspaceId: string, pushed: Array<{ entryId: string; version: string }>): void {
    // Exact id and exact version: a local edit made while the push was in flight stays pending.
    const stmt = this.db.prepare("UPDATE brain_entries SET dirty = 0 WHERE workspace_id = ? AND entry_id = ? AND version = ?");
    this.replayable(() => this.db.transaction(() => pushed.forEach((p) => stmt.run(workspaceId, p.entryId, p.version)))());
  }

  /**
   * Runs sync bookkeeping without an fsync of its own. Trigger: marking pushes and applying
   * pulled pages. Why: losing such a commit to a power cut only means the batch is pushed
   * again (the server replays or ignores it) or the page is pulled again; WAL still keeps
   * it atomic and ordered before any later FULL commit. Outcome: one fsync per batch
   * instead of two. Local writes (record, supersede, delete) stay synchronous=FULL.
   */
  private replayable<T>(fn: () => T): T {
    if (this.db.memory) return fn();
    this.db.pragma("synchronous = NORMAL");
    try {
      return fn();
    } finally {
      this.db.pragma("synchronous = FULL");
    }
  }

  applyPulled(workspaceId: string, entries: BrainEntry[], cursorKey: string, cursor: number): ApplyResult {
    let applied = 0;
    let skipped = 0;
    const now = this.now();
    const apply = this.db.transaction(() => {
      for (const entry of entries) {
        if (entry.workspaceId !== workspaceId) throw new Error(`Pulled entry ${entry.entryId} belongs to another workspace.`);
        const local = this.selectOne.get(workspaceId, entry.entryId) as EntryRow | undefined;
        // Newest version wins; equal means it is the same write (versions embed the node id).
        // A local version beyond the skew bound is poisoned: an acceptable pulled version replaces it.
        if (local && local.version >= entry.version && !isPoisoned(local.version, now)) {
          skipped++;
          continue;
        }
        // The pulled row is stored exactly as written, scope included, and not marked for push.
        this.upsert.run({ ...entryToRow(entry), dirty: 0 });
        applied++;
      }
      // Never move the cursor back: two syncs of one replica may overlap (a timer and a person).
      const current = Number(this.getMeta(cursorKey) ?? "0");
      this.setMeta(cursorKey, String(Math.max(current, cursor)));
    });
    this.replayable(() => apply());
    return { applied, skipped };
  }

  resetSync(workspaceId: string, cursorKey: string): void {
    this.db.transaction(() => {
      this.db.prepare("UPDATE brain_entries SET dirty = 1 WHERE workspace_id = ?").run(workspaceId);
      this.setMeta(cursorKey, "0");
    })();
  }

  maxVersion(atMost?: string): string | undefined {
    const row = (
      atMost === undefined
        ? this.db.prepare("SELECT MAX(version) AS v FROM brain_entries").get()
        : this.db.prepare("SELECT MAX(version) AS v FROM brain_entries WHERE version <= ?").get(atMost)
    ) as { v: string | null };
    return row.v ?? undefined;
  }

  poisonedEntries(workspaceId: string, ceiling: string): BrainEntry[] {
    // Fixed-width encoding: above the ceiling in string order, or a wall too wide for it.
    const rows = this.db
      .prepare("SELECT * FROM brain_entries WHERE workspace_id = ? AND (version > ? OR substr(version, 16, 1) != '-')")
      .all(workspaceId, ceiling) as EntryRow[];
    return rows.map(rowToEntry);
  }

  getMeta(key: string): string | undefined {
    const row = this.db.prepare("SELECT value FROM brain_sync_meta WHERE key = ?").get(key) as { value: string } | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string): void {
    this.db
      .prepare("INSERT INTO brain_sync_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
      .run(key, value);
  }

  close(): void {
    this.db.close();
  }
}
