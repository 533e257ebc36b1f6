/**
 * Runs templates/host/picortex-release.sh for real, as root, in a scratch root: real
 * tar/gzip/sha256sum/runuser/flock, a fake `systemctl` that really starts and stops the
 * release's process, and a real HTTP health check on loopback.
 */
import { createHash } from "node:crypto";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { renderReleaseHelper } from "../../templates/render-host.js";
import { buildTar, releaseHash, type TarEntry } from "../../scripts/lib/deterministic-tar.js";
import { buildRelease } from "../../scripts/lib/bundle-release.js";

const repoRoot = resolve(import.meta.dirname, "../..");
// The helper exactly as a host gets it (rendered: the source without its comments).
const SCRIPT_SOURCE = join(repoRoot, "templates/host/picortex-release.sh");
const SCRIPT = join(mkdtempSync(join(tmpdir(), "picortex-release-script-")), "picortex-release");
writeFileSync(SCRIPT, renderReleaseHelper(readFileSync(SCRIPT_SOURCE, "utf8")), { mode: 0o755 });

if (process.getuid?.() !== 0) {
  throw new Error("tests/deploy/release-script.test.ts must run as root (it runs picortex-release with runuser and chown); run it via `bash .ci/run` or as root");
}
for (const tool of ["runuser", "flock", "sha256sum", "tar", "gzip"]) {
  if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is required by the release-script test: apt-get install util-linux coreutils tar gzip`);
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
    s.once("error", rej);
  });
}

const root = mkdtempSync(join(tmpdir(), "picortex-release-test-"));
chmodSync(root, 0o755); // the build user ("nobody") must reach the staging dir
const state = join(root, "state");
const incoming = join(root, "incoming");
let port = 0;

// A stand-in for systemctl that really runs the active release, like the unit does.
const FAKE_SYSTEMCTL = `#!/bin/bash
set -u
S="${state}"
echo "$*" >> "$S/calls"
# The portal agent's unit: only recorded (the runtime below is the one this fake runs).
[ "\${2:-}" = picortex-agent.service ] && exit 0
stop() { if [ -f "$S/pid" ]; then kill "$(cat "$S/pid")" 2>/dev/null; for i in $(seq 50); do kill -0 "$(cat "$S/pid")" 2>/dev/null || break; sleep 0.1; done; rm -f "$S/pid"; fi; }
case "$1" in
  restart)
    [ -f "$S/hang" ] && sleep 60
    stop
    cd "${root}/opt/picortex/current" || exit 1
    setsid node picortex.mjs serve --local --port "$(cat "$S/port")" --data-dir "$S/data" </dev/null >>"$S/unit.log" 2>&1 &
    echo $! > "$S/pid" ;;
  stop) stop ;;
  disable) stop ;;
  enable) ;;
  # The health gate asks for the unit's main process (it must hold every listener on the port).
  show) if [ -f "$S/pid" ]; then cat "$S/pid"; else echo 0; fi ;;
  is-active) if [ -f "$S/pid" ] && kill -0 "$(cat "$S/pid")" 2>/dev/null; then echo active; else echo inactive; exit 3; fi ;;
esac
`;

/** A fake release: `healthy` decides what /healthz answers; `marker` makes the hash differ. */
/**
 * A squatter: another process (not the unit's main one) answering {"ok":true} on the
 * health port. It lives as long as the release's process (it exits when its stdin pipe
 * from that process closes), so the rollback that follows finds the port free again.
 */
const SQUATTER = (host: string) => `{
  const c = spawn(process.execPath, ["-e", ${JSON.stringify(`process.stdin.on("end", () => process.exit(0)).resume(); require("node:http").createServer((q, r) => r.end('{"ok":true}')).listen(Number(process.argv[1]), process.argv[2]);`)}, String(port), ${JSON.stringify(host)}], { detached: true, stdio: ["pipe", "ignore", "ignore"] });
  c.unref();
}`;

/**
 * healthy: "squatted" = the release's process listens on nothing and another process
 * answers {"ok":true} on 127.0.0.1:<port>; "squatted-v6" = the release answers on
 * 127.0.0.1 and another process also holds [::1]:<port>.
 */
function fakeRelease(marker: string, healthy: boolean | "briefly" | "squatted" | "squatted-v6", extra: TarEntry[] = [], nativeCheck = "process.exit(0)\n"): string {
  const serve = `const srv = http.createServer((q, r) => { r.setHeader("content-type", "application/json"); r.end(JSON.stringify({ ok: true, marker: ${JSON.stringify(marker)} })); });
