#!/usr/bin/env tsx
/**
 * bench/brain: picortex's brain against the seed's approach, measured in the same run on
 * the same data. Not a test: it prints figures and ratios, and asserts nothing on time.
 *
 *   recall p50/p99 at N entries   FTS5 + BM25 (sanitised, AND then OR)  vs  LIKE '%q%' scan
 *   record throughput             HLC + FTS triggers, one durable txn each  vs  plain INSERT
 *   full push + pull of N         seq cursor, idempotent push over HTTP  vs  updatedAt cursor over HTTP
 *   incremental pull of 10        seq cursor                            vs  updatedAt cursor
 *
 * N defaults to 100000 (BRAIN_BENCH_N to change).
 */
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { openDatabase, type Db } from "../../agent-runtime/store/database.js";
import { Router, notFoundHandler } from "../../agent-runtime/http/router.js";
import { SqliteBrainRepository } from "../../agent-runtime/brain/sqlite-repository.js";
import { HybridLogicalClock } from "../../agent-runtime/brain/hlc.js";
import { BrainService } from "../../agent-runtime/brain/service.js";
import { BrainServerStore } from "../../agent-runtime/brain/server-store.js";
import { brainSyncRoutes } from "../../agent-runtime/brain/http.js";
import { BrainSyncClient } from "../../agent-runtime/brain/sync-client.js";
import { HttpSyncTransport } from "../../agent-runtime/brain/http-transport.js";
import { ENTRY_COLUMNS_SQL, entryToRow, rowToEntry, upsertSql, type EntryRow } from "../../agent-runtime/brain/entry-row.js";
import { wireEntrySchema, type BrainEntry } from "../../agent-runtime/brain/entry.js";
import { buildMatchExpression } from "../../agent-runtime/brain/query.js";
import { loadCorpus, type Doc } from "./corpus.js";

const N = Number(process.env.BRAIN_BENCH_N ?? 100_000);
const WS = "bench";
const dir = mkdtempSync(join(tmpdir(), "picortex-brain-bench-"));
const log = (s: string) => process.stderr.write(s + "\n");
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const rows: Array<[string, string, string, string]> = [];
const row = (metric: string, ours: number, seed: number, unit: string, higherIsBetter = false) =>
  rows.push([metric, `${ours.toFixed(2)} ${unit}`, `${seed.toFixed(2)} ${unit}`, `${(higherIsBetter ? ours / seed : seed / ours).toFixed(1)}x`]);

function makeEntries(docs: Doc[], n: number, base: number): BrainEntry[] {
  const projects = ["github.com/acme/api", "github.com/acme/web", "github.com/acme/infra", "github.com/acme/ml"];
  const kinds = ["experiment", "decision", "insight", "note"] as const;
  const out: BrainEntry[] = [];
  for (let i = 0; i < n; i++) {
    const d = docs[i % docs.length]!;
    const other = docs[(i * 7919 + 13) % docs.length]!;
    // A batch import: 37 entries per millisecond, so many share updatedAt (as real bursts do).
    const t = base + Math.floor(i / 37);
    out.push({
      entryId: `e${i}`,
      workspaceId: WS,
      projectId: projects[i % projects.length]!,
      agent: `agent${i % 5}`,
      kind: kinds[i % 4]!,
      title: `${d.name}: ${d.short}`.slice(0, 500),
      summary: d.long.slice(0, 4000),
      conclusion: other.short,
      tags: [d.name.split("-")[0]!.slice(0, 64)],
      refs: [],
      confidence: null,
      status: "active",
      supersededBy: null,
      createdAt: t,
      updatedAt: t,
      version: `${String(t).padStart(15, "0")}-${String(i % 37).padStart(6, "0")}-bench`,
    });
  }
  return out;
}

