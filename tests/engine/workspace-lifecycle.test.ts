/**
 * The workspace stack through the real Pulumi engine (CLI built from tools/pulumi),
 * with provider plugins that behave like hcloud/tailscale/command and the Hetzner and
 * Tailscale API emulators: preview --diff with every secret masked, up from nothing,
 * a second up with zero changes, and the README's teardown leaving nothing behind and
 * no secret in plain text in the backend.
 *
 * Servers are not booted here (boot "none"): the host-only stack (no releaseManifest)
 * needs no SSH. The booted-host deploy is in deploy.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertOk, liftProtection, expectEmulatorsEmpty, credentialSecrets, readmeWorkspaceStack, startFixture, type Fixture } from "./support/lane-fixture.js";
import type { Project } from "./harness/engine.js";
import { checkAgainstRecording } from "./support/recordings.js";

const STACK = "prod";
let f: Fixture;
let p: Project;
/** Every secret value the stack handles: none may appear in output or state. */
const secrets: string[] = [];
/** …including the provider credentials and every access token issued so far. */
const allSecrets = () => [...secrets, ...credentialSecrets(f)];
let device: { id: string; nodeId: string } | undefined;

beforeAll(async () => {
  f = await startFixture();
  // The README's recipe as written: the Tailscale credential is the OAuth client.
  p = await readmeWorkspaceStack(f, STACK);
}, 30 * 60_000);

afterAll(async () => {
  await f?.close();
});

