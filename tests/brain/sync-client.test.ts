import { describe, expect, it } from "vitest";
import { openDatabase } from "../../agent-runtime/store/database.js";
import { BrainServerStore } from "../../agent-runtime/brain/server/server-store.js";
import { BrainSyncClient, withRetry } from "../../agent-runtime/brain/client/sync-client.js";
import { SyncError } from "../../agent-runtime/brain/shared/errors.js";
import type { SyncTransport } from "../../agent-runtime/brain/shared/sync-protocol.js";
import { memoryBrain } from "./helpers.js";

const NO_RETRY = { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 };

function direct(server: BrainServerStore, ws = "ws1"): SyncTransport {
  return { push: async (r) => server.push(ws, r), pull: async (r) => server.pull(ws, r) };
}

describe("sync client", () => {
  it("retries only retryable errors, with exponential backoff capped at maxDelayMs", async () => {
    const delays: number[] = [];
    let calls = 0;
    const policy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 300, sleep: async (ms: number) => void delays.push(ms), random: () => 1 };
    await expect(
      withRetry(async () => {
        calls++;
        throw new SyncError("unreachable", "down");
      }, policy),
    ).rejects.toThrow("down");
    expect(calls).toBe(5);
    expect(delays).toEqual([100, 200, 300, 300]);
    calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw new SyncError("unauthorized", "bad token", 401);
      }, policy),
    ).rejects.toThrow("bad token");
    expect(calls).toBe(1);
    let n = 0;
    expect(await withRetry(async () => (++n < 3 ? Promise.reject(new SyncError("server", "503", 503)) : "ok"), policy)).toBe("ok");
  });

  it("reports progress on multi-batch syncs", async () => {
    const server = new BrainServerStore(openDatabase(":memory:"));
    const a = memoryBrain();
    a.repo.db.transaction(() => {
      for (let i = 0; i < 450; i++) a.service.record({ title: `entry ${i}` });
    })();
    const events: Array<{ phase: string; done: number }> = [];
    const client = new BrainSyncClient(a.repo, a.clock, direct(server), "ws1", NO_RETRY, Date.now, undefined, (e) => events.push(e));
    expect(await client.push()).toEqual({ pushed: 450, ignored: 0, restamped: 0, superseded: 0 });
    expect(events).toEqual([
      { phase: "push", done: 200 },
      { phase: "push", done: 400 },
    ]);
    const b = memoryBrain({}, "node-b");
    const pullEvents: Array<{ phase: string; done: number; cursor?: number }> = [];
    const paged: SyncTransport = { push: direct(server).push, pull: async (r) => server.pull("ws1", { ...r, limit: 200 }) };
    await new BrainSyncClient(b.repo, b.clock, paged, "ws1", NO_RETRY, Date.now, undefined, (e) => pullEvents.push(e)).pull();
    expect(pullEvents).toEqual([
      { phase: "pull", done: 200, cursor: 200 },
      { phase: "pull", done: 400, cursor: 400 },
    ]);
    expect(b.service.list({ limit: 1000 })).toHaveLength(450);
  });

  it("an entry edited while its push is in flight stays pending and is pushed next time", async () => {
    const server = new BrainServerStore(openDatabase(":memory:"));
    const a = memoryBrain();
    const e = a.service.record({ title: "first" });
    const inner = direct(server);
    let editDuringPush = true;
    const transport: SyncTransport = {
      pull: inner.pull,
      push: async (req) => {
        const res = await inner.push(req);
        if (editDuringPush) {
          editDuringPush = false;
          a.service.update(e.entryId, { title: "edited mid-push" });
        }
        return res;
      },
    };
    const client = new BrainSyncClient(a.repo, a.clock, transport, "ws1", NO_RETRY);
    await client.push();
    expect(a.repo.pendingCount("ws1")).toBe(1);
    await client.push();
    expect(a.repo.pendingCount("ws1")).toBe(0);
    expect(server.pull("ws1", { cursor: 0 }).entries.map((x) => x.title)).toEqual(["edited mid-push"]);
  });

  it("a failed sync leaves pending entries and the cursor as they were, and records the error", async () => {
    const a = memoryBrain();
    a.service.record({ title: "kept" });
    const down: SyncTransport = {
      push: async () => Promise.reject(new SyncError("unreachable", "Brain server http://127.0.0.1:9 is unreachable (ECONNREFUSED).")),
      pull: async () => Promise.reject(new SyncError("unreachable", "unreachable")),
    };
    const client = new BrainSyncClient(a.repo, a.clock, down, "ws1", NO_RETRY);
    await expect(client.sync()).rejects.toThrow(/ECONNREFUSED/);
    expect(client.status()).toMatchObject({ pending: 1, cursor: 0, lastSyncAt: null, lastError: expect.stringMatching(/ECONNREFUSED/) });
    expect(a.service.recall("kept").hits).toHaveLength(1);
  });

  it("after the server loses data (restored from an old backup), clients rebuild it", async () => {
    const old = new BrainServerStore(openDatabase(":memory:"));
    const a = memoryBrain({}, "node-a");
    for (const t of ["one", "two", "three"]) a.service.record({ title: t });
    const clientA = new BrainSyncClient(a.repo, a.clock, direct(old), "ws1", NO_RETRY);
    await clientA.sync();
    expect(clientA.status().cursor).toBe(3);

    // The replacement server has only what another client pushed since.
    const fresh = new BrainServerStore(openDatabase(":memory:"));
    const b = memoryBrain({}, "node-b");
    b.service.record({ title: "four" });
    await new BrainSyncClient(b.repo, b.clock, direct(fresh), "ws1", NO_RETRY).sync();

    const clientA2 = new BrainSyncClient(a.repo, a.clock, direct(fresh), "ws1", NO_RETRY);
    const r = await clientA2.sync();
    expect(r.pushed).toBe(3);
    expect(fresh.pull("ws1", { cursor: 0 }).entries.map((e) => e.title).sort()).toEqual(["four", "one", "three", "two"]);
    expect(a.service.list().map((e) => e.title).sort()).toEqual(["four", "one", "three", "two"]);
    expect(clientA2.status().pending).toBe(0);
  });

  it("a replacement server that is already ahead of the client's cursor is recognised by its id", async () => {
    const first = new BrainServerStore(openDatabase(":memory:"));
    const a = memoryBrain({}, "node-a");
    a.service.record({ title: "mine" });
    await new BrainSyncClient(a.repo, a.clock, direct(first), "ws1", NO_RETRY).sync();
    const other = new BrainServerStore(openDatabase(":memory:"));
    const b = memoryBrain({}, "node-b");
    for (const t of ["x", "y", "z"]) b.service.record({ title: t });
    await new BrainSyncClient(b.repo, b.clock, direct(other), "ws1", NO_RETRY).sync();
    // head 3 >= A's cursor 1: only the server id shows this is not the server A synced with.
    const r = await new BrainSyncClient(a.repo, a.clock, direct(other), "ws1", NO_RETRY).sync();
    expect(r).toMatchObject({ pushed: 1, pulled: 3 });
    expect(other.pull("ws1", { cursor: 0 }).entries.map((e) => e.title).sort()).toEqual(["mine", "x", "y", "z"]);
  });
});