/** The seed's store: the same columns, no FTS, recall by LIKE '%q%' newest first. */
function seedStore(db: Db) {
  db.exec(`CREATE TABLE IF NOT EXISTS seed_entries (${ENTRY_COLUMNS_SQL}, PRIMARY KEY (workspace_id, entry_id));
           CREATE INDEX IF NOT EXISTS seed_updated ON seed_entries (workspace_id, updated_at);`);
  const ins = db.prepare(upsertSql("seed_entries"));
  const recall = db.prepare(
    `SELECT * FROM seed_entries WHERE workspace_id = @ws AND (title LIKE @q OR summary LIKE @q OR conclusion LIKE @q) ORDER BY updated_at DESC LIMIT 10`,
  );
  const count = db.prepare(`SELECT COUNT(*) AS n FROM seed_entries WHERE workspace_id = @ws AND (title LIKE @q OR summary LIKE @q OR conclusion LIKE @q)`);
  return {
    insert: (e: BrainEntry) => ins.run(entryToRow(e)),
    recall: (q: string) => recall.all({ ws: WS, q: `%${q}%` }),
    count: (q: string) => (count.get({ ws: WS, q: `%${q}%` }) as { n: number }).n,
  };
}

/** The seed's sync contract on the same HTTP stack: newest updatedAt wins, pull by `updated_at > since`. */
function seedSyncRoutes(db: Db) {
  const s = seedStore(db);
  const get = db.prepare("SELECT updated_at FROM seed_entries WHERE workspace_id = ? AND entry_id = ?");
  const pull = db.prepare("SELECT * FROM seed_entries WHERE workspace_id = ? AND updated_at > ? ORDER BY updated_at LIMIT ?");
  const push = z.object({ entries: z.array(wireEntrySchema).max(200) });
  const pullBody = z.object({ since: z.number().int(), limit: z.number().int().max(500) });
  return [
    {
      method: "POST" as const,
      path: "/seed/push",
      handler: async (ctx: Parameters<Parameters<Router["add"]>[0]["handler"]>[0]) => {
        const body = await ctx.body(push, 10 << 20);
        db.transaction(() => {
          for (const e of body.entries) {
            const cur = get.get(WS, e.entryId) as { updated_at: number } | undefined;
            if (!cur || cur.updated_at < e.updatedAt) s.insert(e);
          }
        })();
        return { ok: true };
      },
    },
    {
      method: "POST" as const,
      path: "/seed/pull",
      handler: async (ctx: Parameters<Parameters<Router["add"]>[0]["handler"]>[0]) => {
        const body = await ctx.body(pullBody, 4096);
        const r = pull.all(WS, body.since, body.limit) as EntryRow[];
        return { entries: r.map(rowToEntry) };
      },
    },
  ];
}

async function listen(router: Router): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    void router.handle(req, res).then((h) => (h ? undefined : notFoundHandler(res, req.url ?? "/")));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

