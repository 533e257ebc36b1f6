/**
 * A host left off is turned back on by the next `pulumi up` (issue 21 item 2, second
 * half), on the real engine: the README's protected stack is brought up, the server is
 * powered off through the Hetzner API as an operator (`hcloud server poweroff`) or an
 * interrupted replacement's shutdown leaves it, and then:
 * - `pulumi preview` plans the power-on (workspace-power replaced) and says so, writing
 *   nothing;
 * - `pulumi up` powers the server on (actions/poweron) and nothing else is written;
 * - the next `up` changes nothing and writes nothing (the power step does not run
 *   again);
 * - no credential is in any output or, in plain text, in the backend;
 * - the README teardown still leaves the emulators empty.
 * Before the fix the hcloud provider's `status` was only an output: the server stayed off.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertOk, credentialSecrets, expectEmulatorsEmpty, liftProtection, readmeWorkspaceStack, startFixture, type Fixture } from "./support/lane-fixture.js";
import type { Project } from "./harness/engine.js";

let f: Fixture;

beforeAll(async () => {
  f = await startFixture();
}, 30 * 60_000);

afterAll(async () => {
  await f?.close();
});

const server = () => (f.hz.snapshot().servers as Array<Record<string, any>>)[0]!;
const writes = (from: number) => f.hz.requests.slice(from).filter((q) => q.method !== "GET").map((q) => `${q.method} ${q.path}`);

/** What `hcloud server poweroff <name>` sends. */
async function powerOff(id: number): Promise<void> {
  const r = await fetch(`${f.hz.endpoint}/servers/${id}/actions/poweroff`, { method: "POST", headers: { authorization: `Bearer ${f.hz.token}` } });
  expect(r.status).toBe(201);
  for (let i = 0; i < 100 && server().status !== "off"; i++) await new Promise((res) => setTimeout(res, 100));
  expect(server().status).toBe("off");
}

describe.sequential("a host left off is powered on by the next up", () => {
  let p: Project;
  const STACK = "power";

  it("up from nothing, then the server is powered off behind Pulumi's back", async () => {
    p = await readmeWorkspaceStack(f, STACK);
    assertOk(await f.lane.run(p, STACK, "up"), "first up");
    expect(server().status).toBe("running");
    await powerOff(Number(server().id));
  }, 600_000);

  it("preview plans the power-on and says so, writing nothing", async () => {
    const seen = f.hz.requests.length;
    const r = await f.lane.run(p, STACK, "preview");
    assertOk(r, "preview");
    expect(r.stdout + r.stderr).toContain(`server picortex is off: this up powers it on`);
    expect(Object.keys(r.changeSummary ?? {}).filter((k) => k !== "same")).not.toEqual([]);
    expect(writes(seen)).toEqual([]);
    expect(server().status).toBe("off");
  }, 600_000);

  it("up powers it on, and writes nothing else", async () => {
    const seen = f.hz.requests.length;
    const id = Number(server().id);
    const r = await f.lane.run(p, STACK, "up");
    assertOk(r, "up with the server off");
    expect(server().status).toBe("running");
    expect(Number(server().id)).toBe(id);
    expect(writes(seen)).toEqual([`POST /v1/servers/${id}/actions/poweron`]);
    for (const s of credentialSecrets(f)) expect(r.stdout + r.stderr).not.toContain(s);
  }, 600_000);

  it("the next up changes nothing and writes nothing", async () => {
    const seen = f.hz.requests.length;
    const r = await f.lane.run(p, STACK, "up", { expectNoChanges: true });
    assertOk(r, "up after the power-on");
    expect(Object.keys(r.summary?.resourceChanges ?? {}).filter((k) => k !== "same")).toEqual([]);
    expect(writes(seen)).toEqual([]);
  }, 600_000);

  it("no credential is in plain text in the backend, and the README teardown leaves nothing", async () => {
    const text = f.lane.backendText();
    for (const s of credentialSecrets(f)) expect(text).not.toContain(s);
    await liftProtection(f, p, STACK);
    assertOk(await f.lane.run(p, STACK, "destroy"), "destroy");
    await expectEmulatorsEmpty(f);
  }, 600_000);
});
