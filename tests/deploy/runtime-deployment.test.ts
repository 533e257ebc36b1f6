import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { recordResources, settle, byName, isSecretValue, plain, type RecordedResource } from "./helpers/recording-mocks.js";
import type * as RD from "../../components/runtime-deployment.js";
import { RELEASE_ARGS_REGEX, RELEASE_HASH_SOURCE, RELEASE_HELPER_PATH } from "../../agent-runtime/host/contract.js";
import { RELEASE_HASH_LENGTH } from "../../scripts/lib/deterministic-tar.js";

const work = mkdtempSync(join(tmpdir(), "picortex-rd-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let resources: RecordedResource[];
let mod: typeof RD;
let deployment: RD.RuntimeDeployment;
let serverStandIn: pulumi.Resource;
const HASH = "0123456789abcdef";

beforeAll(async () => {
  resources = await recordResources();
  mod = await import("../../components/runtime-deployment.js");
  const tarball = join(work, `${HASH}.tar.gz`);
  writeFileSync(tarball, "release bytes");
  // Stands in for the WorkspaceHost: the deployment must wait for it, and on destroy be
  // deleted (uninstall) before it.
  const command = await import("@pulumi/command");
  serverStandIn = new command.local.Command("server-stand-in", { create: "true" });
  deployment = new mod.RuntimeDeployment("runtime", {
    connection: { host: "picortex", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n", hostKey: "ssh-ed25519 AAAAC3Nz host" },
    release: { hash: HASH, tarballPath: tarball },
    settings: { runtimeConfig: { mode: "host" }, anthropicApiKey: "sk-ant-secret", apiToken: "pct_tokentokentokentoken" },
    readiness: { attempts: 3, delaySeconds: 2 },
    redeployOn: ["server-42"],
  }, { dependsOn: [serverStandIn] });
  await settle();
});

describe("release commands (byte for byte)", () => {
  it("builds the sudoers-shaped command lines", () => {
    expect(mod.releaseCommands(HASH)).toEqual({
      install: "sudo -n /usr/local/sbin/picortex-release install 0123456789abcdef",
      activate: "sudo -n /usr/local/sbin/picortex-release activate 0123456789abcdef",
      create:
        "sudo -n /usr/local/sbin/picortex-release install 0123456789abcdef && sudo -n /usr/local/sbin/picortex-release activate 0123456789abcdef",
      delete: "sudo -n /usr/local/sbin/picortex-release uninstall 0123456789abcdef",
    });
    // Every command matches the host's anchored sudoers argument pattern.
    const sudoersArgs = /^(install|activate|rollback|status|uninstall)( [a-f0-9]{12,64})?$/;
    for (const line of Object.values(mod.releaseCommands(HASH)).flatMap((c) => c.split(" && "))) {
      expect(line.replace("sudo -n /usr/local/sbin/picortex-release ", "")).toMatch(sudoersArgs);
    }
  });

  it("agrees with the rendered sudoers rule and the helper's own argument check", () => {
    const rule = new RegExp(RELEASE_ARGS_REGEX);
    const hash = "ab".repeat(RELEASE_HASH_LENGTH / 2); // what scripts/bundle.ts produces
    for (const line of Object.values(mod.releaseCommands(hash)).flatMap((c) => c.split(" && "))) {
      const prefix = `sudo -n ${RELEASE_HELPER_PATH} `;
      expect(line.startsWith(prefix)).toBe(true);
      expect(line.slice(prefix.length)).toMatch(rule);
    }
    const script = readFileSync(join(import.meta.dirname, "../../templates/host/picortex-release.sh"), "utf8");
    expect(script).toContain(`picortex-release ${RELEASE_ARGS_REGEX}`); // the documented rule
    expect(script).toContain('"$HASH" =~ ^[a-f0-9]{12,64}$');
    expect(script).toContain(`"$HASH" =~ ^${RELEASE_HASH_SOURCE}$`); // the contract's rule, not a copy of it
  });

  it("refuses anything that is not a hex hash (no shell injection through the hash)", () => {
    for (const bad of ["", "abc", "0123456789ABCDEF", "0123456789abcdef; rm -rf /", "$(id)", "a".repeat(65)]) {
      expect(() => mod.releaseCommands(bad)).toThrow(mod.ReleaseRefError);
    }
  });

  it("uploads to the admin's incoming directory", () => {
    expect(mod.incomingPath("pcadmin", HASH)).toBe("/home/pcadmin/incoming/0123456789abcdef.tar.gz");
    expect(() => mod.incomingPath("../root", HASH)).toThrow(/not a valid user\/group name/);
  });

  it("reads the bundle's manifest into a release reference", () => {
    const dir = join(work, "dist");
    mkdirSync(dir);
    writeFileSync(join(dir, `${HASH}.json`), JSON.stringify({ hash: HASH, tarball: `${HASH}.tar.gz` }));
    expect(mod.readReleaseManifest(join(dir, `${HASH}.json`))).toEqual({ hash: HASH, tarballPath: join(dir, `${HASH}.tar.gz`) });
    writeFileSync(join(dir, "bad.json"), JSON.stringify({ hash: HASH, tarball: "other.tar.gz" }));
    expect(() => mod.readReleaseManifest(join(dir, "bad.json"))).toThrow(/expected 0123456789abcdef.tar.gz/);
    expect(() => mod.readReleaseManifest(join(dir, "missing.json"))).toThrow(/scripts\/bundle.ts/);
  });

  it("marks a new machine in the release command as a digest, never the raw values", () => {
    const evil = mod.createOnMachine("cmd", ["id\nrm -rf /"]);
    expect(evil).toMatch(/^cmd # machine [a-f0-9]{16}$/);
    expect(mod.createOnMachine("cmd", [1])).not.toBe(mod.createOnMachine("cmd", [2]));
  });

  it("canonicalises settings so equal settings hash equal and any change differs", () => {
    const a = mod.settingsDocument({ runtimeConfig: { b: 1, a: { y: 2, x: 1 } }, apiToken: "t", anthropicApiKey: "k" });
    const b = mod.settingsDocument({ anthropicApiKey: "k", apiToken: "t", runtimeConfig: { a: { x: 1, y: 2 }, b: 1 } });
    expect(a).toBe(b);
    expect(a).toBe('{"anthropicApiKey":"k","apiToken":"t","runtimeConfig":{"a":{"x":1,"y":2},"b":1}}');
    expect(mod.configHash(a)).toMatch(/^[a-f0-9]{16}$/);
    expect(mod.configHash(mod.settingsDocument({ anthropicApiKey: "k2", apiToken: "t", runtimeConfig: { a: { x: 1, y: 2 }, b: 1 } }))).not.toBe(mod.configHash(a));
  });
});

describe("host-side command text, executed for real", () => {
  function fakeBin(name: string, body: string): string {
    const dir = join(work, `bin-${name}-${Math.random().toString(36).slice(2)}`);
    mkdirSync(dir);
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
    return dir;
  }

  it.each([
    [0, 0, ""],
    [1, 1, ""],
    [2, 0, "recoverable errors"],
  ])("cloud-init exiting %i makes the wait step exit %i", (cloudInitRc, expected, message) => {
    const bin = fakeBin("cloud-init", `echo "status: whatever"; exit ${cloudInitRc}`);
    const r = spawnSync("sh", ["-c", mod.CLOUD_INIT_WAIT_COMMAND], { env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: "utf8" });
    expect(r.status).toBe(expected);
    expect(r.stdout).toContain("status:");
    if (message) expect(r.stderr).toContain(message);
  });

  it("the settings upload writes stdin to ~/incoming/runtime-settings.json with mode 0600 and echoes nothing", () => {
    const home = join(work, "home");
    mkdirSync(home);
    const sudoLog = join(work, "sudo.log");
    const bin = fakeBin("sudo", `printf "%s\\n" "$*" >> ${sudoLog}`);
    const doc = '{"apiToken":"pct_secret"}';
    const r = spawnSync("sh", ["-c", mod.SETTINGS_UPLOAD_COMMAND], { env: { PATH: `${bin}:/usr/bin:/bin`, HOME: home }, input: doc, encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout + r.stderr).toBe("");
    const file = join(home, "incoming/runtime-settings.json");
    expect(readFileSync(file, "utf8")).toBe(doc);
    expect(spawnSync("stat", ["-c", "%a", file], { encoding: "utf8" }).stdout.trim()).toBe("600");
    // No release is active on this machine, so nothing is re-activated.
    expect(existsSync(sudoLog)).toBe(false);
  });

  it("the settings upload re-activates the active release (config-only change), in a private mount namespace", () => {
    if (process.getuid?.() !== 0) throw new Error("this test needs root (unshare -m, mount): run it via bash .ci/run or as root");
    const home = join(work, "home2");
    mkdirSync(home);
    const sudoLog = join(work, "sudo2.log");
    const bin = fakeBin("sudo", `printf "%s\\n" "$*" >> ${sudoLog}`);
    // A tmpfs over /opt inside a new mount namespace: the real /opt is untouched.
    const setup = `mount -t tmpfs picortex-test /opt && mkdir -p /opt/picortex/releases/${HASH} && ln -s /opt/picortex/releases/${HASH} /opt/picortex/current`;
    const r = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", `${setup} && sh -c "$0"`, mod.SETTINGS_UPLOAD_COMMAND], {
      env: { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, HOME: home },
      input: "{}",
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(sudoLog, "utf8")).toBe(`-n /usr/local/sbin/picortex-release activate ${HASH}\n`);
    expect(existsSync(`/opt/picortex/current`) && existsSync(`/opt/picortex/releases/${HASH}`)).toBe(false);
  });
});

describe("readiness poll (a real loopback sshd stand-in)", () => {
  /** `onStderr` sees the output so far, so a test can act on what the poll has said (never on a clock). */
  function runReadiness(port: number, attempts: number, delayMs: number, env: Record<string, string> = {}, onStderr?: (soFar: string) => void) {
    return new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = require_spawn(port, attempts, delayMs, env);
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => {
        stderr += d;
        onStderr?.(stderr);
      });
      child.on("close", (code: number | null) => resolve({ code, stderr }));
    });
  }
  function require_spawn(port: number, attempts: number, delayMs: number, extra: Record<string, string> = {}) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { spawn } = process.getBuiltinModule("node:child_process") as typeof import("node:child_process");
    return spawn(process.execPath, ["-e", mod.READINESS_SCRIPT], {
      env: { PICORTEX_SSH_HOST: "127.0.0.1", PICORTEX_SSH_PORT: String(port), PICORTEX_READY_ATTEMPTS: String(attempts), PICORTEX_READY_DELAY_MS: String(delayMs), ...extra },
      stdio: ["ignore", "ignore", "pipe"],
    });
  }

  it("retries with a delay until sshd answers with its banner", async () => {
    const port = await new Promise<number>((res) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    // sshd "comes up" only once the poll has reported its second failed attempt, so the
    // success is at attempt 3 or later however slowly the machine runs.
    let server: Server | undefined;
    let started: Promise<void> | undefined;
    const result = await runReadiness(port, 20, 300, {}, (soFar) => {
      if (started || !soFar.includes("(attempt 2/20)")) return;
      started = new Promise<void>((res) => {
        server = createServer((sock) => sock.end("SSH-2.0-OpenSSH_9.2\r\n")).listen(port, "127.0.0.1", () => res());
      });
    });
    await started;
    server?.close();
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/waiting for ssh on 127\.0\.0\.1:\d+ \(attempt 1\/20\)/);
    expect(result.stderr).toMatch(/is up \(attempt ([3-9]|1\d)\)/);
  });

  it("tells an unresolvable name from a host still booting, and gives up on it early (issue 21 item 9)", async () => {
    // .invalid never resolves (RFC 6761). 50 attempts allowed, but DNS failures stop at 2.
    const result = await runReadiness(22, 50, 10, { PICORTEX_SSH_HOST: "picortex.invalid", PICORTEX_READY_DNS_ATTEMPTS: "2" });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("cannot resolve picortex.invalid (attempt 1/2)");
    expect(result.stderr).toContain("MagicDNS (tailscale status)");
    expect(result.stderr).not.toContain("waiting for ssh");
    expect(result.stderr).not.toContain("attempt 3/");
  });

  it("gives up after the attempts with an actionable message; a non-ssh service does not count", async () => {
    const server = createServer((sock) => sock.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
    await new Promise<void>((res) => server.listen(0, "127.0.0.1", () => res()));
    const port = (server.address() as { port: number }).port;
    const result = await runReadiness(port, 2, 50);
    server.close();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("did not answer after 2 attempts");
    expect(result.stderr).toContain("tailnet");
  });
});

describe("RuntimeDeployment wiring (recording mocks)", () => {
  it("creates the expected children, all parented to the component", () => {
    const comp = byName(resources, "runtime");
    expect(comp.type).toBe("picortex:deploy:RuntimeDeployment");
    expect(comp.custom).toBe(false);
    const children = resources.filter((r) => r.parent === comp.urn).map((r) => [r.name, r.type]);
    expect(children).toEqual(
      expect.arrayContaining([
        ["runtime-reachable", "command:local:Command"],
        ["runtime-cloud-init", "command:remote:Command"],
        ["runtime-settings", "command:remote:Command"],
        ["runtime-upload", "command:remote:CopyToRemote"],
        ["runtime-release", "command:remote:Command"],
      ]),
    );
    expect(children).toHaveLength(5);
  });

  it("orders the steps: reachable → cloud-init → settings + upload → release", () => {
    const urn = (n: string) => byName(resources, n).urn;
    expect(byName(resources, "runtime-cloud-init").dependencies).toContain(urn("runtime-reachable"));
    expect(byName(resources, "runtime-settings").dependencies).toContain(urn("runtime-cloud-init"));
    expect(byName(resources, "runtime-upload").dependencies).toContain(urn("runtime-cloud-init"));
    expect(byName(resources, "runtime-release").dependencies).toEqual(expect.arrayContaining([urn("runtime-upload"), urn("runtime-settings")]));
  });

  it("waits for what the component depends on (the host) before its first step, so destroy uninstalls before the host goes", () => {
    const server = byName(resources, "server-stand-in").urn;
    expect(byName(resources, "runtime-reachable").dependencies).toContain(server);
  });

  it("polls readiness with retries and a delay, then waits for cloud-init", () => {
    const r = byName(resources, "runtime-reachable").inputs;
    expect(r.interpreter).toEqual(["node", "-e"]);
    expect(r.create).toBe(mod.READINESS_SCRIPT);
    expect(plain(r.environment)).toEqual({ PICORTEX_SSH_HOST: "picortex", PICORTEX_SSH_PORT: "22", PICORTEX_READY_ATTEMPTS: "3", PICORTEX_READY_DELAY_MS: "2000" });
    expect(byName(resources, "runtime-cloud-init").inputs.create).toBe(mod.CLOUD_INIT_WAIT_COMMAND);
  });

  it("installs and activates the release by hash, replaced only when the hash changes; its delete never needs the host", () => {
    const rel = byName(resources, "runtime-release").inputs;
    expect(rel.create).toBe(mod.createOnMachine(mod.releaseCommands(HASH).create, ["server-42"]));
    expect(rel.create).toMatch(/^sudo -n \/usr\/local\/sbin\/picortex-release install 0123456789abcdef && sudo -n \/usr\/local\/sbin\/picortex-release activate 0123456789abcdef # machine [a-f0-9]{16}$/);
    // A destroy must not need the host (issue 21 item 3): no delete command by default.
    expect(rel.delete).toBeUndefined();
    for (const r of resources.filter((x) => x.type.startsWith("command:remote:"))) expect(r.inputs.delete, r.name).toBeUndefined();
    // Only the bundle hash replaces it (a replacement's delete would uninstall on the new machine).
    expect(rel.triggers).toEqual([HASH]);
    const up = byName(resources, "runtime-upload").inputs;
    expect(up.remotePath).toBe("/home/pcadmin/incoming/0123456789abcdef.tar.gz");
    expect(up.triggers).toEqual([HASH, "server-42"]);
    // A replaced server (same tailnet name) gets every step again.
    for (const n of ["runtime-reachable", "runtime-cloud-init"]) expect(byName(resources, n).inputs.triggers).toEqual([HASH, "server-42"]);
  });

  it("triggers the settings step on the config hash", async () => {
    const s = byName(resources, "runtime-settings").inputs;
    const expected = mod.configHash(mod.settingsDocument({ runtimeConfig: { mode: "host" }, anthropicApiKey: "sk-ant-secret", apiToken: "pct_tokentokentokentoken" }));
    expect(plain(s.triggers)).toEqual([expected, "server-42"]);
    expect(s.create).toBe(mod.SETTINGS_UPLOAD_COMMAND);
  });

  it("keeps secrets secret: private key, settings on stdin; logging off where they travel", async () => {
    for (const name of ["runtime-cloud-init", "runtime-settings", "runtime-upload", "runtime-release"]) {
      const conn = byName(resources, name).inputs.connection as Record<string, unknown>;
      // The whole connection object is secret because it carries the key.
      expect(isSecretValue(conn) || isSecretValue(conn.privateKey)).toBe(true);
      expect(plain(conn)).toMatchObject({ host: "picortex", user: "pcadmin", port: 22, hostKey: "ssh-ed25519 AAAAC3Nz host", dialErrorLimit: 20, perDialTimeout: 15 });
    }
    const settings = byName(resources, "runtime-settings").inputs;
    expect(isSecretValue(settings.stdin)).toBe(true);
    expect(settings.logging).toBe("none");
    // No secret value appears in any command text.
    for (const r of resources) {
      for (const key of ["create", "update", "delete"]) {
        const text = JSON.stringify(plain(r.inputs[key]) ?? "");
        expect(text).not.toContain("sk-ant-secret");
        expect(text).not.toContain("pct_token");
        expect(text).not.toContain("PRIVATE KEY");
      }
    }
    expect(await pulumi.isSecret(deployment.configHash)).toBe(true);
  });

  it("uninstalls on delete only when asked (uninstallOnDelete)", async () => {
    new mod.RuntimeDeployment("rd-uninstall", { connection: { host: "h", privateKey: "k", hostKey: "ssh-ed25519 AAAA h" }, release: { hash: HASH, tarballPath: join(work, `${HASH}.tar.gz`) }, uninstallOnDelete: true });
    await settle();
    expect(byName(resources, "rd-uninstall-release").inputs.delete).toBe(mod.releaseCommands(HASH).delete);
  });

  it("validates its arguments with actionable errors", () => {
    const base = { connection: { host: "h", privateKey: "k" }, release: { hash: HASH, tarballPath: "/x" } };
    expect(() => new mod.RuntimeDeployment("bad1", { ...base, release: { hash: "nothex!", tarballPath: "/x" } })).toThrow(/scripts\/bundle.ts printed/);
    expect(() => new mod.RuntimeDeployment("bad2", { ...base, readiness: { attempts: 0 } })).toThrow(/attempts/);
    expect(() => new mod.RuntimeDeployment("bad3", { ...base, connection: { ...base.connection, adminUser: "Root Admin" } })).toThrow(/not a valid user\/group name/);
  });
});
