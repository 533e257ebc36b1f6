/**
 * The booted-host deploy on the real engine (issue 22, item 6, second scenario): one
 * `pulumi up` from nothing creates the server, which the Hetzner emulator boots for real
 * (systemd-nspawn, the stack's own cloud-config, tailnet joined by its own
 * `tailscale up`), and the command provider double then deploys the runtime release over
 * real SSH (readiness poll, cloud-init wait, settings on stdin, upload, picortex-release),
 * pinned to the host key the stack generated. Then a chat turn is answered with the real
 * Claude Code CLI as the chat's Linux user, the portal answers, a second `up` changes
 * nothing, and the README teardown leaves the emulators empty.
 *
 * Lane-only steps, each said where it happens: the emulators' endpoints (lane fixture),
 * deployVia public-ip (this machine is not on a tailnet; the allowlist names the veth
 * network), and the runtime's upstream pointed at the fake Messages API through the root
 * console (no registry serves api.anthropic.com here).
 *
 *   flock /tmp/picortex-system.lock npx vitest run --project machines tests/engine/deploy.test.ts
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assertOk, authKeyIn, expectEmulatorsEmpty, liftProtection, credentialSecrets, operatorKey, readmeWorkspaceStack, startFixture, type Fixture } from "./support/lane-fixture.js";
import { setConfig, type Project } from "./harness/engine.js";
import { NspawnBackend } from "./emulators/hetzner/nspawn-backend.js";
import { requireHarness } from "../e2e/harness/requirements.js";
import { readSse } from "../e2e/harness/sse.js";
import { startFakeAnthropicApi, type FakeAnthropicApi } from "../support/fake-anthropic-api.js";
import { buildRelease } from "../../scripts/lib/bundle-release.js";
import { generateHostKey } from "../../components/ssh-keys.js";
import { checkAgainstRecording } from "./support/recordings.js";

const STACK = "prod";
const STEP_MS = 900_000;
const repoRoot = join(fileURLToPath(import.meta.url), "..", "..", "..");
const apiToken = `pct_${randomBytes(24).toString("hex")}`;
const anthropicKey = `sk-ant-lane-${randomBytes(16).toString("hex")}`;
const CHAT = "lane-first";

let f: Fixture;
let p: Project;
let api: FakeAnthropicApi | undefined;
let serverId = 0;
let runtimeUrl = "";
let releaseHash = "";
/** The booted servers' public addresses (the first host and its rebuild): run-specific, so placeholders in the recording. */
const serverIps: string[] = [];
/** Every secret value the stack handles: none may appear in output or state. */
const secrets: string[] = [apiToken, anthropicKey];
const auth = { authorization: `Bearer ${apiToken}` };

