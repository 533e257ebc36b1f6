import type { Statement } from "better-sqlite3";
import type { Db } from "../../store/database.js";
import { migrate, openDatabase } from "../../store/database.js";
import type { BrainEntry } from "./entry.js";
import { isPoisoned } from "./hlc.js";
import { ENTRY_COLUMNS_SQL, rowToEntry, entryToRow, upsertSql, type EntryRow } from "./entry-row.js";
import { buildMatchExpression, isFtsSyntaxError, strongMatch } from "./query.js";
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
  // 2: the FTS index also holds each entry's project and agent (weight 0 in the ranking),
  // so a scoped recall narrows inside the index before ranking instead of joining every
  // match to check its scope (bench/brain: a scoped common-word recall went from a join of
  // every match to a handful of index reads).
  `DROP TRIGGER brain_entries_ai;
   DROP TRIGGER brain_entries_ad;
   DROP TRIGGER brain_entries_au;
   DROP TABLE brain_fts;
   CREATE VIRTUAL TABLE brain_fts USING fts5(
     title, summary, conclusion, tags, project_id, agent,
     content = 'brain_entries', content_rowid = 'rowid',
     tokenize = 'porter unicode61 remove_diacritics 2'
   );
   INSERT INTO brain_fts (brain_fts) VALUES ('rebuild');
   CREATE TRIGGER brain_entries_ai AFTER INSERT ON brain_entries BEGIN
     INSERT INTO brain_fts (rowid, title, summary, conclusion, tags, project_id, agent)
     VALUES (new.rowid, new.title, new.summary, new.conclusion, new.tags, new.project_id, new.agent);
   END;
   CREATE TRIGGER brain_entries_ad AFTER DELETE ON brain_entries BEGIN
     INSERT INTO brain_fts (brain_fts, rowid, title, summary, conclusion, tags, project_id, agent)
     VALUES ('delete', old.rowid, old.title, old.summary, old.conclusion, old.tags, old.project_id, old.agent);
   END;
   CREATE TRIGGER brain_entries_au AFTER UPDATE OF title, summary, conclusion, tags, project_id, agent ON brain_entries BEGIN
     INSERT INTO brain_fts (brain_fts, rowid, title, summary, conclusion, tags, project_id, agent)
     VALUES ('delete', old.rowid, old.title, old.summary, old.conclusion, old.tags, old.project_id, old.agent);
     INSERT INTO brain_fts (rowid, title, summary, conclusion, tags, project_id, agent)
     VALUES (new.rowid, new.title, new.summary, new.conclusion, new.tags, new.project_id, new.agent);
   END;`,
  // 3: the scope columns leave the index again. Measured at 100k (bench/brain): a scope
  // inside the MATCH makes bm25() count every entry of that project to weigh it (its IDF),
  // 5.5 ms of CPU for a project holding a quarter of the entries, so a project-scoped recall
  // (the CLI's default) cost 8 ms; the scope is now checked on the bounded window by a join
  // (1.1 ms). The index is rebuilt from brain_entries; no entry is touched.
  `DROP TRIGGER brain_entries_ai;
   DROP TRIGGER brain_entries_ad;
   DROP TRIGGER brain_entries_au;
   DROP TABLE brain_fts;
   CREATE VIRTUAL TABLE brain_fts USING fts5(
     title, summary, conclusion, tags,
     content = 'brain_entries', content_rowid = 'rowid',
     tokenize = 'porter unicode61 remove_diacritics 2'
   );
   INSERT INTO brain_fts (brain_fts) VALUES ('rebuild');
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
   END;`,
];

/** BM25 column weights: title, summary, conclusion, tags. A hit in the title or conclusion counts most. */
export const BM25_WEIGHTS = "10.0, 2.0, 5.0, 4.0";
/**
 * The column whose hits BM25 ranks first (weight 10): a one-term recall ranks the newest
 * window of title matches first. Measured at 100k (bench/brain, generated text): the newest
 * 1000 title matches agreed with the full BM25 top 10 on 56 of 80 results for common words and
 * prefixes, against 43 for the newest 1000 title/conclusion/tags matches, at 60% of the CPU;
 * on real text title/conclusion did worse still (30% against 53%).
 */