// A squatter of the release before may take a moment to go: retry a busy port.
srv.on("error", () => setTimeout(() => srv.listen(port, "127.0.0.1"), 100));
srv.listen(port, "127.0.0.1");`;
  const server = `import http from "node:http";
import { spawn } from "node:child_process";
const port = Number(process.argv[process.argv.indexOf("--port") + 1]);
${healthy === false ? "process.exit(1);" : ""}${healthy === "briefly" ? "setTimeout(() => process.exit(1), 1200);" : ""}
${healthy === "squatted" ? `${SQUATTER("127.0.0.1")}\nsetInterval(() => {}, 60_000);` : serve}
${healthy === "squatted-v6" ? SQUATTER("::1") : ""}
`;
  const tar = buildTar([
    { path: "picortex.mjs", data: Buffer.from(server), executable: true },
    { path: "manifest.json", data: Buffer.from(JSON.stringify({ name: "picortex", marker }) + "\n") },
    { path: "native-check.cjs", data: Buffer.from(nativeCheck) },
    ...extra,
  ]);
  const hash = releaseHash(tar);
  writeFileSync(join(incoming, `${hash}.tar.gz`), gzipSync(tar));
  return hash;
}

function scriptEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    PICORTEX_RELEASE_TEST_ROOT: root,
    PICORTEX_RELEASE_SYSTEMCTL: join(root, "systemctl"),
    PICORTEX_RELEASE_HEALTH_URL: `http://127.0.0.1:${port}/healthz`,
    PICORTEX_RELEASE_HEALTH_TRIES: "5",
    PICORTEX_RELEASE_BUILD_USER: "nobody",
    PICORTEX_RELEASE_RUNTIME_USER: "nobody",
    PICORTEX_RELEASE_INCOMING: incoming,
  };
}

function run(...args: string[]) {
  const r = spawnSync("bash", [SCRIPT, ...args], { encoding: "utf8", timeout: 120_000, env: scriptEnv() });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout.trim().split("\n").pop()!) };
}