describe.sequential("workspace stack on the real engine", () => {
  it("prints which providers the lane uses", () => {
    expect(f.lane.plugins.map((x) => x.pkg).sort()).toEqual(["command", "hcloud", "tailscale"]);
    for (const x of f.lane.plugins) expect(x.version).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("preview --diff plans the host with every secret masked", async () => {
    const r = await f.lane.run(p, STACK, "preview", { diff: true });
    assertOk(r, "preview --diff");
    expect(r.stdout).toMatch(/\+ hcloud:index\/server:Server/);
    expect(r.stdout).toMatch(/\+ tailscale:index\/tailnetKey:TailnetKey/);
    expect(r.stdout).toMatch(/userData\s*:\s*\[secret\]/);
    for (const s of allSecrets()) expect(r.stdout + r.stderr).not.toContain(s);
    expect(r.changeSummary?.create).toBeGreaterThanOrEqual(5);
    // A preview changes nothing.
    expect(f.hz.snapshot().servers).toHaveLength(0);
    expect(f.ts.snapshot().keys).toHaveLength(0);
  }, 300_000);

  it("up from nothing creates the key, SSH key, firewall, data volume and protected server", async () => {
    const r = await f.lane.run(p, STACK, "up");
    assertOk(r, "up");
    const snap = f.hz.snapshot();
    expect(snap.servers).toHaveLength(1);
    expect(snap.sshKeys).toHaveLength(1);
    expect(snap.firewalls).toHaveLength(1);
    expect(snap.volumes).toHaveLength(1);
    const server = snap.servers[0] as Record<string, any>;
    const vol = snap.volumes[0] as Record<string, any>;
    expect(vol.protection).toEqual({ delete: true });
    expect(vol.server).toBe(server.id);
    expect(server.name).toBe("picortex");
    expect(server.protection).toEqual({ delete: true, rebuild: true });
    // The data volume (chat homes, brain database) is attached to the server.
    expect(snap.volumes).toHaveLength(1);
    expect((snap.volumes[0] as Record<string, any>).server).toBe(server.id);
    const keys = f.ts.snapshot().keys as Array<Record<string, any>>;
    expect(keys).toHaveLength(1);
    // The server boots with the key the TailnetKey created, inside its userData.
    const userData = f.hz.userDataOf(Number(server.id)) ?? "";
    const key = /tskey-auth-[A-Za-z0-9-]+/.exec(userData)?.[0] ?? "";
    expect(key).toContain(String(keys[0]!.id));
    secrets.push(key);
    expect(r.outputs?.serverId?.value).toBe(String(server.id));
    expect(r.outputs?.runtimeUrl?.value).toBe("http://picortex:7420");
    // The provider got the key with an access token from the OAuth client: a tagged key
    // (the API refuses an untagged one from OAuth), the client's secret exchanged once.
    expect(keys[0]!.tags).toEqual(["tag:picortex"]);
    const grants = f.ts.requests.filter((q) => q.path === "/api/v2/oauth/token");
    expect(grants.length).toBeGreaterThan(0);
    expect(grants.every((q) => q.status === 200)).toBe(true);
    expect(f.ts.requests.filter((q) => q.path.startsWith("/api/v2/tailnet/")).every((q) => q.status < 300)).toBe(true);
    // The host joins with that key, as its cloud-config's `tailscale up` does on a booted
    // server (servers are not booted here): the device destroy must remove.
    device = await f.ts.join({ authKey: key, hostname: "picortex", tags: ["tag:picortex"], ssh: false });
    expect(f.ts.snapshot().devices).toHaveLength(1);
    for (const s of allSecrets()) expect(r.stdout + r.stderr).not.toContain(s);
  }, 600_000);

  it("a second up with no change changes nothing", async () => {
    const before = f.hz.requests.filter((q) => q.method !== "GET").length;
    const r = await f.lane.run(p, STACK, "up", { expectNoChanges: true });
    assertOk(r, "second up");
    const changes = r.summary?.resourceChanges ?? {};
    expect(Object.keys(changes).filter((k) => k !== "same")).toEqual([]);
    expect(f.hz.requests.filter((q) => q.method !== "GET").length).toBe(before);
  }, 600_000);

  it("refresh reads every resource back without a change", async () => {
    const r = await f.lane.run(p, STACK, "refresh", { expectNoChanges: true });
    assertOk(r, "refresh");
  }, 600_000);

  it("README teardown (scripts/unprotect.ts's steps, then destroy) leaves the emulators empty", async () => {
    // scripts/unprotect.ts: protection false, then `pulumi up --target` the protected URNs only.
    const before = f.hz.requests.length;
    await liftProtection(f, p, STACK);
    expect((f.hz.snapshot().servers[0] as Record<string, any>).protection).toEqual({ delete: false, rebuild: false });
    expect((f.hz.snapshot().volumes[0] as Record<string, any>).protection).toEqual({ delete: false });
    // Only protection changes reached the API: nothing else was touched.
    const writes = f.hz.requests.slice(before).filter((q) => q.method !== "GET").map((q) => q.path);
    expect(writes.every((w) => w.endsWith("/actions/change_protection")), writes.join(", ")).toBe(true);
    const d = await f.lane.run(p, STACK, "destroy");
    assertOk(d, "destroy");
    // TailnetDeviceCleanup removed the host's device with its own OAuth token
    // (components/tailnet-device.ts: client_id/client_secret in the form).
    await expectEmulatorsEmpty(f);
    const cleanupGrant = f.ts.requests.findIndex((q) => q.path === "/api/v2/oauth/token" && (q.body as Record<string, unknown> | undefined)?.client_id === f.ts.oauthClient.id);
    const deleted = f.ts.requests.findIndex((q) => q.method === "DELETE" && [`/api/v2/device/${device!.nodeId}`, `/api/v2/device/${device!.id}`].includes(q.path));
    expect(f.ts.requests[cleanupGrant]?.status).toBe(200);
    expect(f.ts.requests[deleted]?.status).toBe(200);
    expect(deleted).toBeGreaterThan(cleanupGrant);
    for (const s of allSecrets()) expect(d.stdout + d.stderr).not.toContain(s);
  }, 600_000);

  it("no secret is in plain text anywhere in the backend (state, history, backups)", async () => {
    const text = f.lane.backendText();
    expect(text.length).toBeGreaterThan(0);
    expect(f.ts.accessTokens().length).toBeGreaterThan(1);
    for (const s of allSecrets()) expect(text).not.toContain(s);
  });

  it("every provider answered as the recorded real provider did (recordings/workspace-lifecycle.jsonl)", () => {
    checkAgainstRecording(f, "workspace-lifecycle", secrets);
  });
});