async function seedPost(url: string, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(url + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** The seed's client: pull by `updated_at > since`, apply newest-wins into its local table, keep `since`. */
function seedClient(db: Db) {
  db.exec(`CREATE TABLE IF NOT EXISTS seed_entries (${ENTRY_COLUMNS_SQL}, PRIMARY KEY (workspace_id, entry_id));
           CREATE TABLE IF NOT EXISTS seed_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`);
  const ins = db.prepare(upsertSql("seed_entries"));
  const get = db.prepare("SELECT updated_at FROM seed_entries WHERE workspace_id = ? AND entry_id = ?");
  const setSince = db.prepare("INSERT INTO seed_meta (key, value) VALUES ('since', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  let since = 0;
  return {
    count: () => (db.prepare("SELECT COUNT(*) AS n FROM seed_entries").get() as { n: number }).n,
    async pullAll(url: string): Promise<number> {
      let received = 0;
      for (;;) {
        const { entries } = (await seedPost(url, "/seed/pull", { since, limit: 500 })) as { entries: BrainEntry[] };
        db.transaction(() => {
          for (const e of entries) {
            const cur = get.get(WS, e.entryId) as { updated_at: number } | undefined;
            if (!cur || cur.updated_at < e.updatedAt) ins.run(entryToRow(e));
          }
          if (entries.length > 0) since = entries[entries.length - 1]!.updatedAt;
          setSince.run(String(since));
        })();
        received += entries.length;
        if (entries.length < 500) return received;
      }
    },
  };
}

async function main(): Promise<void> {
  const t0 = process.hrtime.bigint();
  const { docs, source } = loadCorpus();
  log(`corpus: ${docs.length} documents from ${source} (${ms(t0).toFixed(0)} ms)`);
  const base = Date.now() - 86_400_000;
  const entries = makeEntries(docs, N, base);

  // ---- build both stores
  const repo = new SqliteBrainRepository(openDatabase(join(dir, "ours.sqlite")));
  const seedDb = openDatabase(join(dir, "seed.sqlite"));
  const seed = seedStore(seedDb);
  let t = process.hrtime.bigint();
  for (let i = 0; i < entries.length; i += 2000) repo.saveLocalAll(entries.slice(i, i + 2000));
  const buildOurs = ms(t);
  t = process.hrtime.bigint();
  for (let i = 0; i < entries.length; i += 2000) seedDb.transaction(() => entries.slice(i, i + 2000).forEach(seed.insert))();
  const buildSeed = ms(t);
  log(`built ${N} entries: picortex ${buildOurs.toFixed(0)} ms, seed ${buildSeed.toFixed(0)} ms`);

  // ---- recall
  const service = new BrainService(repo, new HybridLogicalClock("benchnode"), { workspaceId: WS, projectId: "github.com/acme/api", agent: "bench" });
  const queries: Array<[string, string]> = [
    ["common", "library"],
    ["common", "data"],
    ["common", "development files"],
    ["common", "python module"],
    ["rare", "bittorrent"],
    ["rare", "ethernet firmware"],
    ["sentence", "how do I parse json in python?"],
  ];
  log("\nquery                               picortex hits (mode)        LIKE hits");
  for (const [, q] of queries) {
    const r = service.recall(q, { org: true, limit: 10 });
    const expr = buildMatchExpression(q, r.matched === "any-term" ? "or" : "and")!;
    const ftsCount = (repo.db.prepare("SELECT COUNT(*) AS n FROM brain_fts WHERE brain_fts MATCH ?").get(expr) as { n: number }).n;
    log(`  ${q.padEnd(34)} ${String(ftsCount).padStart(6)} (${r.matched.padEnd(9)})        ${String(seed.count(q)).padStart(6)}`);
  }
  const timesOurs: Record<string, number[]> = {};
  const timesSeed: Record<string, number[]> = {};
  for (const [cls, q] of queries) {
    (timesOurs[cls] ??= []).length;
    (timesSeed[cls] ??= []).length;
    for (let i = 0; i < 40; i++) {
      const s = process.hrtime.bigint();
      service.recall(q, { org: true, limit: 10 });
      timesOurs[cls]!.push(ms(s));
    }
    for (let i = 0; i < 6; i++) {
      const s = process.hrtime.bigint();
      seed.recall(q);
      timesSeed[cls]!.push(ms(s));
    }
  }
  const allOurs = Object.values(timesOurs).flat();
  const allSeed = Object.values(timesSeed).flat();
  row(`recall p50 at ${N / 1000}k (all queries)`, pct(allOurs, 50), pct(allSeed, 50), "ms");
  row(`recall p99 at ${N / 1000}k (all queries)`, pct(allOurs, 99), pct(allSeed, 99), "ms");
  for (const cls of Object.keys(timesOurs)) {
    row(`recall p50, ${cls} terms`, pct(timesOurs[cls]!, 50), pct(timesSeed[cls]!, 50), "ms");
    row(`recall p99, ${cls} terms`, pct(timesOurs[cls]!, 99), pct(timesSeed[cls]!, 99), "ms");
  }

  // ---- record throughput (one durable transaction per record, as the CLI does)
  const RECORDS = 1000;
  t = process.hrtime.bigint();
  for (let i = 0; i < RECORDS; i++) {
    const d = docs[(i * 31) % docs.length]!;
    service.record({ title: d.short, summary: d.long.slice(0, 4000), conclusion: d.short, tags: ["bench"] });
  }
  const recOurs = RECORDS / (ms(t) / 1000);
  t = process.hrtime.bigint();
  for (let i = 0; i < RECORDS; i++) {
    const d = docs[(i * 31) % docs.length]!;
    seed.insert({ ...entries[0]!, entryId: `rec${i}`, title: d.short, summary: d.long.slice(0, 4000), conclusion: d.short });
  }
  const recSeed = RECORDS / (ms(t) / 1000);
  row("record throughput", recOurs, recSeed, "rec/s", true);
  repo.close();
  seedDb.close();

  // ---- sync over loopback HTTP, both contracts on the same router and database engine
  const serverDb = openDatabase(join(dir, "server.sqlite"));
  const store = new BrainServerStore(serverDb);
  const seedServerDb = openDatabase(join(dir, "seed-server.sqlite"));
  const router = new Router(log).add(...brainSyncRoutes(store), ...seedSyncRoutes(seedServerDb));
  const { server, url } = await listen(router);
  const { token } = store.createToken(WS, "bench");
  const clientA = new SqliteBrainRepository(openDatabase(join(dir, "client-a.sqlite")));
  const clientB = new SqliteBrainRepository(openDatabase(join(dir, "client-b.sqlite")));
  for (let i = 0; i < entries.length; i += 2000) clientA.saveLocalAll(entries.slice(i, i + 2000));
  const transport = new HttpSyncTransport({ serverUrl: url, token });
  const syncA = new BrainSyncClient(clientA, new HybridLogicalClock("a"), transport, WS);
  const syncB = new BrainSyncClient(clientB, new HybridLogicalClock("b"), transport, WS);
  const svcA = new BrainService(clientA, new HybridLogicalClock("a"), { workspaceId: WS, projectId: "p", agent: "a" });

  t = process.hrtime.bigint();
  await syncA.push();
  const pushOurs = ms(t);
  const pulledB = await syncB.pull();
  const fullOurs = ms(t);
  t = process.hrtime.bigint();
  for (let i = 0; i < entries.length; i += 200) await seedPost(url, "/seed/push", { entries: entries.slice(i, i + 200) });
  const pushSeed = ms(t);
  const seedClientDb = openDatabase(join(dir, "seed-client-b.sqlite"));
  const seedB = seedClient(seedClientDb);
  await seedB.pullAll(url);
  const fullSeed = ms(t);
  row(`full push + pull of ${N / 1000}k`, fullOurs / 1000, fullSeed / 1000, "s");
  row(`  of which push`, pushOurs / 1000, pushSeed / 1000, "s");
  row(`  of which pull (picortex also builds FTS)`, (fullOurs - pushOurs) / 1000, (fullSeed - pushSeed) / 1000, "s");
  const oursMissed = N - clientB.pendingCount(WS) - (clientB.db.prepare("SELECT COUNT(*) AS n FROM brain_entries").get() as { n: number }).n;
  log(`\nfull pull: picortex received ${pulledB.pulled}/${N} (missed ${oursMissed}); seed updatedAt cursor received ${seedB.count()}/${N} (missed ${N - seedB.count()}: equal timestamps at page edges)`);

  // ---- incremental pull of 10 changes
  const incOurs: number[] = [];
  const incSeed: number[] = [];
  let seedMissedInc = 0;
  for (let round = 0; round < 15; round++) {
    const changed: BrainEntry[] = [];
    for (let k = 0; k < 10; k++) changed.push(svcA.update(`e${(round * 997 + k * 7919) % N}`, { conclusion: `revised in round ${round}` }));
    await syncA.push();
    await seedPost(url, "/seed/push", { entries: changed.map((e) => ({ ...e, updatedAt: Date.now() })) });
    let s = process.hrtime.bigint();
    const r = await syncB.pull();
    incOurs.push(ms(s));
    if (r.pulled !== 10) log(`  round ${round}: picortex pulled ${r.pulled}, expected 10`);
    s = process.hrtime.bigint();
    const got = await seedB.pullAll(url);
    incSeed.push(ms(s));
    seedMissedInc += Math.max(0, 10 - got);
  }
  row(`incremental pull of 10 in ${N / 1000}k (p50)`, pct(incOurs, 50), pct(incSeed, 50), "ms");
  if (seedMissedInc) log(`incremental: the seed cursor missed ${seedMissedInc} of ${15 * 10} changes`);

  server.close();
  server.closeAllConnections();
  clientA.close();
  clientB.close();
  serverDb.close();
  seedServerDb.close();
  seedClientDb.close();

  // ---- table
  const w = [44, 16, 16, 8];
  const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join("  ");
  process.stdout.write(`\nbrain benchmark: ${N} entries, ${source}\nratio = how many times better picortex is than the seed approach in this run\n\n`);
  process.stdout.write(line(["metric", "picortex", "seed approach", "ratio"]) + "\n");
  process.stdout.write(line(w.map((n) => "-".repeat(n))) + "\n");
  for (const r of rows) process.stdout.write(line(r) + "\n");
  process.stdout.write(`\nbuild ${N} entries (batched, informational): picortex ${buildOurs.toFixed(0)} ms (with FTS index), seed ${buildSeed.toFixed(0)} ms\n`);
}

main()
  .catch((err) => {
    process.stderr.write(`bench/brain: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