const releases = join(root, "opt/picortex/releases");
const current = () => (existsSync(join(root, "opt/picortex/current")) ? readlinkSync(join(root, "opt/picortex/current")).split("/").pop() : undefined);
const previous = () => (existsSync(join(root, "opt/picortex/previous")) ? readlinkSync(join(root, "opt/picortex/previous")).split("/").pop() : undefined);
async function liveMarker(): Promise<string | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/healthz`);
    return ((await r.json()) as { marker?: string }).marker;
  } catch {
    return undefined;
  }
}

beforeAll(async () => {
  port = await freePort();
  mkdirSync(state, { recursive: true });
  mkdirSync(incoming, { recursive: true });
  writeFileSync(join(state, "port"), String(port));
  writeFileSync(join(root, "systemctl"), FAKE_SYSTEMCTL, { mode: 0o755 });
});

afterAll(() => {
  const pidFile = join(state, "pid");
  if (existsSync(pidFile)) {
    try {
      process.kill(Number(readFileSync(pidFile, "utf8")), "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  rmSync(root, { recursive: true, force: true });
  rmSync(join(SCRIPT, ".."), { recursive: true, force: true });
});

describe("picortex-release argument validation", () => {
  it.each([
    [[]],
    [["deploy", "aaaaaaaaaaaa"]],
    [["install"]],
    [["install", "../../etc/passwd"]],
    [["install", "AAAAAAAAAAAA"]],
    [["install", "abc"]],
    [["install", "a".repeat(65)]],
    [["install", "aaaaaaaaaaaa", "extra"]],
    [["status", "aaaaaaaaaaaa"]],
    [["activate", "aaaaaaaaaaaa; rm -rf /"]],
  ])("rejects %j with exit 2", (args) => {
    const r = run(...(args as string[]));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/usage|invalid release hash/);
  });
});

describe("picortex-release lifecycle", () => {
  let a = "";
  let b = "";

  it("installs a release: verified, root-owned, read-only to others, upload removed, idempotent", () => {
    a = fakeRelease("A", true);
    const r = run("install", a);
    expect(r.stderr).toContain(`installed ${a}`);
    expect(r.code).toBe(0);
    expect(r.json()).toEqual({ installed: a, already: false });
    const st = statSync(join(releases, a, "picortex.mjs"));
    expect(st.uid).toBe(0);
    expect(st.mode & 0o022).toBe(0);
    expect(existsSync(join(incoming, `${a}.tar.gz`))).toBe(false);
    expect(readdirSync(releases).filter((n) => n.startsWith("."))).toEqual([]);
    expect(run("install", a).json()).toEqual({ installed: a, already: true });
  });

  it("refuses an upload whose content does not match its hash, leaving nothing behind", () => {
    const real = fakeRelease("tampered", true);
    const fake = "0123456789abcdef";
    execFileSync("mv", [join(incoming, `${real}.tar.gz`), join(incoming, `${fake}.tar.gz`)]);
    const r = run("install", fake);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("content hash mismatch");
    expect(existsSync(join(releases, fake))).toBe(false);
    expect(readdirSync(releases).filter((n) => n.startsWith("."))).toEqual([]);
  });

  it("refuses a release that contains a symlink", () => {
    const src = join(root, "evil-src");
    mkdirSync(src);
    writeFileSync(join(src, "picortex.mjs"), "");
    writeFileSync(join(src, "manifest.json"), "{}");
    execFileSync("ln", ["-s", "/etc/shadow", join(src, "shadow")]);
    const tarFile = join(root, "evil.tar");
    execFileSync("tar", ["-cf", tarFile, "-C", src, "."]);
    const hash = execFileSync("sha256sum", [tarFile], { encoding: "utf8" }).slice(0, 16);
    writeFileSync(join(incoming, `${hash}.tar.gz`), gzipSync(readFileSync(tarFile)));
    const r = run("install", hash);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not plain files or directories");
    expect(existsSync(join(releases, hash))).toBe(false);
  });

  it("activates: atomic current symlink, unit restarted, healthy", async () => {
    const r = run("activate", a);
    expect(r.stderr).toContain("active and healthy");
    expect(r.code).toBe(0);
    expect(current()).toBe(a);
    expect(await liveMarker()).toBe("A");
    expect(readFileSync(join(state, "calls"), "utf8")).toContain("restart picortex-runtime.service");
  });

  it("gives the portal agent a gateway token on activate: root-only, only its hash for the runtime, made once", () => {
    const tokenFile = join(root, "etc/picortex/credentials/agent-token");
    const hashFile = join(root, "var/lib/picortex/agent-token.sha256");
    const token = readFileSync(tokenFile, "utf8").trim();
    expect(token).toMatch(/^pca_[A-Za-z0-9_-]{43}$/);
    const st = statSync(tokenFile);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([0, 0, 0o600]);
    expect(statSync(join(root, "etc/picortex/credentials")).mode & 0o777).toBe(0o700);
    const nobody = Number(execFileSync("id", ["-u", "nobody"], { encoding: "utf8" }));
    const hs = statSync(hashFile);
    expect([hs.uid, hs.mode & 0o777]).toEqual([nobody, 0o600]);
    expect(readFileSync(hashFile, "utf8")).toBe(createHash("sha256").update(token).digest("hex") + "\n");
    // The brain MCP headers carrying the same token, root-only beside it (a second credential).
    const headersFile = join(root, "etc/picortex/credentials/agent-brain-headers");
    expect(JSON.parse(readFileSync(headersFile, "utf8"))).toEqual({ Authorization: `Bearer ${token}` });
    const bs = statSync(headersFile);
    expect([bs.uid, bs.gid, bs.mode & 0o777]).toEqual([0, 0, 0o600]);
    // The new token restarted the agent unit (LoadCredential= reads it at start), after the
    // runtime's restart: the agent's first request meets a gateway that has read the hash.
    const restarts = readFileSync(join(state, "calls"), "utf8").split("\n").filter((l) => l.startsWith("restart "));
    expect(restarts.at(-1)).toBe("restart picortex-agent.service");
    expect(restarts).toContain("restart picortex-runtime.service");
    // A later activate keeps it (no restart of the agent), and rewrites a lost hash.
    rmSync(hashFile);
    const callsBefore = readFileSync(join(state, "calls"), "utf8").split("\n").filter((l) => l.includes("picortex-agent")).length;
    const r = run("activate", a);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(tokenFile, "utf8").trim()).toBe(token);
    expect(readFileSync(hashFile, "utf8")).toBe(createHash("sha256").update(token).digest("hex") + "\n");
    expect(readFileSync(join(state, "calls"), "utf8").split("\n").filter((l) => l.includes("picortex-agent")).length).toBe(callsBefore);
    // A host upgraded from before the headers file (tmpfiles' empty placeholder) or with a
    // stale one gets it rewritten from the token, and the agent restarts to load it.
    for (const stale of ["", JSON.stringify({ Authorization: "Bearer pca_old" }) + "\n"]) {
      writeFileSync(headersFile, stale);
      const before = readFileSync(join(state, "calls"), "utf8").split("\n").filter((l) => l === "restart picortex-agent.service").length;
      const up = run("activate", a);
      expect(up.code, up.stderr).toBe(0);
      expect(JSON.parse(readFileSync(headersFile, "utf8"))).toEqual({ Authorization: `Bearer ${token}` });
      expect(readFileSync(tokenFile, "utf8").trim()).toBe(token);
      expect(readFileSync(join(state, "calls"), "utf8").split("\n").filter((l) => l === "restart picortex-agent.service").length).toBe(before + 1);
      expect(up.stdout + up.stderr).not.toContain(token);
    }
    // Never printed.
    expect(r.stdout + r.stderr).not.toContain(token);
    // tmpfiles' empty placeholder (or anything not a token) is replaced by a fresh token.
    writeFileSync(tokenFile, "");
    const r2 = run("activate", a);
    expect(r2.code, r2.stderr).toBe(0);
    const fresh = readFileSync(tokenFile, "utf8").trim();
    expect(fresh).toMatch(/^pca_[A-Za-z0-9_-]{43}$/);
    expect(fresh).not.toBe(token);
    expect(r2.stdout + r2.stderr).not.toContain(fresh);
    expect(readFileSync(hashFile, "utf8")).toBe(createHash("sha256").update(fresh).digest("hex") + "\n");
    expect(JSON.parse(readFileSync(headersFile, "utf8"))).toEqual({ Authorization: `Bearer ${fresh}` });
  });

  it("installs uploaded runtime settings on activate with the contract's owners and modes", () => {
    const settings = { runtimeConfig: { mode: "host", dataDir: "/var/lib/picortex" }, anthropicApiKey: "sk-ant-test_KEY-123", apiToken: "pct_abcdefghijklmnopqrstuvwxyz012345" };
    writeFileSync(join(incoming, "runtime-settings.json"), JSON.stringify(settings));
    const r = run("activate", a);
    expect(r.stderr).toContain("installed runtime settings");
    expect(r.code).toBe(0);
    const nobody = Number(execFileSync("id", ["-u", "nobody"], { encoding: "utf8" }));
    const cfg = statSync(join(root, "etc/picortex/runtime.json"));
    expect([cfg.uid, cfg.mode & 0o777]).toEqual([0, 0o640]);
    expect(JSON.parse(readFileSync(join(root, "etc/picortex/runtime.json"), "utf8"))).toEqual(settings.runtimeConfig);
    const key = statSync(join(root, "etc/picortex/credentials/anthropic-api-key"));
    expect([key.uid, key.mode & 0o777]).toEqual([0, 0o600]);
    expect(readFileSync(join(root, "etc/picortex/credentials/anthropic-api-key"), "utf8")).toBe("sk-ant-test_KEY-123\n");
    const tok = statSync(join(root, "var/lib/picortex/api-token"));
    expect([tok.uid, tok.mode & 0o777]).toEqual([nobody, 0o600]);
    expect(existsSync(join(incoming, "runtime-settings.json"))).toBe(false);
    // Secrets never reach the script's output.
    expect(r.stdout + r.stderr).not.toContain("sk-ant-test");
    expect(r.stdout + r.stderr).not.toContain("pct_abc");
  });

  it("rejects invalid runtime settings without changing anything", () => {
    writeFileSync(join(incoming, "runtime-settings.json"), JSON.stringify({ anthropicApiKey: "bad key\nwith newline", extra: 1 }));
    const r = run("activate", a);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("rejected");
    expect(readFileSync(join(root, "etc/picortex/credentials/anthropic-api-key"), "utf8")).toBe("sk-ant-test_KEY-123\n");
    expect(current()).toBe(a);
    rmSync(join(incoming, "runtime-settings.json"));
  });

  it("writes nothing when a later value is invalid, even if earlier ones are valid", () => {
    writeFileSync(join(incoming, "runtime-settings.json"), JSON.stringify({ anthropicApiKey: "sk-ant-NEW_key-456", apiToken: "short" }));
    const r = run("activate", a);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("apiToken has an invalid format");
    expect(readFileSync(join(root, "etc/picortex/credentials/anthropic-api-key"), "utf8")).toBe("sk-ant-test_KEY-123\n");
    rmSync(join(incoming, "runtime-settings.json"));
  });

  it("installs the bridges: their section into the runtime.json in place, their secrets root-only in the credential folder; absent ones removed", () => {
    const cfgPath = join(root, "etc/picortex/runtime.json");
    const before = JSON.parse(readFileSync(cfgPath, "utf8"));
    const dir = join(root, "etc/picortex/credentials/bridges");
    const token = "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQ";
    const secretValue = "w".repeat(40);
    const bridges = { telegram: { enabled: true, tokenFile: "/run/credentials/picortex-runtime.service/bridges_telegram-bot-token" } };
    writeFileSync(join(incoming, "runtime-settings.json"), JSON.stringify({ bridges, telegramBotToken: token, webhookSecret: secretValue }));
    const r = run("activate", a);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(cfgPath, "utf8"))).toEqual({ ...before, bridges });
    for (const [file, value] of [["telegram-bot-token", token], ["webhook-secret", secretValue]] as const) {
      const st = statSync(join(dir, file));
      expect([st.uid, st.gid, st.mode & 0o777]).toEqual([0, 0, 0o600]);
      expect(readFileSync(join(dir, file), "utf8")).toBe(value + "\n");
    }
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(r.stdout + r.stderr).not.toContain(token.split(":")[1]);
    expect(r.stdout + r.stderr).not.toContain(secretValue);
    // Turned off (no secret, empty section): the secret files go, runtime.json says so.
    writeFileSync(join(incoming, "runtime-settings.json"), JSON.stringify({ bridges: {} }));
    expect(run("activate", a).code).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
    expect(JSON.parse(readFileSync(cfgPath, "utf8"))).toEqual({ ...before, bridges: {} });
  });

  it("a target turned into a directory (the runtime user owns the state dir) fails the install before any write", () => {
    const cfgPath = join(root, "etc/picortex/runtime.json");
    const before = readFileSync(cfgPath, "utf8");
    const dir = join(root, "etc/picortex/credentials/bridges");
    const tokenPath = join(root, "var/lib/picortex/api-token");
    const kept = readFileSync(tokenPath);
    const owner = statSync(tokenPath);
    rmSync(tokenPath);
    mkdirSync(tokenPath);
    try {
      writeFileSync(
        join(incoming, "runtime-settings.json"),
        JSON.stringify({ bridges: { telegram: { enabled: true } }, telegramBotToken: "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQ", apiToken: "pct_abcdefghijklmnopqrstuvwxyz012345" }),
      );
      const r = run("activate", a);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("api-token is not a regular file");
      expect(readFileSync(cfgPath, "utf8")).toBe(before);
      expect(readdirSync(dir)).toEqual([]);
      for (const d of [dir, join(root, "etc/picortex"), join(root, "var/lib/picortex")]) expect(readdirSync(d).filter((f) => f.startsWith(".picortex-release-"))).toEqual([]);
    } finally {
      rmSync(tokenPath, { recursive: true, force: true });
      writeFileSync(tokenPath, kept, { mode: 0o600 });
      chownSync(tokenPath, owner.uid, owner.gid);
      rmSync(join(incoming, "runtime-settings.json"), { force: true });
    }
  });

  it("refuses bridge secrets with a bad shape, or without their section, changing nothing", () => {
    const cfgPath = join(root, "etc/picortex/runtime.json");
    const before = readFileSync(cfgPath, "utf8");
    const dir = join(root, "etc/picortex/credentials/bridges");
    for (const [settings, why] of [
      [{ bridges: {}, telegramBotToken: "not-a-token" }, "telegramBotToken has an invalid format"],
      [{ bridges: {}, telegramBotToken: "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQ\nrm -rf /" }, "telegramBotToken has an invalid format"],
      [{ bridges: {}, webhookSecret: "short" }, "webhookSecret has an invalid format"],
      [{ bridges: {}, webhookSecret: "x".repeat(20) + " " + "y".repeat(20) }, "webhookSecret has an invalid format"],
      [{ telegramBotToken: "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQ" }, "bridge secrets come with their bridges section"],
      [{ bridges: ["telegram"] }, "bridges must be an object"],
    ] as const) {
      writeFileSync(join(incoming, "runtime-settings.json"), JSON.stringify(settings));
      const r = run("activate", a);
      expect(r.code, JSON.stringify(settings)).toBe(1);
      expect(r.stderr).toContain(why);
      expect(readFileSync(cfgPath, "utf8")).toBe(before);
      expect(readdirSync(dir)).toEqual([]);
      rmSync(join(incoming, "runtime-settings.json"));
    }
  });

  it("activates a second release and records the first as the rollback target", async () => {
    b = fakeRelease("B", true);
    expect(run("install", b).code).toBe(0);
    const r = run("activate", b);
    expect(r.code).toBe(0);
    expect(r.json()).toEqual({ active: b, previous: a, rolledBack: false });
    expect(current()).toBe(b);
    expect(previous()).toBe(a);
    expect(await liveMarker()).toBe("B");
  });

  it("rolls back automatically when the new release fails its health check", async () => {
    const bad = fakeRelease("bad", false);
    expect(run("install", bad).code).toBe(0);
    const r = run("activate", bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`rolled back to ${b}`);
    expect(current()).toBe(b);
    expect(previous()).toBe(a);
    expect(await liveMarker()).toBe("B");
  });

  it("rolls back a release that answers once and then crashes (three healthy answers in a row required)", async () => {
    const flaky = fakeRelease("flaky", "briefly");
    expect(run("install", flaky).code).toBe(0);
    const r = run("activate", flaky);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`rolled back to ${b}`);
    expect(current()).toBe(b);
    expect(await liveMarker()).toBe("B");
  });

  // Port squatting (issue 13): the gate used to take any {"ok":true} for the runtime.
  it("refuses a release whose health answer comes from another process (a squatter on 127.0.0.1), and rolls back", async () => {
    const squatted = fakeRelease("squatted", "squatted");
    expect(run("install", squatted).code).toBe(0);
    const r = run("activate", squatted);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/health gate: runtime \(pid \d+\) not on port \d+/);
    expect(r.stderr).toContain(`rolled back to ${b}`);
    expect(current()).toBe(b);
    expect(await liveMarker()).toBe("B");
  });

  it("refuses a release while another process also listens on the runtime's port ([::1], what MagicDNS AAAA clients reach)", async () => {
    const v6 = fakeRelease("squatted-v6", "squatted-v6");
    expect(run("install", v6).code).toBe(0);
    const r = run("activate", v6);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/health gate: not the runtime's: LISTEN .*\[::1\]:\d+/);
    expect(r.stderr).toContain(`rolled back to ${b}`);
    expect(current()).toBe(b);
    expect(await liveMarker()).toBe("B");
  });

  it("status does not wait behind a running operation's lock", () => {
    const holder = spawnSync("flock", [join(root, "opt/picortex/.release.lock"), "-c", `bash ${SCRIPT} status`], {
      encoding: "utf8",
      timeout: 30_000,
      env: scriptEnv(),
    });
    // flock holds the lock while status runs inside it: status must still answer.
    expect(holder.status).toBe(0);
    expect(JSON.parse(holder.stdout).current).toBe(b);
  });

  it("rolls back on request to the previous release", async () => {
    const r = run("rollback");
    expect(r.code).toBe(0);
    expect(current()).toBe(a);
    expect(previous()).toBe(b);
    expect(await liveMarker()).toBe("A");
  });

  it("reports status as JSON", () => {
    const s = run("status").json();
    expect(s.current).toBe(a);
    expect(s.previous).toBe(b);
    expect(s.releases).toEqual(expect.arrayContaining([a, b]));
    expect(s.unit).toBe("active");
    expect(s.healthy).toBe(true);
  });

  it("uninstall of a replaced release keeps the rollback target and removes others", () => {
    expect(run("uninstall", b).json()).toEqual({ removed: [], kept: b });
    const other = readdirSync(releases).find((n) => n !== a && n !== b && !n.startsWith("."))!;
    expect(run("uninstall", other).json()).toEqual({ removed: [other] });
    expect(existsSync(join(releases, other))).toBe(false);
    expect(current()).toBe(a);
  });

  it("uninstall of the current release stops the unit and removes everything", async () => {
    writeFileSync(join(root, "etc/picortex/credentials/bridges/telegram-bot-token"), "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQ\n", { mode: 0o600 });
    const r = run("uninstall", a);
    expect(r.code).toBe(0);
    expect(current()).toBeUndefined();
    expect(previous()).toBeUndefined();
    expect(readdirSync(releases)).toEqual([]);
    expect(existsSync(join(root, "etc/picortex/credentials/anthropic-api-key"))).toBe(false);
    expect(existsSync(join(root, "etc/picortex/credentials/agent-token"))).toBe(false);
    expect(existsSync(join(root, "etc/picortex/credentials/agent-brain-headers"))).toBe(false);
    // The bridges' folder is emptied, not removed: the runtime unit's LoadCredential= needs it.
    expect(readdirSync(join(root, "etc/picortex/credentials/bridges"))).toEqual([]);
    expect(await liveMarker()).toBeUndefined();
  });

  it("installs and activates the real bundle: native modules checked as an unprivileged user, runtime healthy", async () => {
    const rel = await buildRelease({ repoRoot, outDir: join(root, "dist") });
    execFileSync("cp", [rel.tarball, join(incoming, `${rel.hash}.tar.gz`)]);
    const inst = run("install", rel.hash);
    expect(inst.stderr).toContain("shipped native modules load on this host");
    expect(inst.code).toBe(0);
    const act = run("activate", rel.hash);
    const unitLog = existsSync(join(state, "unit.log")) ? readFileSync(join(state, "unit.log"), "utf8").slice(-2000) : "";
    expect(act.stderr + "\n--- unit log ---\n" + unitLog).toContain("active and healthy");
    expect(act.code).toBe(0);
    const health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { ok: boolean };
    expect(health.ok).toBe(true);
    expect(run("uninstall").json()).toEqual({ removed: "all" });
  });
});

describe("picortex-release crash paths (real kill -9) and native-module fallbacks", () => {
  const markers = join(root, "markers");
  const waitFor = async (path: string) => {
    for (let i = 0; i < 300 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 100));
    if (!existsSync(path)) throw new Error(`timed out waiting for ${path}`);
  };
  /** Starts the script in its own process group so kill -9 reaches runuser and node too. */
  const start = (...args: string[]) => spawn("bash", [SCRIPT, ...args], { env: scriptEnv(), detached: true, stdio: "ignore" });
  const killGroup = async (child: ReturnType<typeof spawn>) => {
    process.kill(-child.pid!, "SIGKILL");
    await new Promise((r) => child.once("exit", r));
  };

  beforeAll(() => {
    mkdirSync(markers, { recursive: true });
    chmodSync(markers, 0o777);
  });

  it("install killed with -9 mid-way leaves no release; the next run cleans up and succeeds", async () => {
    const check = `const fs = require("fs");
