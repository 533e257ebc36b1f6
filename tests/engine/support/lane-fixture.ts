/**
 * Shared set-up of the engine scenarios: the lane, both API emulators, and a workspace
 * stack configured the way the README's deploy recipe does it (stack init, copy the
 * example config, set the provider credentials), plus the two settings only a lane
 * needs: the emulators' endpoints.
 */
import { copyFileSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { startHetznerEmulator, type HetznerEmulator } from "../emulators/hetzner/index.js";
import { startTailscaleEmulator, type TailscaleEmulator } from "../emulators/tailscale/index.js";
import { startLane, setConfig, type Lane, type Project } from "../harness/engine.js";
import type { DriverResult } from "../harness/driver.js";
import { unprotectCommands } from "../../../scripts/unprotect.js";

export interface Fixture {
  lane: Lane;
  hz: HetznerEmulator;
  ts: TailscaleEmulator;
  close(): Promise<void>;
}

export async function startFixture(opts: { boot?: "none" | "nspawn" } = {}): Promise<Fixture> {
  const lane = await startLane();
  const ts = await startTailscaleEmulator();
  const hz = await startHetznerEmulator({ boot: opts.boot ?? "none", tailscale: ts, actionDelayMs: 50 });
  return {
    lane,
    hz,
    ts,
    async close() {
      await hz.close();
      await ts.close();
      lane.close();
    },
  };
}

/** An operator's SSH key pair, made with ssh-keygen as the README assumes one exists. */
export function operatorKey(dir: string): { privateKey: string; publicKey: string } {
  const file = join(dir, `id_ed25519-${process.pid}-${Date.now()}`);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "operator@lane", "-f", file]);
  return { privateKey: readFileSync(file, "utf8"), publicKey: readFileSync(`${file}.pub`, "utf8").trim() };
}

/**
 * The README's recipe for a host-only workspace stack (no release deploy), as written: stack
 * init, copy the example config, the operator's public key, the provider credentials on
 * stdin — the Tailscale credential being the OAuth client Pulumi.example.yaml documents
 * (tailscale:oauthClientId / tailscale:oauthClientSecret; the emulator's client has the
 * auth_keys and devices:core scopes and owns tag:picortex). No scenario needs the API-key
 * path (tailscale:apiKey); the double's API-key auth is covered in emulators/tailscale.test.ts.
 */
export async function readmeWorkspaceStack(f: Fixture, stack = "prod", extra: Record<string, string> = {}): Promise<Project> {
  const p = f.lane.project("workspace");
  const init = await f.lane.cli(["stack", "init", stack], { cwd: p.workDir });
  if (init.code !== 0) throw new Error(`pulumi stack init ${stack}: ${init.stderr}`);
  copyFileSync(join(p.workDir, "Pulumi.example.yaml"), join(p.workDir, `Pulumi.${stack}.yaml`));
  await setConfig(f.lane, p, stack, "picortex:sshPublicKey", operatorKey(p.workDir).publicKey);
  await setConfig(f.lane, p, stack, "hcloud:token", f.hz.token, { secret: true });
  await setConfig(f.lane, p, stack, "tailscale:oauthClientId", f.ts.oauthClient.id, { secret: true });
  await setConfig(f.lane, p, stack, "tailscale:oauthClientSecret", f.ts.oauthClient.secret, { secret: true });
  await setConfig(f.lane, p, stack, "tailscale:tailnet", "-");
  // Lane only: where the emulators listen.
  await setConfig(f.lane, p, stack, "hcloud:endpoint", f.hz.endpoint);
  await setConfig(f.lane, p, stack, "tailscale:baseUrl", f.ts.baseUrl);
  for (const [k, v] of Object.entries(extra)) await setConfig(f.lane, p, stack, k, v);
  return p;
}

/**
 * Every provider credential of the lane, read when called: the Hetzner token, the
 * Tailscale API key and OAuth client secret, and every access token issued so far. None
 * may appear in output or in the backend.
 */
export function credentialSecrets(f: Fixture): string[] {
  return [f.hz.token, f.ts.apiKey, f.ts.oauthClient.secret, ...f.ts.accessTokens()];
}

/** Fails with the run's own output, so a failed scenario explains itself. */
export function assertOk(r: { ok: boolean; error?: string; stdout: string; stderr: string }, what: string): void {
  if (!r.ok) throw new Error(`${what} failed: ${r.error}\n--- stdout ---\n${r.stdout.slice(-6000)}\n--- stderr ---\n${r.stderr.slice(-3000)}`);
}

/**
 * The README's first teardown step (scripts/unprotect.ts): `picortex:protection false`,
 * then an `up` targeted at the protected resources only, which needs no host.
 */
export async function liftProtection(f: Fixture, p: Project, stack: string): Promise<DriverResult> {
  await setConfig(f.lane, p, stack, "picortex:protection", "false");
  const out = await f.lane.cli(["stack", "output", "protectedUrns", "--json", "--stack", stack], { cwd: p.workDir });
  const [args] = unprotectCommands(stack, JSON.parse(out.stdout));
  const targets = args!.flatMap((a, i) => (args![i - 1] === "--target" ? [a] : []));
  if (targets.length === 0) throw new Error("scripts/unprotect.ts named no protected resource");
  const up = await f.lane.run(p, stack, "up", { target: targets });
  assertOk(up, "targeted up with protection false");
  return up;
}

/** Nothing left in either emulator: no server, SSH key, firewall, volume, auth key or device. */
export async function expectEmulatorsEmpty(f: Fixture): Promise<void> {
  await f.hz.settle();
  const snap = f.hz.snapshot();
  const left = { servers: snap.servers, sshKeys: snap.sshKeys, firewalls: snap.firewalls, volumes: snap.volumes, keys: f.ts.snapshot().keys, devices: f.ts.snapshot().devices };
  for (const [kind, items] of Object.entries(left)) if (items.length > 0) throw new Error(`the emulators still hold ${kind}: ${JSON.stringify(items)}`);
}

/** The tailnet auth key a server boots with (inside its userData), or undefined. */
export function authKeyIn(f: Fixture, serverId: unknown): string | undefined {
  return /tskey-auth-[A-Za-z0-9-]+/.exec(f.hz.userDataOf(Number(serverId)) ?? "")?.[0];
}
