/**
 * Attacker finding 5: the server accepts versions up to ITS clock + MAX_CLOCK_SKEW_MS. A
 * replica whose clock trails the server by a second used to refuse to follow such a
 * version, stamp its next edit below it, get that push ignored, mark it pushed anyway
 * and keep its edit while the server and every other replica kept the other one, forever.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { HttpSyncTransport } from "../../agent-runtime/brain/client/http-transport.js";
import { BrainSyncClient } from "../../agent-runtime/brain/client/sync-client.js";
import { MAX_CLOCK_SKEW_MS, compareVersions, encodeHlc } from "../../agent-runtime/brain/shared/hlc.js";
import type { SyncTransport } from "../../agent-runtime/brain/shared/sync-protocol.js";
import { memoryBrain, post, sampleEntry, startBrainRuntime } from "./helpers.js";

const NO_RETRY = { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 };
let rt: Awaited<ReturnType<typeof startBrainRuntime>>;
let token: string;
beforeAll(async () => {
  rt = await startBrainRuntime();
  token = rt.store.createToken("ws1").token;
});
afterAll(async () => rt?.stop());

const http = () => new HttpSyncTransport({ serverUrl: rt.url, token });
/** A transport that cannot read the server's clock (an old server, a proxy stripping Date). */
const noClock = (): SyncTransport => {
  const t = http();
  return { push: (r) => t.push(r), pull: (r) => t.pull(r) };
};

async function pushAtCeiling(entryId: string, key: string, title: string): Promise<string> {
  // Another holder of the workspace token pushes a version just inside the server's bound.
  const v = encodeHlc({ wall: Date.now() + MAX_CLOCK_SKEW_MS - 200, counter: 999999, node: "zzzz" });
  const res = await post(rt.url, "/v1/brain/push", { idempotencyKey: key, entries: [sampleEntry({ entryId, title, version: v })] }, token);
  expect(res.status).toBe(200);
  return v;
}

async function otherReplicaSees(entryId: string) {
  const other = memoryBrain({}, "other");
  await new BrainSyncClient(other.repo, other.clock, http(), "ws1", NO_RETRY).sync();
  return other.repo.get("ws1", entryId)!;
}

it("a replica trailing the server by 1 s follows a version at the server's ceiling: its later edit wins everywhere", async () => {
  const lag = () => Date.now() - 1000;
  const r = memoryBrain({}, "honest", lag);
  const rc = new BrainSyncClient(r.repo, r.clock, http(), "ws1", NO_RETRY, lag);
  const e = r.service.record({ kind: "note", title: "original" });
  await rc.sync();
  const v = await pushAtCeiling(e.entryId, "atk1-ceiling-attack-key", "attacker");
  await rc.sync();
  expect(r.repo.get("ws1", e.entryId)!.title).toBe("attacker");

  const edited = r.service.update(e.entryId, { title: "honest edit after the attack" });
  expect(compareVersions(edited.version, v)).toBe(1); // stamped above what it pulled
  const s1 = await rc.sync();
  await rc.sync();
  expect(s1.pushed).toBe(1);
  expect(s1.pushIgnored).toBe(0);
  expect(rc.status().pending).toBe(0);

  const seen = await otherReplicaSees(e.entryId);
  const mine = r.repo.get("ws1", e.entryId)!;
  expect(mine.title).toBe("honest edit after the attack");
  expect([seen.title, seen.version]).toEqual([mine.title, mine.version]);
});

it("an edit stamped below a version already pulled (clock did not follow) is re-stamped and pushed again, not marked pushed", async () => {
  const lag = () => Date.now() - 1000;
  const r = memoryBrain({}, "honest2", lag);
  // No server clock: the replica's bound stays its own, so it cannot follow the ceiling version.
  const rc = new BrainSyncClient(r.repo, r.clock, noClock(), "ws1", NO_RETRY, lag);
  const e = r.service.record({ kind: "note", title: "original" });
  await rc.sync();
  const v = await pushAtCeiling(e.entryId, "atk2-ceiling-attack-key", "attacker");
  await rc.sync();
  const edited = r.service.update(e.entryId, { title: "edit after seeing it" });
  expect(compareVersions(edited.version, v)).toBe(-1); // the precondition of the fault
  const s1 = await rc.sync();
  expect(s1.restamped).toBe(1);
  expect(rc.status().pending).toBe(0);

  const seen = await otherReplicaSees(e.entryId);
  const mine = r.repo.get("ws1", e.entryId)!;
  expect(mine.title).toBe("edit after seeing it");
  expect(compareVersions(mine.version, v)).toBe(1);
  expect([seen.title, seen.version]).toEqual([mine.title, mine.version]);
});

it("a concurrent older edit loses to the newer one (newest wins), but loudly, and all replicas agree", async () => {
  const r = memoryBrain({}, "honest3");
  const warnings: string[] = [];
  const rc = new BrainSyncClient(r.repo, r.clock, http(), "ws1", NO_RETRY, Date.now, undefined, undefined, (m) => warnings.push(m));
  const e = r.service.record({ kind: "note", title: "original" });
  await rc.sync();
  r.service.update(e.entryId, { title: "concurrent local edit" }); // made before the newer version was seen
  const v = await pushAtCeiling(e.entryId, "atk3-ceiling-attack-key", "newer elsewhere");
  const s = await rc.sync();
  expect(s.superseded).toBe(1);
  expect(s.restamped).toBe(0);
  expect(warnings.join("\n")).toMatch(new RegExp(`Local edit of ${e.entryId}.*lost to a concurrent newer edit`));
  const mine = r.repo.get("ws1", e.entryId)!;
  const seen = await otherReplicaSees(e.entryId);
  expect([mine.title, mine.version]).toEqual(["newer elsewhere", v]);
  expect([seen.title, seen.version]).toEqual([mine.title, mine.version]);
});