fs.writeFileSync(${JSON.stringify(join(markers, "started"))}, "");
if (fs.existsSync(${JSON.stringify(join(markers, "slow"))})) setTimeout(() => {}, 60000);
`;
    const hash = fakeRelease("crash", true, [], check);
    writeFileSync(join(markers, "slow"), "");
    const child = start("install", hash);
    await waitFor(join(markers, "started"));
    await killGroup(child);
    expect(existsSync(join(releases, hash))).toBe(false);
    expect(readdirSync(releases).some((n) => n.startsWith(".staging-"))).toBe(true); // the killed run's leftovers
    rmSync(join(markers, "slow"));
    const again = run("install", hash);
    expect(again.code).toBe(0);
    expect(existsSync(join(releases, hash, "picortex.mjs"))).toBe(true);
    expect(readdirSync(releases).filter((n) => n.startsWith("."))).toEqual([]);
  });

  it("activate killed with -9 mid-restart leaves current pointing at a complete release; a rerun recovers", async () => {
    const a = fakeRelease("K1", true);
    const b = fakeRelease("K2", true);
    expect(run("install", a).code).toBe(0);
    expect(run("install", b).code).toBe(0);
    expect(run("activate", a).code).toBe(0);
    writeFileSync(join(state, "hang"), "");
    const calls = () => (existsSync(join(state, "calls")) ? readFileSync(join(state, "calls"), "utf8") : "");
    const before = calls().split("\n").length;
    const child = start("activate", b);
    for (let i = 0; i < 300 && calls().split("\n").length <= before + 1; i++) await new Promise((r) => setTimeout(r, 100));
    await killGroup(child);
    rmSync(join(state, "hang"));
    const cur = current();
    expect([a, b]).toContain(cur);
    expect(existsSync(join(releases, cur!, "picortex.mjs"))).toBe(true);
    const again = run("activate", b);
    expect(again.code).toBe(0);
    expect(current()).toBe(b);
    expect(await liveMarker()).toBe("K2");
    expect(readdirSync(join(root, "opt/picortex")).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  /** A stand-in native package whose install script "builds" it (or fails to). */
  const nativePkg = (name: string, ok: boolean): TarEntry[] => [
    {
      path: `node_modules/${name}/package.json`,
      data: Buffer.from(JSON.stringify({ name, version: "1.0.0", scripts: { install: ok ? "node -e \"require('fs').writeFileSync('built', 'yes')\"" : "exit 1" } })),
    },
  ];
  const builtCheck = `const fs = require("fs");
