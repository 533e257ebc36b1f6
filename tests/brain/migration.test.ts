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
