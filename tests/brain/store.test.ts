import { describe, expect, it } from "vitest";
import { openDatabase } from "../../agent-runtime/store/database.js";
import { SqliteBrainRepository } from "../../agent-runtime/brain/shared/sqlite-repository.js";
import { HybridLogicalClock, compareVersions, decodeHlc } from "../../agent-runtime/brain/shared/hlc.js";
import { BrainService } from "../../agent-runtime/brain/shared/service.js";
import { BrainError } from "../../agent-runtime/brain/shared/errors.js";
import { memoryBrain, tempDir } from "./helpers.js";

describe("record and recall", () => {
  it("ranks by BM25: a title/conclusion hit beats a passing mention", () => {
    const { service } = memoryBrain();
    service.record({ title: "Database choice", summary: "We looked at several options, including postgres briefly", conclusion: "Stay on SQLite" });
    const strong = service.record({ title: "Postgres connection pooling", conclusion: "Use pgbouncer in front of postgres", kind: "decision" });
    service.record({ title: "Unrelated", summary: "Nothing about databases" });
    const r = service.recall("postgres");
    expect(r.matched).toBe("all-terms");
    expect(r.hits.map((h) => h.entry.title)).toEqual(["Postgres connection pooling", "Database choice"]);
    expect(r.hits[0]!.entry.entryId).toBe(strong.entryId);
    expect(r.hits[0]!.rank!).toBeLessThan(r.hits[1]!.rank!);
  });

  it("matches multi-word queries as terms, falls back to OR once, and says so", () => {
    const { service } = memoryBrain();
    service.record({ title: "Retry with jitter cut 5xx", summary: "exponential backoff in the sync client", tags: ["sync", "reliability"] });
    service.record({ title: "Auth tokens hashed", conclusion: "store sha256 only" });
    expect(service.recall("sync jitter").hits).toHaveLength(1);
    const loose = service.recall("jitter tokens");
    expect(loose.matched).toBe("any-term");
    expect(loose.hits).toHaveLength(2);
    expect(service.recall("reliab").hits).toHaveLength(1); // tags are indexed, prefix match
  });

  it("an empty query lists recent entries; nothing matching gives an empty result", () => {
    const { service } = memoryBrain();
    service.record({ title: "one" });
    service.record({ title: "two" });
    expect(service.recall("").matched).toBe("none");
    expect(service.recall("").hits).toHaveLength(2);
    expect(service.recall("zebra").hits).toEqual([]);
  });

  it("filters by scope (repo vs org), agent, kind, tags and since", () => {
    let t = 1_000_000;
    const now = () => t;
    const a = memoryBrain({ projectId: "github.com/acme/api" }, "n1", now);
    const svcOtherRepo = new BrainService(a.repo, a.clock, { workspaceId: "ws1", projectId: "github.com/acme/web", agent: "codex" }, now);
    const svcOtherOrg = new BrainService(a.repo, a.clock, { workspaceId: "ws2", projectId: "github.com/acme/api", agent: "x" }, now);
    a.service.record({ title: "cache layer api", kind: "decision", tags: ["perf", "cache"] });
    t += 10_000;
    svcOtherRepo.record({ title: "cache layer web", kind: "experiment", tags: ["perf"] });
    svcOtherOrg.record({ title: "cache layer other org" });
    const titles = (r: { hits: Array<{ entry: { title: string } }> }) => r.hits.map((h) => h.entry.title).sort();
    expect(titles(a.service.recall("cache"))).toEqual(["cache layer api"]);
    expect(titles(a.service.recall("cache", { org: true }))).toEqual(["cache layer api", "cache layer web"]);
    expect(titles(a.service.recall("cache", { org: true, agent: "codex" }))).toEqual(["cache layer web"]);
    expect(titles(a.service.recall("cache", { org: true, kind: "decision" }))).toEqual(["cache layer api"]);
    expect(titles(a.service.recall("cache", { org: true, tags: ["perf", "cache"] }))).toEqual(["cache layer api"]);
    expect(titles(a.service.recall("cache", { org: true, tags: ["perf"] }))).toEqual(["cache layer api", "cache layer web"]);
    expect(titles(a.service.recall("cache", { org: true, since: 1_005_000 }))).toEqual(["cache layer web"]);
    expect(a.service.list({ org: true }).map((e) => e.title)).toEqual(["cache layer web", "cache layer api"]);
  });

  it("ranks only the newest matches of a very broad query, and ranks all when filters leave too few", () => {
    const repo = new SqliteBrainRepository(openDatabase(":memory:"), () => {}, 3);
    const clock = new HybridLogicalClock("n1");
    const api = new BrainService(repo, clock, { workspaceId: "ws1", projectId: "api", agent: "a" });
    const web = new BrainService(repo, clock, { workspaceId: "ws1", projectId: "web", agent: "a" });
    // The oldest entry is the best match, then five weaker ones.
    const best = api.record({ title: "cache cache cache", conclusion: "cache everything" });
    for (let i = 0; i < 5; i++) web.record({ title: `note ${i}`, summary: "mentions a cache once among many other words here" });
    const broad = repo.recall("cache", { workspaceId: "ws1", limit: 2 });
    expect(broad.rankedWindow).toBe(3);
    expect(broad.hits).toHaveLength(2);
    expect(broad.hits.map((h) => h.entry.entryId)).not.toContain(best.entryId);
    // Scoped to the api project, the window holds nothing: the full ranking finds the old entry.
    const scoped = repo.recall("cache", { workspaceId: "ws1", projectId: "api", limit: 2 });
    expect(scoped.rankedWindow).toBeUndefined();
    expect(scoped.hits.map((h) => h.entry.entryId)).toEqual([best.entryId]);
    // Below the window size nothing is cut.
    expect(repo.recall("everything", { workspaceId: "ws1", limit: 10 }).rankedWindow).toBeUndefined();
  });

  it("hides superseded entries unless asked, and links both ways", () => {
    const { service } = memoryBrain();
    const old = service.record({ title: "Use REST for sync", conclusion: "REST is enough" });
    const { superseded, replacement } = service.supersede(old.entryId, { record: { title: "Use REST with seq cursors for sync", conclusion: "seq cursors" } });
    expect(superseded.status).toBe("superseded");
    expect(superseded.supersededBy).toBe(replacement.entryId);
    expect(compareVersions(superseded.version, old.version)).toBe(1);
    expect(service.recall("REST").hits.map((h) => h.entry.entryId)).toEqual([replacement.entryId]);
    expect(service.recall("REST", { all: true }).hits.map((h) => h.entry.entryId).sort()).toEqual([old.entryId, replacement.entryId].sort());
    expect(service.list().map((e) => e.entryId)).toEqual([replacement.entryId]);
    const other = service.record({ title: "third" });
    service.supersede(replacement.entryId, { entryId: other.entryId });
    expect(service.show(replacement.entryId).supersededBy).toBe(other.entryId);
    expect(() => service.supersede(other.entryId, { entryId: other.entryId })).toThrow(BrainError);
  });

  it("deletes as a tombstone: gone from recall, content cleared, still stored for sync", () => {
    const { service, repo } = memoryBrain();
    const e = service.record({ title: "secret-ish note", summary: "remove me" });
    service.remove(e.entryId);
    expect(service.recall("secret").hits).toEqual([]);
    expect(service.list({ all: true })).toEqual([]);
    const stored = repo.get("ws1", e.entryId)!;
    expect(stored.status).toBe("deleted");
    expect(stored.summary).toBe("");
    expect(repo.pendingCount("ws1")).toBe(1);
  });

  it("looks ids up exactly: x-1 never finds x-10", () => {
    const { service, repo } = memoryBrain();
    const e = service.record({ title: "ten" });
    repo.saveLocal({ ...e, entryId: "x-10" });
    expect(() => service.show("x-1")).toThrow(/No brain entry with id x-1/);
    expect(service.show("x-10").title).toBe("ten");
  });

  it("rejects invalid input with a clear message", () => {
    const { service } = memoryBrain();
    expect(() => service.record({ title: "  " })).toThrow(/title is required/);
    expect(() => service.record({ title: "x", confidence: 2 })).toThrow(/confidence/);
    expect(() => service.recall("x", { limit: 0 })).toThrow(/--limit/);
  });

  it("a reopened store keeps entries and its clock never issues an older version", () => {
    const { dir, cleanup } = tempDir();
    try {
      const path = `${dir}/b.sqlite`;
      // The first process wrote with a clock ahead of the second's (within the allowed skew).
      const repo1 = new SqliteBrainRepository(openDatabase(path));
      const s1 = new BrainService(repo1, new HybridLogicalClock("n1", () => 200_000), { workspaceId: "w", projectId: "p", agent: "a" }, () => 200_000);
      const first = s1.record({ title: "durable" });
      repo1.close();
      // The second process has a clock that is behind.
      const repo2 = new SqliteBrainRepository(openDatabase(path));
      const s2 = new BrainService(repo2, new HybridLogicalClock("n1", () => 1_000), { workspaceId: "w", projectId: "p", agent: "a" }, () => 1_000);
      expect(s2.show(first.entryId).title).toBe("durable");
      const edit = s2.update(first.entryId, { title: "durable, edited" });
      expect(compareVersions(edit.version, first.version)).toBe(1);
      expect(decodeHlc(edit.version).wall).toBe(200_000);
      expect(s2.recall("edited").hits).toHaveLength(1);
      expect(s2.recall("durable").hits).toHaveLength(1); // FTS index followed the update
      repo2.close();
    } finally {
      cleanup();
    }
  });
});

describe("hybrid logical clock", () => {
  it("is strictly increasing even when the wall clock stalls or goes backwards", () => {
    const walls = [100, 100, 100, 50, 200, 10];
    let i = 0;
    const clock = new HybridLogicalClock("n", () => walls[i++]!);
    const versions = walls.map(() => clock.tick());
    for (let k = 1; k < versions.length; k++) expect(compareVersions(versions[k]!, versions[k - 1]!)).toBe(1);
  });

  it("orders ties by node id, so equal wall times never tie", () => {
    const a = new HybridLogicalClock("aaa", () => 7).tick();
    const b = new HybridLogicalClock("bbb", () => 7).tick();
    expect(a).not.toBe(b);
    expect(compareVersions(a, b)).toBe(-1);
  });

  it("after observing a version from a clock that runs ahead, the next tick sorts after it", () => {
    // Ahead by less than MAX_CLOCK_SKEW_MS (5 min): followed. Further ahead: see clock-poisoning.test.ts.
    const ahead = new HybridLogicalClock("zzz", () => 200_000).tick();
    const behind = new HybridLogicalClock("aaa", () => 5);
    expect(behind.observe(ahead)).toBe(true);
    expect(compareVersions(behind.tick(), ahead)).toBe(1);
  });
});
