/**
 * Faults the engine must survive, on the real engine with the workspace stack:
 * a 429 with Retry-After (a write fails, as hcloud-go retries GETs only; reads retry),
 * a server create that fails half-way (the server exists, its action poll failed: the
 * provider reports a partial create, the next up finishes it instead of orphaning it),
 * and a kill -9 of the CLI in the middle of an up, followed by `pulumi cancel`, a
 * refresh that clears the pending create, removal of the orphaned server, and an up
 * that converges.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertOk, credentialSecrets, readmeWorkspaceStack, startFixture, type Fixture } from "./support/lane-fixture.js";
import type { Project } from "./harness/engine.js";
import { killPids, pulumiCliUnder } from "./harness/procs.js";
import { checkAgainstRecording, grpcLogMark } from "./support/recordings.js";

const STACK = "faults";
let f: Fixture;
let p: Project;

beforeAll(async () => {
  f = await startFixture();
  // Protection off so each scenario can end in a destroy.
  p = await readmeWorkspaceStack(f, STACK, { "picortex:protection": "false" });
}, 30 * 60_000);

afterAll(async () => {
  await f?.close();
});

/**
 * The kill -9 step is left out of the recording: where the CLI dies (which calls were
 * answered, which Create is cut, what the refresh then reads) depends on timing, not on
 * the providers. Its gRPC log range [start, end) is excluded on both sides.
 */
const killRange: [number, number] = [-1, -1];

const servers = () => f.hz.snapshot().servers as Array<Record<string, any>>;

