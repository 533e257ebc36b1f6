/**
 * Brain clock poisoning (issue 13 item 7): a workspace token pushes the largest HLC value
 * or a version dated 2100. The server must refuse both with a clear error, a replica's
 * clock must never follow such a version, and a replica that was already poisoned (before
 * the bound existed) must get back to syncing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { entryToRow, upsertSql } from "../../agent-runtime/brain/shared/entry-row.js";
import { HttpSyncTransport } from "../../agent-runtime/brain/client/http-transport.js";
import { BrainService } from "../../agent-runtime/brain/shared/service.js";
import { BrainSyncClient } from "../../agent-runtime/brain/client/sync-client.js";
import { HybridLogicalClock, HLC_PATTERN, MAX_CLOCK_SKEW_MS, encodeHlc } from "../../agent-runtime/brain/shared/hlc.js";
import { memoryBrain, post, sampleEntry, startBrainRuntime } from "./helpers.js";

const MAX_HLC = "999999999999999-999999-evil";
const IN_2100 = `${String(Date.UTC(2100, 0, 1)).padStart(15, "0")}-000000-evil`;
const NO_RETRY = { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 };

describe("brain clock poisoning", { timeout: 60_000 }, () => {
  let rt: Awaited<ReturnType<typeof startBrainRuntime>>;
  let token: string;
  beforeAll(async () => {
    rt = await startBrainRuntime();
    token = rt.store.createToken("ws1").token;
  });
  afterAll(async () => rt?.stop());

  const push = (version: string, entryId = "e-poison") =>
    post(rt.url, "/v1/brain/push", { idempotencyKey: `k-${version}-${entryId}`, entries: [sampleEntry({ entryId, version })] }, token);

  it("refuses a push of the largest HLC value with a clear error", async () => {
    const r = await push(MAX_HLC);
    expect(r.status).toBe(400);
    const body = await r.json();
    expect(body.error.message).toMatch(/more than 5 minutes ahead of the server clock/);
    expect(body.error.message).toContain("e-poison");
  });

  it("refuses a push dated in 2100, and accepts one within the allowed skew", async () => {
    const r = await push(IN_2100);
    expect(r.status).toBe(400);
    expect((await r.json()).error.message).toMatch(/dated 2100-01-01T00:00:00\.000Z, more than 5 minutes ahead/);
    const soon = encodeHlc({ wall: Date.now() + MAX_CLOCK_SKEW_MS / 2, counter: 0, node: "fast" });
    expect((await push(soon, "e-soon")).status).toBe(200);
  });

  it("a clock never follows a version beyond the skew bound, so it cannot overflow", () => {
    const clock = new HybridLogicalClock("honest");
    expect(clock.observe(MAX_HLC)).toBe(false);
    expect(clock.observe(IN_2100)).toBe(false);
    const next = clock.tick();
    expect(next).toMatch(HLC_PATTERN);
    expect(Math.abs(Number(next.slice(0, 15)) - Date.now())).toBeLessThan(MAX_CLOCK_SKEW_MS);
    // The encoding refuses what it cannot order instead of overflowing into a 16-digit wall.
    expect(() => encodeHlc({ wall: 1e15, counter: 0, node: "x" })).toThrow(/does not fit/);
  });

  it("an already-poisoned replica (and server) recover: sync works again and the entry can be edited and deleted", async () => {
    // What the runtime held before versions were bounded: the max-HLC entry, as stored then.
    rt.store.db.prepare(upsertSql("brain_server_entries", ["seq"])).run({ ...entryToRow(sampleEntry({ entryId: "e-max", title: "poison", version: MAX_HLC })), seq: 1000 });
    rt.store.db.prepare("UPDATE brain_server_state SET last_seq = MAX(last_seq, 1000)").run();

    // A replica whose clock was set to 2100 wrote an entry, then pulled the max-HLC one.
    const in2100 = Date.UTC(2100, 0, 1);
    const poisoned = memoryBrain({}, "victim", () => in2100);
    const wrong = poisoned.service.record({ kind: "note", title: "written while the clock said 2100" });
    expect(wrong.version.startsWith(String(in2100).padStart(15, "0"))).toBe(true);

    // The machine's clock is fixed; the process restarts with the same database.
    const clock = new HybridLogicalClock("victim");
    const service = new BrainService(poisoned.repo, clock, { workspaceId: "ws1", projectId: "github.com/acme/api", agent: "tester" });
    const warnings: string[] = [];
    const client = new BrainSyncClient(poisoned.repo, clock, new HttpSyncTransport({ serverUrl: rt.url, token }), "ws1", NO_RETRY, Date.now, undefined, undefined, (m) => warnings.push(m));
    const first = await client.sync();
    expect(first.repaired).toBe(1);
    expect(warnings.join("\n")).toMatch(/re-stamping with this machine's clock/);
    // The max-HLC entry was pulled but did not move the clock: the next write is dated now.
    expect(poisoned.repo.get("ws1", "e-max")?.version).toBe(MAX_HLC);
    const fresh = service.record({ kind: "note", title: "after the repair" });
    expect(Math.abs(Number(fresh.version.slice(0, 15)) - Date.now())).toBeLessThan(MAX_CLOCK_SKEW_MS);
    // The poisoned entry can be deleted; the tombstone replaces it on the server and on another replica.
    service.remove("e-max");
    const second = await client.sync();
    expect(second.pending).toBe(0);
    const other = memoryBrain({}, "other");
    const otherClient = new BrainSyncClient(other.repo, other.clock, new HttpSyncTransport({ serverUrl: rt.url, token }), "ws1", NO_RETRY);
    await otherClient.sync();
    expect(other.repo.get("ws1", "e-max")?.status).toBe("deleted");
    expect(other.repo.get("ws1", wrong.entryId)?.title).toBe("written while the clock said 2100");
    expect(Number(other.repo.get("ws1", wrong.entryId)!.version.slice(0, 15))).toBeLessThan(Date.now() + MAX_CLOCK_SKEW_MS);
  });
});
