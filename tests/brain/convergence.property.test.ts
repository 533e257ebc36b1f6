import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../agent-runtime/store/database.js";
import { SqliteBrainRepository } from "../../agent-runtime/brain/shared/sqlite-repository.js";
import { HybridLogicalClock, compareVersions } from "../../agent-runtime/brain/shared/hlc.js";
import { BrainService } from "../../agent-runtime/brain/shared/service.js";
import { BrainServerStore } from "../../agent-runtime/brain/server/server-store.js";
import { BrainSyncClient } from "../../agent-runtime/brain/client/sync-client.js";
import { HttpSyncTransport } from "../../agent-runtime/brain/client/http-transport.js";
import { SyncError } from "../../agent-runtime/brain/shared/errors.js";
import type { BrainEntry } from "../../agent-runtime/brain/shared/entry.js";
import { pullRequestSchema, pullResponseSchema, pushRequestSchema, pushResponseSchema, type SyncTransport } from "../../agent-runtime/brain/shared/sync-protocol.js";
import { startBrainRuntime } from "./helpers.js";

/**
 * Several replicas make random concurrent edits with skewed clocks (many in the same
 * millisecond), push and pull in random interleavings, lose push responses, and then
 * sync to quiescence. Every replica and the server must end identical, and each entry
 * must hold the write with the greatest version ever made (no lost update). Each local
 * edit must also sort after every version its replica had seen (causality under skew).
 */
type Op =
  | { t: "record"; r: number; title: string }
  | { t: "edit"; r: number; pick: number; title: string }
  | { t: "supersede"; r: number; pick: number; by: number }
  | { t: "delete"; r: number; pick: number }
  | { t: "push"; r: number; loseResponse: boolean }
  | { t: "pull"; r: number }
  | { t: "tick"; ms: number };

const WORDS = ["alpha", "beta", "gamma", "delta", "retry", "cache", "auth", "sync"];
const titleArb = fc.array(fc.constantFrom(...WORDS), { minLength: 1, maxLength: 3 }).map((w) => w.join(" "));

function opsArb(replicas: number) {
  const r = fc.integer({ min: 0, max: replicas - 1 });
  const pick = fc.nat(50);
  return fc.array(
    fc.oneof(
      { weight: 4, arbitrary: fc.record({ t: fc.constant("record" as const), r, title: titleArb }) },
      { weight: 4, arbitrary: fc.record({ t: fc.constant("edit" as const), r, pick, title: titleArb }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant("supersede" as const), r, pick, by: pick }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant("delete" as const), r, pick }) },
      { weight: 3, arbitrary: fc.record({ t: fc.constant("push" as const), r, loseResponse: fc.boolean() }) },
      { weight: 3, arbitrary: fc.record({ t: fc.constant("pull" as const), r }) },
      // Mostly 0: many writes land in the same millisecond.
      { weight: 3, arbitrary: fc.record({ t: fc.constant("tick" as const), ms: fc.constantFrom(0, 0, 0, 1, 5, 1000) }) },
    ),
    { minLength: 1, maxLength: 60 },
  );
}

/** Talks to the server in-process, through the same wire schemas as HTTP (JSON round trip included). */
function inProcessTransport(server: BrainServerStore, workspaceId: string, pageSize: number): SyncTransport & { loseNext: boolean } {
  const wire = <T>(v: T): unknown => JSON.parse(JSON.stringify(v));
  const t = {
    loseNext: false,
    async push(req: Parameters<SyncTransport["push"]>[0]) {
      const res = pushResponseSchema.parse(wire(server.push(workspaceId, pushRequestSchema.parse(wire(req)))));
      if (t.loseNext) {
        t.loseNext = false;
        // The server applied the batch, but the answer never arrived.
        throw new SyncError("unreachable", "response lost");
      }
      return res;
    },
    async pull(req: Parameters<SyncTransport["pull"]>[0]) {
      const parsed = pullRequestSchema.parse(wire({ ...req, limit: pageSize }));
      return pullResponseSchema.parse(wire(server.pull(workspaceId, parsed)));
    },
  };
  return t;
}

interface Replica {
  repo: SqliteBrainRepository;
  service: BrainService;
  client: BrainSyncClient;
  lossy?: { loseNext?: boolean };
}

const NO_RETRY = { attempts: 1, baseDelayMs: 0, maxDelayMs: 0, sleep: async () => {} };