async function exportState(): Promise<Record<string, any>> {
  const r = await f.lane.cli(["stack", "export", "--stack", STACK], { cwd: p.workDir });
  if (r.code !== 0) throw new Error(`stack export: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, any>;
}

describe.sequential("faults on the real engine", () => {
  it("429 with Retry-After on writes is retried (hcloud-go retries rate_limit_exceeded on every method): the up succeeds", async () => {
    // Measured with the real provider (hcloud-go v2.44.0 retryPolicy). The 429s go to the
    // first writes (POST /ssh_keys, /firewalls, /volumes): the first call of an up is now
    // the stack's live server lookup (a GET, issue 21 items 2 and 14), which a blanket
    // rateLimit(2) would spend first.
    const before = f.hz.requests.length;
    const remove = f.hz.fail({
      method: "POST",
      path: /^\/v1\/(ssh_keys|firewalls|volumes)$/,
      times: 2,
      status: 429,
      code: "rate_limit_exceeded",
      message: "limit of 3600 requests per hour reached",
      headers: { "retry-after": "1", "ratelimit-remaining": "0" },
    });
    const r = await f.lane.run(p, STACK, "up");
    remove();
    assertOk(r, "up under 429s");
    const limited = f.hz.requests.slice(before).filter((q) => q.status === 429);
    expect(limited.length).toBe(2);
    expect(limited.some((q) => q.method !== "GET")).toBe(true);
    expect(servers()).toHaveLength(1);
  }, 600_000);

  it("a write still rate-limited after hcloud-go's 5 retries fails the up with the API's reason; the next up succeeds", async () => {
    assertOk(await f.lane.run(p, STACK, "destroy"), "destroy before the persistent 429");
    // More 429s than the parallel first writes can spend in 1 + 5 attempts each.
    f.hz.rateLimit(100, 0);
    const r = await f.lane.run(p, STACK, "up");
    f.hz.rateLimit(0);
    expect(r.ok).toBe(false);
    expect(r.stdout + r.stderr + (r.error ?? "")).toMatch(/rate_limit_exceeded|limit of 3600 requests/i);
    const again = await f.lane.run(p, STACK, "up");
    assertOk(again, "up after the 429s");
    expect(servers()).toHaveLength(1);
  }, 600_000);

  it("429s on reads are retried: a refresh under rate limiting succeeds", async () => {
    f.hz.rateLimit(3, 1);
    const r = await f.lane.run(p, STACK, "refresh", { expectNoChanges: true });
    assertOk(r, "refresh under 429");
  }, 600_000);

  it("a server create that fails half-way is kept in state, and the next up finishes it", async () => {
    assertOk(await f.lane.run(p, STACK, "destroy"), "destroy before the half-way create");
    expect(servers()).toHaveLength(0);
    // The server is created; polling its create action then fails (HTTP 500 is not
    // retried). The fault is armed once POST /servers has answered, so the data volume's
    // and firewall's own actions (earlier in the same up) are not hit.
    f.hz.setActionDelay(5_000);
    const seen = f.hz.requests.length;
    const run = f.lane.start(p, STACK, "up");
    const deadline = Date.now() + 300_000;
    while (!f.hz.requests.slice(seen).some((q) => q.method === "POST" && q.path === "/v1/servers" && q.status < 300)) {
      if (Date.now() > deadline) throw new Error("the up never reached POST /servers");
      await new Promise((res) => setTimeout(res, 100));
    }
    const remove = f.hz.fail({ method: "GET", path: /^\/v1\/actions$/, status: 500, code: "server_error", message: "injected: action poll failed" });
    const r = await run.done;
    remove();
    f.hz.setActionDelay(50);
    await f.hz.settle();
    expect(r.ok).toBe(false);
    expect(r.stdout + r.stderr + (r.error ?? "")).toContain("injected: action poll failed");
    expect(servers()).toHaveLength(1);
    const id = String(servers()[0]!.id);
    // The engine kept the half-created server (with its init error), not an orphan.
    const state = await exportState();
    const inState = (state.deployment.resources as Array<Record<string, any>>).find((res) => res.type === "hcloud:index/server:Server");
    expect(inState?.id).toBe(id);
    const again = await f.lane.run(p, STACK, "up");
    assertOk(again, "up after the half-way create");
    expect(servers()).toHaveLength(1);
    expect(String(servers()[0]!.id)).toBe(id);
    const after = await exportState();
    const server = (after.deployment.resources as Array<Record<string, any>>).find((res) => res.type === "hcloud:index/server:Server");
    expect(server?.initErrors ?? []).toEqual([]);
  }, 900_000);

  it("kill -9 of the CLI mid-up, then cancel, refresh and up converge to one server", async () => {
    killRange[0] = grpcLogMark(f);
    assertOk(await f.lane.run(p, STACK, "destroy"), "destroy before the kill");
    f.hz.setActionDelay(30_000);
    const seen = f.hz.requests.length;
    const run = f.lane.start(p, STACK, "up");
    // Wait until the server create is on the wire, then kill the CLI (not the program).
    const deadline = Date.now() + 300_000;
    while (!f.hz.requests.slice(seen).some((q) => q.method === "POST" && q.path === "/v1/servers" && q.status < 300)) {
      if (Date.now() > deadline) throw new Error("the up never reached POST /servers");
      await new Promise((r) => setTimeout(r, 200));
    }
    const clis = pulumiCliUnder(run.child.pid!);
    expect(clis.length).toBeGreaterThan(0);
    killPids(clis, "SIGKILL");
    const killed = await run.done;
    expect(killed.ok).toBe(false);
    f.hz.setActionDelay(50);
    await f.hz.settle();
    expect(servers()).toHaveLength(1);
    const orphan = String(servers()[0]!.id);

    // The stack is locked by the dead update: cancel releases it.
    const cancel = await f.lane.cli(["cancel", "--yes", "--stack", STACK], { cwd: p.workDir });
    expect(cancel.code, cancel.stderr).toBe(0);
    const state = await exportState();
    const pending = (state.deployment.pending_operations ?? []) as Array<Record<string, any>>;
    expect(pending.map((op) => `${op.type} ${op.resource?.type}`)).toContain("creating hcloud:index/server:Server");
    // Measured with CLI 3.274.1: `refresh --import-pending-creates <urn> <id>` marks the
    // operation "importing" and the refresh then drops it without reading the server
    // (no Read reaches the provider), so it cannot adopt the orphan. The recovery that
    // works: clear the pending create, remove the orphan (the operator does it in the
    // Hetzner console; here through the API), and up again.
    const refresh = await f.lane.cli(["refresh", "--yes", "--skip-preview", "--stack", STACK, "--non-interactive", "--clear-pending-creates"], { cwd: p.workDir });
    expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
    const blocked = await f.lane.run(p, STACK, "up");
    expect(blocked.ok).toBe(false);
    expect(blocked.stdout + blocked.stderr).toContain("uniqueness_error");
    const del = await fetch(`${f.hz.endpoint}/servers/${orphan}`, { method: "DELETE", headers: { authorization: `Bearer ${f.hz.token}` } });
    expect(del.status).toBeLessThan(300);
    await f.hz.settle();
    const up = await f.lane.run(p, STACK, "up");
    assertOk(up, "up after kill -9, cancel, refresh and removing the orphan");
    expect(servers()).toHaveLength(1);
    expect(String(servers()[0]!.id)).not.toBe(orphan);
    const second = await f.lane.run(p, STACK, "up", { expectNoChanges: true });
    assertOk(second, "zero-change up after recovery");
  }, 1_200_000);

  it("destroy leaves the emulators empty", async () => {
    killRange[1] = grpcLogMark(f);
    assertOk(await f.lane.run(p, STACK, "destroy"), "final destroy");
    await f.hz.settle();
    const snap = f.hz.snapshot();
    expect([snap.servers, snap.sshKeys, snap.firewalls]).toEqual([[], [], []]);
    expect(f.ts.snapshot().keys).toEqual([]);
  }, 600_000);

  it("every provider answered as the recorded real provider did, the kill -9 step excepted (recordings/faults.jsonl)", () => {
    expect(killRange[0]).toBeGreaterThan(0);
    expect(killRange[1]).toBeGreaterThan(killRange[0]);
    checkAgainstRecording(f, "faults", credentialSecrets(f), undefined, [killRange]);
  });
});
