import { afterEach, describe, expect, it } from "vitest";
import { join } from "node:path";
import { migrate, openDatabase } from "../../agent-runtime/store/database.js";
import { LOCAL_MIGRATIONS, SqliteBrainRepository } from "../../agent-runtime/brain/shared/sqlite-repository.js";
import { entryToRow, upsertSql } from "../../agent-runtime/brain/shared/entry-row.js";
import type { BrainEntry } from "../../agent-runtime/brain/shared/entry.js";
import { tempDir } from "./helpers.js";

let cleanup: (() => void) | undefined;
afterEach(() => cleanup?.());

const entry = (id: string, projectId: string, agent: string, title: string): BrainEntry => ({
  entryId: id,
  workspaceId: "ws1",
  projectId,
  agent,
  kind: "note",
  title,
  summary: "",
  conclusion: "",
  tags: ["ops"],
  refs: [],
  confidence: null,
  status: "active",
  supersededBy: null,
  createdAt: 1,
  updatedAt: 1,
  version: `000000000000001-000000-${id}`,
});

describe("brain schema migration 2 (scope columns in the FTS index)", () => {
  it("upgrades a brain written by the previous schema: its entries are indexed with their scope and recall filters on it", () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const path = join(t.dir, "brain.sqlite");
    const old = openDatabase(path);
    migrate(old, "brain", LOCAL_MIGRATIONS.slice(0, 1));
    const ins = old.prepare(upsertSql("brain_entries", ["dirty"]));
    ins.run({ ...entryToRow(entry("a", "github.com/acme/api", "claude", "cache eviction for the api")), dirty: 0 });
    ins.run({ ...entryToRow(entry("b", "github.com/acme/web", "codex", "cache eviction for the web")), dirty: 1 });
    old.close();

    const repo = SqliteBrainRepository.open(path);
    expect(() => repo.db.exec("INSERT INTO brain_fts (brain_fts) VALUES ('integrity-check')")).not.toThrow();
    const ids = (r: { hits: Array<{ entry: BrainEntry }> }) => r.hits.map((h) => h.entry.entryId).sort();
    expect(ids(repo.recall("cache", { workspaceId: "ws1", limit: 10 }))).toEqual(["a", "b"]);
    expect(ids(repo.recall("cache", { workspaceId: "ws1", projectId: "github.com/acme/web", limit: 10 }))).toEqual(["b"]);
    expect(ids(repo.recall("cache", { workspaceId: "ws1", agent: "claude", limit: 10 }))).toEqual(["a"]);
    // A scope value that only shares words with another is told apart by the exact check.
    expect(ids(repo.recall("cache", { workspaceId: "ws1", projectId: "github.com/acme", limit: 10 }))).toEqual([]);
    // Writes after the upgrade keep the index in step (triggers on the new columns too).
    repo.saveLocal({ ...entry("a", "github.com/acme/web", "claude", "cache eviction moved to web"), version: "000000000000002-000000-a" });
    expect(ids(repo.recall("cache", { workspaceId: "ws1", projectId: "github.com/acme/web", limit: 10 }))).toEqual(["a", "b"]);
    expect(repo.pendingCount("ws1")).toBe(2);
    repo.close();
  });
});

