import type { BrainEntry, EntryKind, EntryStatus } from "./entry.js";

/** The columns an entry occupies, shared by the local store and the sync server's table. */
export const ENTRY_COLUMNS_SQL = `
  workspace_id TEXT NOT NULL,
  entry_id TEXT NOT NULL,
  project_id TEXT NOT NULL,
  agent TEXT NOT NULL,
  kind TEXT NOT NULL,
  title TEXT NOT NULL,
  summary TEXT NOT NULL,
  conclusion TEXT NOT NULL,
  tags TEXT NOT NULL,
  refs TEXT NOT NULL,
  confidence REAL,
  status TEXT NOT NULL,
  superseded_by TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version TEXT NOT NULL`;

export const ENTRY_COLUMN_NAMES = [
  "workspace_id",
  "entry_id",
  "project_id",
  "agent",
  "kind",
  "title",
  "summary",
  "conclusion",
  "tags",
  "refs",
  "confidence",
  "status",
  "superseded_by",
  "created_at",
  "updated_at",
  "version",
] as const;

export interface EntryRow {
  workspace_id: string;
  entry_id: string;
  project_id: string;
  agent: string;
  kind: string;
  title: string;
  summary: string;
  conclusion: string;
  tags: string;
  refs: string;
  confidence: number | null;
  status: string;
  superseded_by: string | null;
  created_at: number;
  updated_at: number;
  version: string;
}

export function entryToRow(e: BrainEntry): EntryRow {
  return {
    workspace_id: e.workspaceId,
    entry_id: e.entryId,
    project_id: e.projectId,
    agent: e.agent,
    kind: e.kind,
    title: e.title,
    summary: e.summary,
    conclusion: e.conclusion,
    tags: JSON.stringify(e.tags),
    refs: JSON.stringify(e.refs),
    confidence: e.confidence,
    status: e.status,
    superseded_by: e.supersededBy,
    created_at: e.createdAt,
    updated_at: e.updatedAt,
    version: e.version,
  };
}

export function rowToEntry(r: EntryRow): BrainEntry {
  return {
    entryId: r.entry_id,
    workspaceId: r.workspace_id,
    projectId: r.project_id,
    agent: r.agent,
    kind: r.kind as EntryKind,
    title: r.title,
    summary: r.summary,
    conclusion: r.conclusion,
    tags: JSON.parse(r.tags) as string[],
    refs: JSON.parse(r.refs) as string[],
    confidence: r.confidence,
    status: r.status as EntryStatus,
    supersededBy: r.superseded_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    version: r.version,
  };
}

/** `INSERT ... ON CONFLICT DO UPDATE` (never REPLACE: it would change the rowid the FTS index keys on). */
export function upsertSql(table: string, extraColumns: string[] = []): string {
  const cols = [...ENTRY_COLUMN_NAMES, ...extraColumns];
  const updates = cols.filter((c) => c !== "workspace_id" && c !== "entry_id").map((c) => `${c} = excluded.${c}`);
  return `INSERT INTO ${table} (${cols.join(", ")}) VALUES (${cols.map((c) => "@" + c).join(", ")})
    ON CONFLICT (workspace_id, entry_id) DO UPDATE SET ${updates.join(", ")}`;
}
