/**
 * Server replacement on the real engine (issue 21 items 2 and 10, issue 22 item 6):
 * - a template change with applyTemplateChanges: the server is replaced delete-first
 *   (explicit name) and the replacement boots with the CURRENT userData carrying a
 *   fresh auth key (the key rotates with the template hash);
 * - `pulumi up --replace <server urn>` and a rebuild by picortex:hostGeneration as
 *   docs/deploy.md describes it: one new server, delete-first (the fixed name), and for
 *   the rebuild a fresh, unspent key;
 * - an image change on a protected server is refused before anything is shut down.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertOk, authKeyIn, credentialSecrets, readmeWorkspaceStack, startFixture, type Fixture } from "./support/lane-fixture.js";
import { setConfig, type Project } from "./harness/engine.js";
import { checkAgainstRecording } from "./support/recordings.js";

let f: Fixture;

beforeAll(async () => {
  f = await startFixture();
}, 30 * 60_000);

afterAll(async () => {
  await f?.close();
});

const servers = () => f.hz.snapshot().servers as Array<Record<string, any>>;

describe.sequential("server replacement on the real engine", () => {
  let p: Project;
  const STACK = "replace";
  let serverUrn = "";

  it("a template change with applyTemplateChanges replaces the server delete-first, with the current userData and a fresh key", async () => {
    p = await readmeWorkspaceStack(f, STACK, { "picortex:protection": "false", "picortex:applyTemplateChanges": "true" });
    assertOk(await f.lane.run(p, STACK, "up"), "first up");
    const [before] = servers();
    const oldKey = authKeyIn(f, before!.id);
    expect(oldKey).toBeTruthy();
    // A template change: Tailscale SSH on (default off) changes the rendered cloud-config.
    await setConfig(f.lane, p, STACK, "picortex:tailscaleSsh", "true");
    const r = await f.lane.run(p, STACK, "up");
    assertOk(r, "up with the template change");
    serverUrn = String(r.outputs?.serverUrn?.value ?? "");
    const after = servers();
    expect(after).toHaveLength(1);
    expect(after[0]!.id).not.toBe(before!.id);
    const newKey = authKeyIn(f, after[0]!.id);
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

  /** Index of the old server's DELETE and of the last server POST in the emulator's request log. */
  const deleteAndCreate = (oldId: unknown) => {
    const reqs = f.hz.requests.map((q) => `${q.method} ${q.path}`);
    return { del: reqs.lastIndexOf(`DELETE /v1/servers/${oldId}`), post: reqs.lastIndexOf("POST /v1/servers") };
  };

  // Engine-driven replacements (issue 21 item 10, fixed by the lanefix lane): the provider
  // reports no replacing property for a `--replace` or a replacementTrigger change, so it
  // asks for no delete-first; before `deleteBeforeReplace: true` on the server the engine
  // created the new "picortex" first and Hetzner refused it (uniqueness_error).
  it("`pulumi up --replace <server urn>` replaces the server delete-first (no uniqueness_error on the fixed name)", async () => {
    const [before] = servers();
    const urn = serverUrn;
    expect(urn).toMatch(/::workspace-server$/);
    const r = await f.lane.run(p, STACK, "up", { replace: [urn] });
    assertOk(r, "up --replace <server urn>");
    const after = servers();
    expect(after).toHaveLength(1);
    expect(after[0]!.id).not.toBe(before!.id);
    const { del, post } = deleteAndCreate(before!.id);
    expect(del).toBeGreaterThan(-1);
    expect(del).toBeLessThan(post);
    expect(f.hz.requests.filter((q) => q.method === "POST" && q.path === "/v1/servers" && q.status !== 201)).toEqual([]);
  }, 900_000);

  // Was `it.fails` (issue 21 item 10): generation 1 -> 2 only rotated the key (the trigger
  // only existed from generation 2 on, and a trigger that appears does not replace), and
  // the trigger-driven replacement was create-first. The trigger is now present from
  // generation 1 and the server is deleteBeforeReplace.
  it("rebuild by hostGeneration (docs/deploy.md, default applyTemplateChanges false) gives one new server with a fresh, unspent key", async () => {
    const [before] = servers();
    const oldKey = authKeyIn(f, before!.id);
    const keysBefore = f.ts.snapshot().keys.length;
    await setConfig(f.lane, p, STACK, "picortex:applyTemplateChanges", "false");
    await setConfig(f.lane, p, STACK, "picortex:hostGeneration", "2");
    const r = await f.lane.run(p, STACK, "up");
    const after = servers();
    const newKey = after[0] ? authKeyIn(f, after[0].id) : undefined;
    const { del, post } = deleteAndCreate(before!.id);
    const keysAfter = f.ts.snapshot().keys.length;
    await f.lane.run(p, STACK, "destroy");
    assertOk(r, "up with hostGeneration 2");
    expect(after).toHaveLength(1);
    expect(after[0]!.id).not.toBe(before!.id);
    expect(newKey).toBeTruthy();
    expect(newKey).not.toBe(oldKey);
    expect(keysAfter).toBe(keysBefore);
    expect(del).toBeGreaterThan(-1);
    expect(del).toBeLessThan(post);
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

  it("every provider answered as the recorded real provider did (recordings/replace.jsonl)", () => {
    checkAgainstRecording(f, "replace", credentialSecrets(f));
  });
});