function snapshot(repo: SqliteBrainRepository): unknown[] {
  return (repo.db.prepare("SELECT * FROM brain_entries ORDER BY workspace_id, entry_id").all() as Array<Record<string, unknown>>).map(({ dirty: _d, ...row }) => row);
}

async function runScenario(
  ops: Op[],
  skews: number[],
  makeTransport: (i: number) => SyncTransport & { loseNext?: boolean },
  serverSnapshot: () => unknown[],
): Promise<void> {
  // Simulated time starts an hour before the real clock: the server bounds versions to at
  // most 5 minutes ahead of its own (real) clock, and the skews here stay within that.
  let wall = Date.now() - 3_600_000;
  const writes = new Map<string, BrainEntry>(); // entryId → greatest-version write made anywhere
  const noteWrite = (e: BrainEntry) => {
    const prev = writes.get(e.entryId);
    if (!prev || compareVersions(e.version, prev.version) > 0) writes.set(e.entryId, e);
  };
  const replicas: Replica[] = skews.map((skew, i) => {
    const repo = new SqliteBrainRepository(openDatabase(":memory:"));
    const now = () => wall + skew;
    const clock = new HybridLogicalClock(`node${i}`, now);
    const service = new BrainService(repo, clock, { workspaceId: "ws", projectId: `repo${i % 2}`, agent: `agent${i}` }, now);
    const transport = makeTransport(i);
    return { repo, service, client: new BrainSyncClient(repo, clock, transport, "ws", NO_RETRY, now), lossy: transport.loseNext === undefined ? undefined : transport };
  });
  const localIds = (rep: Replica) => (rep.repo.db.prepare("SELECT entry_id FROM brain_entries WHERE status != 'deleted' ORDER BY entry_id").all() as Array<{ entry_id: string }>).map((r) => r.entry_id);
  const expectCausal = (rep: Replica, before: BrainEntry | undefined, after: BrainEntry) => {
    if (before) expect(compareVersions(after.version, before.version)).toBe(1);
  };

  try {
    for (const op of ops) {
      if (op.t === "tick") {
        wall += op.ms;
        continue;
      }
      const rep = replicas[op.r % replicas.length]!;
      const ids = localIds(rep);
      switch (op.t) {
        case "record":
          noteWrite(rep.service.record({ title: op.title, tags: [op.title.split(" ")[0]!] }));
          break;
        case "edit": {
          if (ids.length === 0) break;
          const id = ids[op.pick % ids.length]!;
          const before = rep.repo.get("ws", id);
          const after = rep.service.update(id, { title: op.title, conclusion: `${op.title} by ${op.r}` });
          expectCausal(rep, before, after);
          noteWrite(after);
          break;
        }
        case "supersede": {
          if (ids.length < 2) break;
          const a = ids[op.pick % ids.length]!;
          const b = ids[op.by % ids.length]!;
          if (a === b || rep.repo.get("ws", a)!.status !== "active") break;
          const before = rep.repo.get("ws", a);
          const { superseded } = rep.service.supersede(a, { entryId: b });
          expectCausal(rep, before, superseded);
          noteWrite(superseded);
          break;
        }
        case "delete": {
          if (ids.length === 0) break;
          const id = ids[op.pick % ids.length]!;
          const before = rep.repo.get("ws", id);
          const after = rep.service.remove(id);
          expectCausal(rep, before, after);
          noteWrite(after);
          break;
        }
        case "push":
          if (rep.lossy) rep.lossy.loseNext = op.loseResponse;
          try {
            await rep.client.push();
          } catch (err) {
            if (!(err instanceof SyncError)) throw err;
          }
          if (rep.lossy) rep.lossy.loseNext = false;
          break;
        case "pull":
          await rep.client.pull();
          break;
      }
    }
    // Quiesce: everyone pushes, then everyone pulls.
    for (const rep of replicas) await rep.client.push();
    for (const rep of replicas) await rep.client.pull();

    const expected = [...writes.values()].sort((a, b) => (a.entryId < b.entryId ? -1 : 1));
    const server = serverSnapshot();
    for (const rep of replicas) {
      expect(rep.repo.pendingCount("ws")).toBe(0);
      const snap = snapshot(rep.repo);
      expect(snap).toEqual(snapshot(replicas[0]!.repo));
      // No lost update: each entry holds the greatest-version write ever made, all fields intact.
      expect((snap as Array<{ entry_id: string; version: string; title: string; status: string }>).map((r) => [r.entry_id, r.version, r.title, r.status])).toEqual(
        expected.map((e) => [e.entryId, e.version, e.title, e.status]),
      );
      // The FTS index agrees too: the same recall on every replica.
      const recall = (r: Replica) => r.service.recall("alpha", { org: true, all: true, limit: 1000 }).hits.map((h) => h.entry.entryId).sort();
      expect(recall(rep)).toEqual(recall(replicas[0]!));
    }
    expect(server).toEqual(snapshot(replicas[0]!.repo));
  } finally {
    for (const rep of replicas) rep.repo.close();
  }
}

