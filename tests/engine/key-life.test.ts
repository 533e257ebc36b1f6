/**
 * The auth key's life follows the server's creation (issue 21 item 14), on the real
 * engine: a server create that Hetzner refuses leaves the one-time key in state; an hour
 * later (the key's default expiry) the operator runs `pulumi up` again. The server must
 * boot with a key that can still join, not the expired one. Then a second `up` changes
 * nothing (the key does not rotate while the server exists), and destroy leaves nothing.
 * Before the fix the retry created the server with the expired key: it never joins.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertOk, authKeyIn, expectEmulatorsEmpty, liftProtection, readmeWorkspaceStack, startFixture, type Fixture } from "./support/lane-fixture.js";
import type { Project } from "./harness/engine.js";

let f: Fixture;

beforeAll(async () => {
  f = await startFixture();
}, 30 * 60_000);

afterAll(async () => {
  await f?.close();
});

const servers = () => f.hz.snapshot().servers as Array<Record<string, any>>;

describe.sequential("the auth key's life follows the server's creation", () => {
  let p: Project;
  const STACK = "keylife";
  let firstKeys: string[] = [];

  it("a server create Hetzner refuses fails the up, and leaves the key in state", async () => {
    p = await readmeWorkspaceStack(f, STACK);
    const remove = f.hz.fail({ method: "POST", path: "/v1/servers", status: 412, code: "resource_unavailable", message: "server type cx23 is not available in nbg1 right now" });
    const r = await f.lane.run(p, STACK, "up");
    remove();
    expect(r.ok).toBe(false);
    expect(r.stdout + r.stderr + (r.error ?? "")).toContain("resource_unavailable");
    expect(servers()).toHaveLength(0);
    firstKeys = f.ts.snapshot().keys.map((k: any) => String(k.id));
    expect(firstKeys).toHaveLength(1);
  }, 600_000);

  it("retried an hour later, the server boots with a key that still joins", async () => {
    f.ts.advanceClock(3700); // past the key's 1 h expiry (picortex:tailscaleKeyExpirySeconds)
    const r = await f.lane.run(p, STACK, "up");
    assertOk(r, "retried up");
    const [server] = servers();
    const key = authKeyIn(f, server!.id);
    expect(key).toBeTruthy();
    const keys = f.ts.snapshot().keys.map((k: any) => String(k.id));
    expect(keys).toHaveLength(1);
    expect(keys[0]).not.toBe(firstKeys[0]);
    // What the host's `tailscale up --auth-key` does on first boot.
    const device = await f.ts.join({ authKey: key!, hostname: "picortex", tags: ["tag:picortex"], ssh: false });
    expect(device.hostname).toBe("picortex");
  }, 600_000);

  it("the next up changes nothing: the key does not rotate while the server exists", async () => {
    const keys = f.ts.snapshot().keys.map((k: any) => String(k.id));
    const r = await f.lane.run(p, STACK, "up", { expectNoChanges: true });
    assertOk(r, "up with no change");
    expect(Object.keys(r.summary?.resourceChanges ?? {}).filter((k) => k !== "same")).toEqual([]);
    expect(f.ts.snapshot().keys.map((k: any) => String(k.id))).toEqual(keys);
  }, 600_000);

  it("the README teardown leaves nothing", async () => {
    await liftProtection(f, p, STACK);
    assertOk(await f.lane.run(p, STACK, "destroy"), "destroy");
    await expectEmulatorsEmpty(f);
  }, 600_000);
});
