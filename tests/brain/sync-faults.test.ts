import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SyncError } from "../../agent-runtime/brain/shared/errors.js";
import { HttpSyncTransport } from "../../agent-runtime/brain/client/http-transport.js";
import { BrainSyncClient, DEFAULT_RETRY, withRetry } from "../../agent-runtime/brain/client/sync-client.js";
import { memoryBrain, startBrainRuntime } from "./helpers.js";

describe("brain sync faults", () => {
  it("the default backoff outlasts a server restart (down ~5 s), even with the shortest jitter", async () => {
    let clock = 0;
    const sleep = async (ms: number) => void (clock += ms);
    let calls = 0;
    const result = await withRetry(
      async () => {
        calls++;
        if (clock < 5000) throw new SyncError("unreachable", "Brain server http://x is unreachable (ECONNREFUSED).");
        return "synced";
      },
      { ...DEFAULT_RETRY, sleep, random: () => 0 },
    );
    expect(result).toBe("synced");
    expect(calls).toBeGreaterThan(1);
  });

  it("gives up with a clear final message: how long it tried, and that nothing was lost", async () => {
    let clock = 0;
    const err = await withRetry(
      async () => {
        throw new SyncError("unreachable", "Brain server http://x is unreachable (ECONNREFUSED).");
      },
      { ...DEFAULT_RETRY, sleep: async (ms) => void (clock += ms), random: () => 0 },
    ).catch((e: unknown) => e as SyncError);
    expect(err).toBeInstanceOf(SyncError);
    expect(err.kind).toBe("unreachable");
    expect(err.message).toMatch(/unreachable \(ECONNREFUSED\)\. \(gave up after 8 attempts over 15\.8 s; nothing was lost: run `picortex brain sync` again/);
    expect(clock).toBeGreaterThanOrEqual(15_000);
  });

  describe("a replica whose clock is 1 h behind", () => {
    let rt: Awaited<ReturnType<typeof startBrainRuntime>>;
    beforeAll(async () => {
      rt = await startBrainRuntime();
    });
    afterAll(async () => rt?.stop());

    it("pushes its entries on the server's time, so `recall --since 30m` elsewhere finds them; conflicts still follow the version", async () => {
      const token = rt.store.createToken("ws1", "skewed").token;
      const hour = 3600_000;
      const behind = () => Date.now() - hour;
      const a = memoryBrain({}, "node-skewed", behind);
      const b = memoryBrain({}, "node-right");
      const entry = a.service.record({ title: "skewed replica insight", summary: "written on a slow clock", kind: "insight" });
      expect(entry.updatedAt).toBeLessThan(Date.now() - hour + 60_000);
      const transport = () => new HttpSyncTransport({ serverUrl: rt.url, token });
      const report = await new BrainSyncClient(a.repo, a.clock, transport(), "ws1", DEFAULT_RETRY, behind).sync();
      expect(report.clockSkewMs).toBeLessThan(-hour + 2 * 60_000);
      expect(report.clockSkewMs).toBeGreaterThan(-hour - 2 * 60_000);
      await new BrainSyncClient(b.repo, b.clock, transport(), "ws1").sync();
      const since = Date.now() - 30 * 60_000;
      const found = b.service.recall("skewed insight", { since }).hits;
      expect(found.map((h) => h.entry.entryId)).toEqual([entry.entryId]);
      expect(found[0]!.entry.version).toBe(entry.version);
      // A replica with a right clock reports no skew.
      expect((await new BrainSyncClient(b.repo, b.clock, transport(), "ws1").sync()).clockSkewMs).toBeUndefined();
    });
  });
});