const skewsArb = fc.array(fc.integer({ min: -120_000, max: 120_000 }), { minLength: 2, maxLength: 4 });

function serverRows(server: BrainServerStore): () => unknown[] {
  return () =>
    (server.db.prepare("SELECT * FROM brain_server_entries WHERE workspace_id = 'ws' ORDER BY workspace_id, entry_id").all() as Array<Record<string, unknown>>).map(
      ({ seq: _s, ...row }) => row,
    );
}

describe("sync convergence (property)", { timeout: 240_000 }, () => {
  it("replicas with skewed clocks converge with no lost update (in-process server, wire schemas)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 }), skewsArb.chain((s) => opsArb(s.length).map((ops) => ({ s, ops }))), async (pageSize, { s, ops }) => {
        const server = new BrainServerStore(openDatabase(":memory:"));
        try {
          await runScenario(ops, s, () => inProcessTransport(server, "ws", pageSize), serverRows(server));
        } finally {
          server.db.close();
        }
      }),
      { numRuns: 150 },
    );
  });

  it("same-millisecond concurrent edits of one entry resolve identically everywhere", async () => {
    const server = new BrainServerStore(openDatabase(":memory:"));
    const ops: Op[] = [
      { t: "record", r: 0, title: "alpha" },
      { t: "push", r: 0, loseResponse: false },
      { t: "pull", r: 1 },
      { t: "pull", r: 2 },
      // All three edit the same entry in the same millisecond with identical wall clocks.
      { t: "edit", r: 0, pick: 0, title: "alpha zero" },
      { t: "edit", r: 1, pick: 0, title: "alpha one" },
      { t: "edit", r: 2, pick: 0, title: "alpha two" },
      { t: "push", r: 2, loseResponse: false },
      { t: "push", r: 0, loseResponse: false },
      { t: "pull", r: 1 },
      { t: "push", r: 1, loseResponse: false },
    ];
    await runScenario(ops, [0, 0, 0], () => inProcessTransport(server, "ws", 1), serverRows(server));
    server.db.close();
  });
});

describe("sync convergence over real HTTP", { timeout: 240_000 }, () => {
  let rt: Awaited<ReturnType<typeof startBrainRuntime>>;
  beforeAll(async () => {
    rt = await startBrainRuntime();
  });
  afterAll(async () => rt?.stop());

  it("converges through the runtime's /v1/brain endpoints on loopback", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(skewsArb.chain((s) => opsArb(s.length).map((ops) => ({ s, ops }))), async ({ s, ops }) => {
        // A fresh workspace per run keeps runs independent on one server.
        const ws = `ws-http-${run++}`;
        const { token } = rt.store.createToken(ws);
        // The scenario uses workspace "ws"; map it onto this run's workspace at the wire.
        const transportFor = (): SyncTransport => {
          const http = new HttpSyncTransport({ serverUrl: rt.url, token });
          const toWire = (e: BrainEntry): BrainEntry => ({ ...e, workspaceId: ws });
          const fromWire = (e: BrainEntry): BrainEntry => ({ ...e, workspaceId: "ws" });
          return {
            push: (req) => http.push({ ...req, entries: req.entries.map(toWire) }),
            pull: async (req) => {
              const res = await http.pull({ ...req, limit: 3 });
              return { ...res, entries: res.entries.map(fromWire) };
            },
          };
        };
        const rows = () =>
          (rt.store.db.prepare("SELECT * FROM brain_server_entries WHERE workspace_id = ? ORDER BY entry_id").all(ws) as Array<Record<string, unknown>>).map(
            ({ seq: _s, ...row }) => ({ ...row, workspace_id: "ws" }),
          );
        await runScenario(ops, s, transportFor, rows);
      }),
      { numRuns: 15 },
    );
  });
});