const STRONG_COLUMNS = ["title"] as const;

interface Where {
  sql: string[];
  params: Record<string, unknown>;
  /** A filter beyond the workspace and status (project, agent, kind, since, tags) leaves out part of the matches. */
  narrowed: boolean;
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
  const narrowed = [f.projectId, f.agent, f.kind, f.since].some((v) => v !== undefined) || (f.tags ?? []).length > 0;
  return { sql, params, narrowed };
}

/**
 * BM25 has to score every entry it ranks, at about a microsecond each, so ranking all
 * matches of a word found in a tenth of 100k entries costs 3-10 ms (bench/brain). Recall
 * ranks a bounded window of candidates instead, newest first (2000: on real text at 100k,
 * where a common word is in 4-7% of entries, a window of 1000 agreed with the full BM25 top
 * 10 on 53-65% of results with no filter and 2000 on 63-65%, at 1.9 and 2.8 ms of CPU; 4000
 * reached 70-75% at 3.5 ms):
 *
 * 1. for a one-term query, the newest `rankWindow` matches with a hit in the title, since
 *    these are the entries BM25 ranks first;
 * 2. if the filters leave fewer than asked, the newest `rankWindow` matches in any column;
 * 3. if still fewer, every match (so a narrow filter never loses an older entry).
 *
 * The window counts matches in scope: filters (project, agent, tags, kind, status) are
 * checked on each match by its rowid as FTS5 hands them over, newest first, and never put
 * in the MATCH. bm25() weighs every phrase of the MATCH by counting all entries that hold
 * it, so a project in the MATCH cost a count of the whole project on every recall (8 ms of
 * CPU at 100k, measured; 1-2 ms by the join).
 */
export const DEFAULT_RANK_WINDOW = 2000;
/** A windowed pass looks at no more than rankWindow x SCAN_FACTOR of the newest matches, in scope or not. */
export const SCAN_FACTOR = 2;

export class SqliteBrainRepository implements BrainRepository {
  private readonly upsert;
  private readonly selectOne;