/** One HTTP request to the runtime with the exact Host/Origin headers given (fetch would set Host itself). */
function request(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
  const url = new URL(path, runtimeUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ method, host: url.hostname, port: url.port, path: url.pathname, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

function noteServerIp(server: Record<string, any> | undefined): void {
  const ip = server?.public_net?.ipv4?.ip;
  if (typeof ip === "string" && ip !== "") serverIps.push(ip);
}

function backend(): NspawnBackend {
  return f.hz.backend as NspawnBackend;
}

beforeAll(async () => {
  requireHarness("nspawn");
  f = await startFixture({ boot: "nspawn" });
  p = await readmeWorkspaceStack(f, STACK);
  secrets.push(...credentialSecrets(f));
  // The README's deploy recipe: bundle, then the deploy settings (secrets on stdin).
  const release = await buildRelease({ repoRoot, outDir: join(p.workDir, "dist", "release") });
  const operator = operatorKey(p.workDir);
  const hostKey = generateHostKey("picortex-host");
  secrets.push(operator.privateKey.trim().split("\n").slice(1, -1).join(""), hostKey.privateKey.trim().split("\n").slice(1, -1).join(""));
  await setConfig(f.lane, p, STACK, "picortex:sshPublicKey", operator.publicKey);
  await setConfig(f.lane, p, STACK, "picortex:adminPrivateKey", operator.privateKey, { secret: true });
  await setConfig(f.lane, p, STACK, "picortex:sshHostKey", hostKey.privateKey, { secret: true });
  await setConfig(f.lane, p, STACK, "picortex:apiToken", apiToken, { secret: true });
  await setConfig(f.lane, p, STACK, "picortex:anthropicApiKey", anthropicKey, { secret: true });
  // Absolute: a relative path resolves against the program's project root (this
  // repository), and the lane does not write into the checkout it tests.
  await setConfig(f.lane, p, STACK, "picortex:releaseManifest", join(p.workDir, "dist", "release", "latest.json"));
  expect(existsSync(join(p.workDir, "dist", "release", "latest.json"))).toBe(true);
  releaseHash = release.hash;
  // Lane only: this machine reaches the host on its veth network, not over a tailnet.
  await setConfig(f.lane, p, STACK, "picortex:deployVia", "public-ip");
  // A list in Pulumi.yaml's config types: set by path, as `pulumi config set --path` does.
  const allow = await f.lane.cli(["config", "set", "--path", "picortex:sshAllowlist[0]", "10.213.0.0/16", "--stack", STACK], { cwd: p.workDir });
  expect(allow.code, allow.stderr).toBe(0);
}, 30 * 60_000);

afterAll(async () => {
  await api?.close();
  await f?.close();
}, STEP_MS);

/** Lane only: the runtime's upstream becomes the fake Messages API, on the address only this guest reaches. */
async function pointAtFakeApi(): Promise<FakeAnthropicApi> {
  const fake = await startFakeAnthropicApi({ host: backend().hostAddressForGuest(serverId), port: 0 });
  const c = backend().console(serverId);
  const config = JSON.parse(await c(["cat", "/etc/picortex/runtime.json"])) as Record<string, any>;
  config.turns = { ...(config.turns ?? {}), upstreamBaseUrl: `http://${backend().hostAddressForGuest(serverId)}:${fake.port}` };
  await c(["sh", "-c", 'printf "%s" "$1" > /etc/picortex/runtime.json && systemctl restart picortex-runtime.service', "sh", JSON.stringify(config, null, 2)]);
  for (let i = 0; i < 120; i++) {
    const ok = await fetch(`${runtimeUrl}/healthz`).then((x) => x.ok, () => false);
    if (ok) break;
    await new Promise((res) => setTimeout(res, 500));
  }
  return fake;
}

async function diagnostics(): Promise<string> {
  if (!serverId) return "(no server)";
  const c = backend().console(serverId);
  const parts = await Promise.all([
    c(["sh", "-c", "systemctl --no-pager --failed; journalctl -u picortex-runtime.service --no-pager -n 40"]).catch((e: Error) => e.message),
    c(["tail", "-n", "30", "/var/log/cloud-init-output.log"]).catch((e: Error) => e.message),
  ]);
  return parts.join("\n---\n");
}

describe.sequential("booted-host deploy on the real engine", () => {
  it("`pulumi up` from nothing boots the host and deploys the runtime over SSH, pinned to the stack's host key", async () => {
    const r = await f.lane.run(p, STACK, "up");
    const servers = f.hz.snapshot().servers as Array<Record<string, any>>;
    serverId = Number(servers[0]?.id ?? 0);
    noteServerIp(servers[0]);
    if (!r.ok) throw new Error(`up failed: ${r.error}\n${r.stdout.slice(-6000)}\n--- host ---\n${await diagnostics()}`);
    expect(servers).toHaveLength(1);
    // The deploy steps ran, in the engine's order, and the release is active on the host.
    for (const step of ["runtime-reachable", "runtime-cloud-init", "runtime-settings", "runtime-upload", "runtime-release"]) expect(r.stdout).toContain(step);
    const status = JSON.parse(await backend().console(serverId)(["/usr/local/sbin/picortex-release", "status"])) as { current: string; unit: string; healthy: boolean };
    expect(status).toMatchObject({ current: releaseHash, unit: "active", healthy: true });
    // The settings travelled on stdin into root-only credentials.
    expect((await backend().console(serverId)(["cat", "/etc/picortex/credentials/anthropic-api-key"])).trim()).toBe(anthropicKey);
    expect(await backend().console(serverId)(["stat", "-c", "%U %a", "/etc/picortex/credentials/anthropic-api-key"])).toMatch(/^root 600/);
    for (const s of [...secrets, ...credentialSecrets(f)]) expect(r.stdout + r.stderr, "a secret in the engine's output").not.toContain(s);
    // The runtime listens on the host's tailnet address (MagicDNS stand-in), as runtimeUrl says.
    expect(r.outputs?.runtimeUrl?.value).toBe("http://picortex:7420");
    const tailnetIp = f.ts.resolve("picortex")![0]!;
    runtimeUrl = `http://${tailnetIp}:7420`;
    const health = await fetch(`${runtimeUrl}/healthz`);
    expect(health.status, await diagnostics()).toBe(200);
  }, STEP_MS);

  it("answers a chat turn with the real Claude CLI as the chat's user, through the key the deploy installed", async () => {
    api = await pointAtFakeApi();
    const created = await readSse(`${runtimeUrl}/v1/chats`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ id: CHAT }) });
    expect(created.status, JSON.stringify(created.events)).toBe(200);
    expect(created.events.at(-1)?.event, JSON.stringify(created.events.at(-1))).toBe("ready");
    expect(await backend().console(serverId)(["getent", "passwd", `pc-${CHAT}`])).toContain(`:/srv/picortex/chats/${CHAT}:`);

    const text = `hello from the engine lane ${randomBytes(4).toString("hex")}`;
    const post = await fetch(`${runtimeUrl}/v1/chats/${CHAT}/turns`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ text }) });
    expect(post.status).toBe(202);
    const turn = (await post.json()) as { eventsPath: string };
    const { events } = await readSse(`${runtimeUrl}${turn.eventsPath}`, { headers: auth, timeoutMs: 600_000 });
    const view = events.at(-1)!.data as { status: string; reply: string | null };
    expect(view.status, `${JSON.stringify(events.slice(-3))}\n${await diagnostics()}`).toBe("done");
    expect(view.reply).toContain(text);
    const request = api.messageRequests().find((q) => q.lastUserText?.includes(text));
    // The gateway swapped the chat's token for the key the engine deployed.
    expect(request?.headers["x-api-key"]).toBe(anthropicKey);
  }, STEP_MS);

  it("serves the portal to its MagicDNS origin: sign-in with the host's portal token, the agent's tmux session live", async () => {
    // As a browser on the tailnet sends it: Host and Origin are the MagicDNS name (runtimeUrl).
    const asBrowser = { host: "picortex:7420", origin: "http://picortex:7420" };
    const page = await request("GET", "/portal/", asBrowser);
    expect(page.status).toBe(200);
    expect(page.body).toContain("<html");
    const token = (await backend().console(serverId)(["cat", "/var/lib/picortex/portal-token"])).trim();
    secrets.push(token);
    const signIn = await request("POST", "/portal/api/session", { ...asBrowser, "content-type": "application/json" }, JSON.stringify({ token }));
    expect(signIn.status, signIn.body).toBe(200);
    const cookie = /^[^;]+/.exec(String(signIn.headers["set-cookie"]?.[0] ?? ""))?.[0] ?? "";
    expect(cookie).not.toBe("");
    const status = JSON.parse((await request("GET", "/portal/api/status", { ...asBrowser, cookie })).body) as { sessionExists: boolean };
    expect(status.sessionExists, await diagnostics()).toBe(true);
    // The same sign-in from a foreign origin is refused.
    const foreign = await request("POST", "/portal/api/session", { ...asBrowser, origin: "http://evil.example", "content-type": "application/json" }, JSON.stringify({ token }));
    expect(foreign.status).toBe(403);
  }, STEP_MS);

  it("a second `up` changes nothing: no redeploy, no write to the API", async () => {
    const before = f.hz.requests.filter((q) => q.method !== "GET").length;
    const r = await f.lane.run(p, STACK, "up", { expectNoChanges: true });
    assertOk(r, "second up");
    expect(Object.keys(r.summary?.resourceChanges ?? {}).filter((k) => k !== "same")).toEqual([]);
    expect(f.hz.requests.filter((q) => q.method !== "GET").length).toBe(before);
  }, STEP_MS);

  it("a rebuild (protection lifted, hostGeneration 2) replaces the booted host: the new one joins as `picortex` with a fresh key, gets the release again, and the chat and its files survive on the Volume", async () => {
    const oldId = serverId;
    const c0 = backend().console(oldId);
    const marker = `kept-${randomBytes(4).toString("hex")}`;
    await c0(["sh", "-c", `echo ${marker} > /srv/picortex/chats/${CHAT}/workspace/marker`]);
    const keyBefore = authKeyIn(f, oldId);
    // docs/deploy.md: lift protection first (a targeted up that needs no host), then bump the generation.
    await liftProtection(f, p, STACK);
    await setConfig(f.lane, p, STACK, "picortex:hostGeneration", "2");
    const r = await f.lane.run(p, STACK, "up");
    const servers = f.hz.snapshot().servers as Array<Record<string, any>>;
    serverId = Number(servers[0]?.id ?? 0);
    noteServerIp(servers[0]);
    if (!r.ok) throw new Error(`rebuild up failed: ${r.error}\n${r.stdout.slice(-6000)}\n--- host ---\n${await diagnostics()}`);
    expect(servers).toHaveLength(1);
    expect(serverId).not.toBe(oldId);
    // A fresh, unspent key in the new server's userData; the old node is gone and the new one has the plain name.
    const keyAfter = authKeyIn(f, serverId);
    expect(keyAfter).toBeTruthy();
    expect(keyAfter).not.toBe(keyBefore);
    secrets.push(keyAfter!);
    expect(f.ts.snapshot().devices.map((d) => d.hostname)).toEqual(["picortex"]);
    runtimeUrl = `http://${f.ts.resolve("picortex")![0]!}:7420`;
    // The release was deployed again to the new machine, and it is healthy.
    const status = JSON.parse(await backend().console(serverId)(["/usr/local/sbin/picortex-release", "status"])) as { current: string; healthy: boolean };
    expect(status).toMatchObject({ current: releaseHash, healthy: true });
    // The chat (runtime state on the Volume) and its workspace files (chat homes on the Volume) survived.
    const chat = await fetch(`${runtimeUrl}/v1/chats/${CHAT}`, { headers: auth });
    expect(chat.status, await diagnostics()).toBe(200);
    expect(((await chat.json()) as { status: string }).status).toBe("ready");
    expect((await backend().console(serverId)(["cat", `/srv/picortex/chats/${CHAT}/workspace/marker`])).trim()).toBe(marker);
    for (const s of secrets) expect(r.stdout + r.stderr, "a secret in the engine's output").not.toContain(s);
    // And the chat still answers on the new machine (lane only: its upstream is the fake API again).
    await api?.close();
    api = await pointAtFakeApi();
    const text = `after the rebuild ${randomBytes(4).toString("hex")}`;
    const post = await fetch(`${runtimeUrl}/v1/chats/${CHAT}/turns`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ text }) });
    expect(post.status).toBe(202);
    const { events } = await readSse(`${runtimeUrl}${((await post.json()) as { eventsPath: string }).eventsPath}`, { headers: auth, timeoutMs: 600_000 });
    const view = events.at(-1)!.data as { status: string; reply: string | null };
    expect(view.status, `${JSON.stringify(events.slice(-3))}\n${await diagnostics()}`).toBe("done");
    expect(view.reply).toContain(text);
  }, STEP_MS);

  it("README teardown: unprotect, destroy; the emulators hold nothing and no secret is in the backend", async () => {
    await liftProtection(f, p, STACK);
    assertOk(await f.lane.run(p, STACK, "destroy"), "destroy");
    await expectEmulatorsEmpty(f);
    const text = f.lane.backendText();
    // The access tokens the provider and the device cleanup were issued during the runs, too.
    expect(f.ts.accessTokens().length).toBeGreaterThan(0);
    for (const s of [...secrets, ...credentialSecrets(f)]) expect(text).not.toContain(s);
  }, STEP_MS);

  it("every provider answered as the recorded real provider did (recordings/deploy.jsonl)", () => {
    // Run-specific values of this scenario: the release id (a digest of this checkout's
    // bundle) and the booted servers' veth addresses, which the deploy's commands carry.
    const values: Record<string, string> = { [releaseHash]: "<release>" };
    for (const ip of serverIps) values[ip] = "<server-ipv4>";
    expect(serverIps.length).toBe(2);
    checkAgainstRecording(f, "deploy", [...secrets, ...credentialSecrets(f)], undefined, [], values);
  });
});