describe("brain schema migration 3 (scope columns leave the FTS index; scope is checked by a join)", () => {
  it("upgrades a brain at schema 2 in place: every entry, its pending-push flag and the sync cursor survive, the index is rebuilt without scope columns, and scoped recall still filters exactly", () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const path = join(t.dir, "brain.sqlite");
    const v2 = openDatabase(path);
    migrate(v2, "brain", LOCAL_MIGRATIONS.slice(0, 2));
    const ins = v2.prepare(upsertSql("brain_entries", ["dirty"]));
    const rows = [
      entry("a", "github.com/acme/api", "claude", "cache eviction for the api"),
      entry("b", "github.com/acme/web", "codex", "cache eviction for the web"),
      entry("c", "github.com/acme/api-v2", "claude", "cache warming"),
      { ...entry("d", "github.com/acme/api", "claude", "cache that was deleted"), status: "deleted" as const },
    ];
    rows.forEach((e, i) => ins.run({ ...entryToRow(e), dirty: i % 2 }));
    v2.prepare("INSERT INTO brain_sync_meta (key, value) VALUES ('cursor:ws1', '42')").run();
    const before = v2.prepare("SELECT * FROM brain_entries ORDER BY entry_id").all();
    v2.close();

    const repo = SqliteBrainRepository.open(path);
    // Nothing lost: the same rows, byte for byte, with their dirty flags; the cursor kept.
    expect(repo.db.prepare("SELECT * FROM brain_entries ORDER BY entry_id").all()).toEqual(before);
    expect(repo.getMeta("cursor:ws1")).toBe("42");
    expect((repo.db.prepare("SELECT version FROM schema_migrations WHERE module = 'brain'").get() as { version: number }).version).toBe(LOCAL_MIGRATIONS.length);
    // The index: text columns only, consistent with the table.
    const columns = (repo.db.prepare("SELECT name FROM pragma_table_info('brain_fts')").all() as Array<{ name: string }>).map((c) => c.name);
    expect(columns).toEqual(["title", "summary", "conclusion", "tags"]);
    expect(() => repo.db.exec("INSERT INTO brain_fts (brain_fts) VALUES ('integrity-check')")).not.toThrow();
    const ids = (r: { hits: Array<{ entry: BrainEntry }> }) => r.hits.map((h) => h.entry.entryId).sort();
    expect(ids(repo.recall("cache", { workspaceId: "ws1", limit: 10 }))).toEqual(["a", "b", "c"]);
    // Exact scope: "github.com/acme/api" is not "github.com/acme/api-v2".
    expect(ids(repo.recall("cache", { workspaceId: "ws1", projectId: "github.com/acme/api", limit: 10 }))).toEqual(["a"]);
    expect(ids(repo.recall("cache", { workspaceId: "ws1", agent: "claude", limit: 10 }))).toEqual(["a", "c"]);
    // Triggers on the rebuilt index: an edit, a new entry and a delete are searchable at once.
    repo.saveLocal({ ...entry("b", "github.com/acme/web", "codex", "eviction moved to the gateway"), version: "000000000000002-000000-b" });
    repo.saveLocal({ ...entry("e", "github.com/acme/web", "codex", "cache sizing"), version: "000000000000002-000000-e" });
    expect(ids(repo.recall("cache", { workspaceId: "ws1", limit: 10 }))).toEqual(["a", "c", "e"]);
    expect(ids(repo.recall("gateway", { workspaceId: "ws1", limit: 10 }))).toEqual(["b"]);
    repo.db.prepare("DELETE FROM brain_entries WHERE entry_id = 'a'").run();
    expect(ids(repo.recall("cache", { workspaceId: "ws1", limit: 10 }))).toEqual(["c", "e"]);
    expect(() => repo.db.exec("INSERT INTO brain_fts (brain_fts) VALUES ('integrity-check')")).not.toThrow();
    repo.close();
  });

  it("a scoped recall whose filter keeps none of the newest window still finds the older in-scope entry", () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const repo = new SqliteBrainRepository(openDatabase(join(t.dir, "brain.sqlite")), () => {}, 3);
    repo.saveLocal({ ...entry("old", "github.com/acme/rare", "claude", "cache in the rare project"), updatedAt: 0 });
    for (let i = 0; i < 8; i++) repo.saveLocal(entry(`n${i}`, "github.com/acme/api", "claude", `cache note ${i}`));
    const r = repo.recall("cache", { workspaceId: "ws1", projectId: "github.com/acme/rare", limit: 10 });
    expect(r.hits.map((h) => h.entry.entryId)).toEqual(["old"]);
    expect(r.rankedWindow).toBeUndefined();
    repo.close();
  });
});