  constructor(
    readonly db: Db,
    private readonly warn: (message: string) => void = () => {},
    private readonly rankWindow = DEFAULT_RANK_WINDOW,
    private readonly now: () => number = Date.now,
  ) {
    migrate(db, "brain", LOCAL_MIGRATIONS);
    this.upsert = db.prepare(upsertSql("brain_entries", ["dirty"]));
    this.selectOne = db.prepare("SELECT * FROM brain_entries WHERE workspace_id = ? AND entry_id = ?");
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
    // FTS5 is always the outer loop (CROSS JOIN fixes the order) and hands over its matches
    // newest first: the planner must never scan the entries and probe the index per row.
    // Each match is checked against the filters by its rowid as it comes, so the window
    // holds the newest `window` matches *in scope*, and bm25() runs only for those. A
    // narrow filter could make that scan every match (a tag on 3% of entries and a word in
    // a tenth: 10k rows joined, ~20 ms), so a windowed pass looks at most at the newest
    // `scan` matches (`s`, ids only, no join) when a filter narrows the scope (without
    // one, nearly every match is in scope and the window fills first). Whole rows are read
    // only for the `limit` returned. One row comes back even when none match (LEFT JOIN),
    // so `candidates` and `scanned` always say whether the pass saw every match.
    const narrowed = where.narrowed;
    const sql = (windowed: boolean, capped = windowed && narrowed) =>
      `WITH ${capped ? "s AS MATERIALIZED (SELECT rowid AS id FROM brain_fts WHERE brain_fts MATCH @match ORDER BY rowid DESC LIMIT @scan)," : ""}
       c AS MATERIALIZED (
         SELECT f.rowid AS id, bm25(brain_fts, ${BM25_WEIGHTS}) AS rank, e.version AS v
           FROM brain_fts f CROSS JOIN brain_entries e ON e.rowid = f.rowid
          WHERE brain_fts MATCH @match ${capped ? "AND f.rowid >= (SELECT MIN(id) FROM s)" : ""} AND ${where.sql.join(" AND ")}
          ORDER BY f.rowid DESC ${windowed ? "LIMIT @window" : ""}),
       -- Not named "version": e.* beside it would come back as "version:1".
       top AS MATERIALIZED (SELECT id, rank, v FROM c ORDER BY rank, v DESC LIMIT @limit)
       SELECT e.*, top.rank AS rank, k.n AS candidates, k.scanned AS scanned
         FROM (SELECT (SELECT COUNT(*) FROM c) AS n, ${capped ? "(SELECT COUNT(*) FROM s)" : "NULL"} AS scanned) k
         LEFT JOIN (top CROSS JOIN brain_entries e ON e.rowid = top.id) ON 1
        ORDER BY top.rank, top.v DESC`;
    const key = where.sql.join(" AND ");
    const windowedStmt = this.statement(`w:${key}`, () => sql(true));
    const fullStmt = this.statement(`f:${key}`, () => sql(false));
    const scan = this.rankWindow * SCAN_FACTOR;
    /** Ranks a window (or, without one, every match); `full` says whether the pass saw every match in scope. */
    const ranked = (match: string, window?: number): { hits: RecallResult["hits"]; full: boolean } => {
      const rows = (
        window === undefined
          ? fullStmt.all({ ...where.params, match })
          : // One more than the window: a window holding exactly every match is then known to be whole.
            windowedStmt.all({ ...where.params, match, window: window + 1, ...(narrowed ? { scan } : {}) })
      ) as Array<EntryRow & { rank: number; candidates: number; scanned: number | null }>;
      const hits = rows.filter((r) => r.entry_id !== null).map((r) => ({ entry: rowToEntry(r), rank: r.rank }));
      const k = rows[0];
      const full = window === undefined || (k !== undefined && k.candidates <= window && (k.scanned ?? 0) < scan);
      return { hits, full };
    };
    const run = (terms: string, mode: "and" | "or"): { hits: RecallResult["hits"]; rankedWindow?: number } => {
      const strong = mode === "and" ? strongMatch(query, STRONG_COLUMNS) : undefined;
      if (strong !== undefined) {
        // Trigger: a one-term query. Why: BM25 puts entries with a hit in
        // the title first, and they are a fraction of all matches.
        // Outcome: rank the newest window of those (by their hits there); wider passes
        // only when filters leave too few.
        const r = ranked(strong, this.rankWindow);
        if (r.hits.length >= filters.limit) return r.full ? { hits: r.hits } : { hits: r.hits, rankedWindow: this.rankWindow };
      }
      const r = ranked(terms, this.rankWindow);
      if (r.full || r.hits.length >= filters.limit) return r.full ? { hits: r.hits } : { hits: r.hits, rankedWindow: this.rankWindow };
      return { hits: ranked(terms).hits };
    };
    try {
      const first = run(strict, "and");
      if (first.hits.length > 0) return { ...first, matched: "all-terms" };
      const loose = buildMatchExpression(query, "or")!;
      // Trigger: no entry has every term. Why: agents ask in sentences, and one stray
      // word should not hide the entry that answers. Outcome: any-term match, still BM25-ranked.
      if (loose === strict) return { ...first, matched: "all-terms" };
      return { ...run(loose, "or"), matched: "any-term" };
    } catch (err) {
      // Trigger: FTS5 rejected the expression despite sanitising. Why: a recall must not
      // crash an agent's planning step. Outcome: empty result plus a warning; other errors raise.
      if (!isFtsSyntaxError(err)) throw err;
      const warning = `Search query could not be parsed (${(err as Error).message}); no results.`;
      this.warn(warning);
      return { hits: [], matched: "none", warning };
    }
  }

  /** Prepared statements by shape (the filter combination), so a recall prepares nothing after the first of its kind. */
  private readonly statements = new Map<string, Statement>();
  private statement(key: string, sql: () => string): Statement {
    let stmt = this.statements.get(key);
    if (!stmt) {
      stmt = this.db.prepare(sql());
      if (this.statements.size > 64) this.statements.clear();
      this.statements.set(key, stmt);
    }
    return stmt;
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

  applyPulled(workspaceId: string, entries: BrainEntry[], cursorKey: string, cursor: number, boundNow?: number): ApplyResult {
    let applied = 0;
    let skipped = 0;
    // The skew bound is measured from the server's clock when the sync client knows it is ahead.
    const now = Math.max(this.now(), boundNow ?? 0);
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
