/**
 * Server replacement on the real engine (issue 21 items 2 and 10, issue 22 item 6):
 * - a template change with applyTemplateChanges: the server is replaced delete-first
 *   (explicit name) and the replacement boots with the CURRENT userData carrying a
 *   fresh auth key (the key rotates with the template hash);
 * - a rebuild by picortex:hostGeneration as docs/deploy.md describes it (a known
 *   defect today, run as `it.fails`: see the comment on that test);
 * - an image change on a protected server is refused before anything is shut down.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertOk, readmeWorkspaceStack, startFixture, type Fixture } from "./support/lane-fixture.js";
import { setConfig, type Project } from "./harness/engine.js";

let f: Fixture;

beforeAll(async () => {
  f = await startFixture();
}, 30 * 60_000);

afterAll(async () => {
  await f?.close();
});

const servers = () => f.hz.snapshot().servers as Array<Record<string, any>>;
const authKeyIn = (serverId: unknown) => /tskey-auth-[A-Za-z0-9-]+/.exec(f.hz.userDataOf(Number(serverId)) ?? "")?.[0];

describe.sequential("server replacement on the real engine", () => {
  let p: Project;
  const STACK = "replace";

  it("a template change with applyTemplateChanges replaces the server delete-first, with the current userData and a fresh key", async () => {
    p = await readmeWorkspaceStack(f, STACK, { "picortex:protection": "false", "picortex:applyTemplateChanges": "true" });
    assertOk(await f.lane.run(p, STACK, "up"), "first up");
    const [before] = servers();
    const oldKey = authKeyIn(before!.id);
    expect(oldKey).toBeTruthy();
    // A template change: Tailscale SSH on (default off) changes the rendered cloud-config.
    await setConfig(f.lane, p, STACK, "picortex:tailscaleSsh", "true");
    const r = await f.lane.run(p, STACK, "up");
    assertOk(r, "up with the template change");
    const after = servers();
    expect(after).toHaveLength(1);
    expect(after[0]!.id).not.toBe(before!.id);
    const newKey = authKeyIn(after[0]!.id);
    expect(newKey).toBeTruthy();
    expect(newKey).not.toBe(oldKey);
    expect(f.hz.userDataOf(Number(after[0]!.id))).toMatch(/--ssh/);
    // The old key is gone from the tailnet; exactly the new one remains.
    expect(f.ts.snapshot().keys).toHaveLength(1);
    // Delete-first: the old server's DELETE came before the new server's POST.
    const reqs = f.hz.requests.map((q) => `${q.method} ${q.path}`);
    const del = reqs.lastIndexOf(`DELETE /v1/servers/${before!.id}`);
    const post = reqs.lastIndexOf("POST /v1/servers");
    expect(del).toBeGreaterThan(-1);
    expect(del).toBeLessThan(post);
  }, 900_000);

  // KNOWN DEFECT (issue 21 item 10; components/ and stacks/ are the lifecycle lane's):
  // `it.fails` runs this specification of docs/deploy.md and passes while it fails.
  // Measured on the real engine with the default applyTemplateChanges false:
  //  - hostGeneration 1 -> 2 rotates the auth key but does not replace the server: the
  //    server's replacementTrigger is only set from generation 2 on, and a trigger that
  //    appears (unset -> "2") does not replace;
  //  - a trigger change (or `pulumi up --replace <server urn>`) is driven by the engine,
  //    the provider reports no replacing property and so asks for no delete-first (the
  //    bridge sets deleteBeforeReplace only when `replaces` is non-empty): the new server
  //    is created first and Hetzner refuses a second "picortex" (uniqueness_error).
  // Fix: a trigger present from generation 1 (or compared against 1), and
  // `deleteBeforeReplace: true` on the server. Then turn `it.fails` into `it`.
  it.fails("rebuild by hostGeneration (docs/deploy.md, default applyTemplateChanges false) gives one new server with a fresh, unspent key", async () => {
    const [before] = servers();
    const oldKey = authKeyIn(before!.id);
    await setConfig(f.lane, p, STACK, "picortex:applyTemplateChanges", "false");
    await setConfig(f.lane, p, STACK, "picortex:hostGeneration", "2");
    const r = await f.lane.run(p, STACK, "up");
    const after = servers();
    const newKey = after[0] ? authKeyIn(after[0].id) : undefined;
    await f.lane.run(p, STACK, "destroy");
    assertOk(r, "up with hostGeneration 2");
    expect(after).toHaveLength(1);
    expect(after[0]!.id).not.toBe(before!.id);
    expect(newKey).toBeTruthy();
    expect(newKey).not.toBe(oldKey);
  }, 900_000);

  it("an image change on a protected server is refused before anything is shut down", async () => {
    const STACK2 = "protected";
    const q = await readmeWorkspaceStack(f, STACK2, { "picortex:hostname": "picortex-p" });
    assertOk(await f.lane.run(q, STACK2, "up"), "protected up");
    const [server] = servers();
    expect(server!.protection).toEqual({ delete: true, rebuild: true });
    const seen = f.hz.requests.length;
    await setConfig(f.lane, q, STACK2, "picortex:image", "debian-12");
    const r = await f.lane.run(q, STACK2, "up");
    expect(r.ok).toBe(false);
    const writes = f.hz.requests.slice(seen).filter((x) => x.method !== "GET");
    expect(writes.map((x) => `${x.method} ${x.path}`)).toEqual([]);
    expect(servers()[0]!.status).toBe("running");
  }, 900_000);
});