for (const m of ["better-sqlite3", "node-pty"]) if (!fs.existsSync("node_modules/" + m + "/built")) { console.error(m + " is not built for this host"); process.exit(1); }
console.log("native modules ok");
`;
  const rootPkg = (tag: string): TarEntry => ({
    path: "package.json",
    data: Buffer.from(JSON.stringify({ name: `picortex-release-${tag}`, version: "1.0.0", private: true, dependencies: { "better-sqlite3": "1.0.0", "node-pty": "1.0.0" } })),
  });

  it("rebuilds from the shipped sources, offline and as the build user, when the shipped binaries do not load", () => {
    const hash = fakeRelease("rebuild", true, [rootPkg("ok"), ...nativePkg("better-sqlite3", true), ...nativePkg("node-pty", true)], builtCheck);
    const r = run("install", hash);
    expect(r.stderr).toContain("rebuilding from the shipped sources");
    expect(r.code).toBe(0);
    const built = join(releases, hash, "node_modules/better-sqlite3/built");
    expect(readFileSync(built, "utf8")).toBe("yes");
    expect(statSync(built).uid).toBe(0); // chowned back to root after the unprivileged build
  });

  it("fails clearly, leaving nothing installed, when no fallback can build the natives", () => {
    const hash = fakeRelease("nobuild", true, [rootPkg("bad"), ...nativePkg("better-sqlite3", false), ...nativePkg("node-pty", false)], builtCheck);
    const r = run("install", hash);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("offline rebuild failed");
    expect(r.stderr).toContain("could not build the native modules");
    expect(existsSync(join(releases, hash))).toBe(false);
  });
});
