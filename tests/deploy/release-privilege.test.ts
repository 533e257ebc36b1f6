/**
 * picortex-release runs as root and writes into directories that less privileged users
 * control (the runtime user's state dir, a world-writable lock dir, a staging tree the
 * build user owns). These tests attack it as those users, for real, in a scratch root:
 * symlinks planted for every temporary name it could use, a loop swapping files for
 * symlinks while it runs, and a build process that tries to outlive the build. A
 * root-owned canary must come out untouched (content, owner and mode).
 */
import { createHash } from "node:crypto";
import { describe, it, expect, beforeAll, beforeEach, afterAll, onTestFinished } from "vitest";
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { renderReleaseHelper } from "../../templates/render-host.js";
import { buildTar, releaseHash, type TarEntry } from "../../scripts/lib/deterministic-tar.js";

const repoRoot = resolve(import.meta.dirname, "../..");
// The helper exactly as a host gets it (rendered: the source without its comments).
const SCRIPT_SOURCE = join(repoRoot, "templates/host/picortex-release.sh");
const SCRIPT = join(mkdtempSync(join(tmpdir(), "picortex-release-script-")), "picortex-release");
writeFileSync(SCRIPT, renderReleaseHelper(readFileSync(SCRIPT_SOURCE, "utf8")), { mode: 0o755 });

if (process.getuid?.() !== 0) {
  throw new Error("tests/deploy/release-privilege.test.ts must run as root (it attacks picortex-release as another user); run it via `bash .ci/run`");
}
for (const tool of ["runuser", "flock", "sha256sum", "tar", "gzip", "unshare"]) {
  if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is required by the release-privilege test: apt-get install util-linux coreutils tar gzip`);
}

const ATTACKER = "nobody"; // plays the runtime user and the build user
const attackerUid = Number(execFileSync("id", ["-u", ATTACKER], { encoding: "utf8" }));
const attackerGid = Number(execFileSync("id", ["-g", ATTACKER], { encoding: "utf8" }));

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

const root = mkdtempSync(join(tmpdir(), "picortex-release-attack-"));
chmodSync(root, 0o755);
const state = join(root, "state");
const incoming = join(root, "incoming");
const dataDir = join(root, "var/lib/picortex");
const canaryDir = join(root, "etc/secret");
const canary = join(canaryDir, "canary");
const CANARY_TEXT = "root-owned canary: must never change\n";
let port = 0;

const FAKE_SYSTEMCTL = `#!/bin/bash
set -u
S="${state}"
[ "\${2:-}" = picortex-agent.service ] && exit 0
stop() { if [ -f "$S/pid" ]; then kill "$(cat "$S/pid")" 2>/dev/null; for i in $(seq 50); do kill -0 "$(cat "$S/pid")" 2>/dev/null || break; sleep 0.1; done; rm -f "$S/pid"; fi; }
case "$1" in
  restart)
    stop
    cd "${root}/opt/picortex/current" || exit 1
    setsid node picortex.mjs --port "$(cat "$S/port")" </dev/null >>"$S/unit.log" 2>&1 &
    echo $! > "$S/pid" ;;
  stop|disable) stop ;;
  # The health gate asks for the unit's main process (it must hold every listener on the port).
  show) if [ -f "$S/pid" ]; then cat "$S/pid"; else echo 0; fi ;;
  *) ;;
esac
`;

function fakeRelease(marker: string, nativeCheck = "process.exit(0)\n"): string {
  const server = `import http from "node:http";
const port = Number(process.argv[process.argv.indexOf("--port") + 1]);
http.createServer((q, r) => { r.setHeader("content-type", "application/json"); r.end(JSON.stringify({ ok: true, marker: ${JSON.stringify(marker)} })); }).listen(port, "127.0.0.1");
`;
  const entries: TarEntry[] = [
    { path: "picortex.mjs", data: Buffer.from(server), executable: true },
    { path: "manifest.json", data: Buffer.from(JSON.stringify({ name: "picortex", marker }) + "\n") },
    { path: "native-check.cjs", data: Buffer.from(nativeCheck) },
  ];
  const tar = buildTar(entries);
  const hash = releaseHash(tar);
  writeFileSync(join(incoming, `${hash}.tar.gz`), gzipSync(tar));
  return hash;
}

const scriptEnv = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  PICORTEX_RELEASE_TEST_ROOT: root,
  PICORTEX_RELEASE_SYSTEMCTL: join(root, "systemctl"),
  PICORTEX_RELEASE_HEALTH_URL: `http://127.0.0.1:${port}/healthz`,
  PICORTEX_RELEASE_HEALTH_TRIES: "10",
  PICORTEX_RELEASE_BUILD_USER: ATTACKER,
  PICORTEX_RELEASE_RUNTIME_USER: ATTACKER,
  PICORTEX_RELEASE_INCOMING: incoming,
});

function run(...args: string[]) {
  const r = spawnSync("bash", [SCRIPT, ...args], { encoding: "utf8", timeout: 180_000, env: scriptEnv() });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a shell snippet as the attacker (argv; the snippet is a fixed test string). */
function asAttacker(script: string, ...args: string[]) {
  const r = spawnSync("runuser", ["-u", ATTACKER, "--", "bash", "-c", script, "attack", ...args], { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`attacker script failed: ${r.stderr}`);
  return r.stdout;
}

function expectCanaryIntact(): void {
  const st = lstatSync(canary);
  expect(st.isFile()).toBe(true);
  expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([0, 0, 0o644]);
  expect(readFileSync(canary, "utf8")).toBe(CANARY_TEXT);
}

function writeSettings(): void {
  writeFileSync(join(incoming, "runtime-settings.json"), JSON.stringify({ apiToken: "pct_attack0123456789abcdefghijklmnop" }));
}

/** The pid range the next few thousand processes will get (pids are handed out in order). */
function nextPids(count: number): [number, number] {
  const last = Number(readFileSync("/proc/sys/kernel/ns_last_pid", "utf8"));
  const max = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8"));
  const from = last + 1;
  return [from, Math.min(from + count, max - 1)];
}

/** As the attacker, in one process: symlinks api-token.tmp-<from..to> and api-token to target. */
function plantAsAttacker(dir: string, from: number, to: number, target: string): void {
  const code = `const fs = require("fs"); const [dir, from, to, target] = process.argv.slice(1);
for (let i = Number(from); i <= Number(to); i++) { try { fs.unlinkSync(dir + "/api-token.tmp-" + i); } catch {} fs.symlinkSync(target, dir + "/api-token.tmp-" + i); }
try { fs.unlinkSync(dir + "/api-token"); } catch {} fs.symlinkSync(target, dir + "/api-token");`;
  const r = spawnSync("runuser", ["-u", ATTACKER, "--", process.execPath, "-e", code, dir, String(from), String(to), target], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`planting failed: ${r.stderr}`);
}

/** Kills (and returns the pids of) any process left over by the lingering-build attack. */
function killSurvivors(): string[] {
  const found = spawnSync("pgrep", ["-u", ATTACKER, "-f", "tampered after install"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
  for (const pid of found) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      /* gone */
    }
  }
  return found;
}

let hash = "";

beforeAll(async () => {
  port = await freePort();
  for (const d of [state, incoming, canaryDir, join(root, "run/lock")]) mkdirSync(d, { recursive: true });
  // The host's /run/lock is world-writable and sticky; so is the scratch one.
  chmodSync(join(root, "run/lock"), 0o1777);
  chmodSync(canaryDir, 0o755);
  resetCanary();
  // The runtime user's state dir, as systemd's StateDirectory= leaves it: owned by that user.
  mkdirSync(dataDir, { recursive: true });
  chownSync(dataDir, attackerUid, attackerGid);
  chmodSync(dataDir, 0o700);
  writeFileSync(join(state, "port"), String(port));
  writeFileSync(join(root, "systemctl"), FAKE_SYSTEMCTL, { mode: 0o755 });
  hash = fakeRelease("attack");
  const inst = run("install", hash);
  expect(inst.code, inst.stderr).toBe(0);
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

/** A fresh canary for each attack, so one success cannot hide or fake another. */
function resetCanary(): void {
  rmSync(canary, { force: true });
  writeFileSync(canary, CANARY_TEXT, { mode: 0o644 });
  chownSync(canary, 0, 0);
  chmodSync(canary, 0o644);
}

describe("picortex-release against a hostile runtime user", () => {
  beforeEach(resetCanary);

  it("activate never writes through symlinks planted in the state dir for every temporary name", () => {
    const [from, to] = nextPids(4000);
    // Every name the helper could pick from its pid, plus the final name itself. One
    // process plants them all, so planting uses up no pids of the range.
    plantAsAttacker(dataDir, from, to, canary);
    writeSettings();
    const r = run("activate", hash);
    expectCanaryIntact();
    expect(r.code, r.stderr).toBe(0);
    // The token landed as a regular file owned by the runtime user, not through a link.
    const tok = lstatSync(join(dataDir, "api-token"));
    expect(tok.isFile()).toBe(true);
    expect([tok.uid, tok.mode & 0o777]).toEqual([attackerUid, 0o600]);
    expect(readFileSync(join(dataDir, "api-token"), "utf8")).toBe("pct_attack0123456789abcdefghijklmnop\n");
  });

  it("the agent token's hash never goes through a symlink planted in the state dir; the token stays root-only", () => {
    // The runtime user links the hash file's name (and every other name it could guess) to
    // a root-owned file, and removes any token so activate makes a new one.
    rmSync(join(root, "etc/picortex/credentials/agent-token"), { force: true });
    asAttacker('for n in agent-token.sha256 agent-token.sha256.tmp agent-token; do rm -f "$1/$n"; ln -s "$2" "$1/$n"; done', dataDir, canary);
    const r = run("activate", hash);
    expect(r.code, r.stderr).toBe(0);
    expectCanaryIntact();
    const hashFile = join(dataDir, "agent-token.sha256");
    const st = lstatSync(hashFile);
    expect(st.isFile()).toBe(true);
    expect([st.uid, st.mode & 0o777]).toEqual([attackerUid, 0o600]);
    const token = readFileSync(join(root, "etc/picortex/credentials/agent-token"), "utf8").trim();
    expect(token).toMatch(/^pca_/);
    expect(readFileSync(hashFile, "utf8")).toBe(createHash("sha256").update(token).digest("hex") + "\n");
    // The runtime user holds only the hash: the token file is out of its reach.
    expect(spawnSync("runuser", ["-u", ATTACKER, "--", "cat", join(root, "etc/picortex/credentials/agent-token")]).status).not.toBe(0);
    expect(r.stdout + r.stderr).not.toContain(token);
    // Nothing the runtime user can read holds the token.
    const readable = asAttacker('find "$1" -type f -readable -exec cat {} + 2>/dev/null || true', root);
    expect(readable).not.toContain(token);
  });

  it("activate survives a loop that keeps swapping files for symlinks to the canary while it runs", async () => {
    const stop = join(root, "stop-swapper");
    // One process, so it moves the pid counter by nothing: each round it re-plants links
    // for the next 500 pids, and swaps every regular file in the dir for a link.
    const code = `const fs = require("fs"); const [dir, target, stop] = process.argv.slice(1);
const link = (n) => { try { fs.unlinkSync(dir + "/" + n); } catch {} try { fs.symlinkSync(target, dir + "/" + n); } catch {} };
while (!fs.existsSync(stop)) {
  const last = Number(fs.readFileSync("/proc/sys/kernel/ns_last_pid", "utf8"));
  for (let i = last + 1; i <= last + 500; i++) link("api-token.tmp-" + i);
  for (const n of fs.readdirSync(dir)) { try { if (fs.lstatSync(dir + "/" + n).isFile()) link(n); } catch {} }
  for (const n of ["api-token", "api-token.tmp", "api-token.new", "agent-token.sha256"]) { link(n); try { fs.unlinkSync(dir + "/" + n); fs.writeFileSync(dir + "/" + n, ""); } catch {} link(n); }
}`;
    const swapper = spawn("runuser", ["-u", ATTACKER, "--", process.execPath, "-e", code, dataDir, canary, stop], { stdio: "ignore" });
    try {
      for (let i = 0; i < 3; i++) {
        writeSettings();
        run("activate", hash);
        expectCanaryIntact();
      }
    } finally {
      writeFileSync(stop, "");
      await new Promise((r) => swapper.once("exit", r));
    }
    expectCanaryIntact();
  });

  it("the lock file cannot be redirected through the world-writable lock directory", () => {
    // /run/lock is a tmpfs: after a reboot the name is free for anyone to take first.
    rmSync(join(root, "run/lock/picortex-release.lock"), { force: true });
    asAttacker('ln -sfn "$2" "$1/picortex-release.lock"', join(root, "run/lock"), canary);
    const r = run("activate", hash);
    expect(r.code, r.stderr).toBe(0);
    expectCanaryIntact();
  });

  it("no build-user process outlives install: one holding the release open cannot change it once root owns it", async () => {
    const markers = join(root, "markers");
    mkdirSync(markers, { recursive: true });
    chmodSync(markers, 0o777);
    const beat = join(markers, "beat");
    // The native check (run as the build user) starts a detached child that keeps
    // picortex.mjs open for writing and, once root owns it, appends to it and beats.
    const check = `const { spawn } = require("child_process");
const code = ${JSON.stringify(`const fs = require("fs");
const fd = fs.openSync("picortex.mjs", "a");
setInterval(() => { try { if (fs.fstatSync(fd).uid !== 0) return; fs.writeSync(fd, "\\n// tampered after install\\n"); fs.appendFileSync(${JSON.stringify(beat)}, "x"); } catch {} }, 100);
`)};
const c = spawn(process.execPath, ["-e", code], { detached: true, stdio: "ignore" });
c.unref();
setTimeout(() => process.exit(0), 300);
`;
    const h = fakeRelease("linger", check);
    const r = run("install", h);
    expect(r.code, r.stderr).toBe(0);
    const installed = join(root, "opt/picortex/releases", h, "picortex.mjs");
    expect(statSync(installed).uid).toBe(0);
    // Give a survivor ample time to show itself (it beats every 100 ms).
    const beats = () => (existsSync(beat) ? readFileSync(beat, "utf8").length : 0);
    const before = beats();
    onTestFinished(() => void killSurvivors());
    await new Promise((res) => setTimeout(res, 1500));
    expect(beats(), "a build-user process survived install and is still writing").toBe(before);
    expect(before).toBe(0);
    expect(readFileSync(installed, "utf8")).not.toContain("tampered after install");
    expect(killSurvivors()).toEqual([]);
  });

  it("leaves no temporary file behind in the state dir", () => {
    const left = readdirSync(dataDir).filter((n) => n.startsWith(".picortex-"));
    expect(left).toEqual([]);
  });
});

describe("picortex-release host facts", () => {
  it("defaults to the dedicated build account named in agent-runtime/host/contract.ts", async () => {
    const { BUILD_USER } = await import("../../agent-runtime/host/contract.js");
    const text = readFileSync(SCRIPT_SOURCE, "utf8");
    expect(text).toContain(`BUILD_USER="${BUILD_USER}"`);
    expect(text).toContain(`BUILD_USER="\${PICORTEX_RELEASE_BUILD_USER:-${BUILD_USER}}"`);
  });

  it("names the contract's runtime user, unit, release root, config and state dirs (a shell script cannot import them)", async () => {
    const c = await import("../../agent-runtime/host/contract.js");
    const text = readFileSync(SCRIPT_SOURCE, "utf8");
    expect(text).toContain(`RUNTIME_USER="${c.RUNTIME_USER}"`);
    expect(text).toContain(`RUNTIME_USER="\${PICORTEX_RELEASE_RUNTIME_USER:-${c.RUNTIME_USER}}"`);
    expect(text).toContain(`readonly UNIT="${c.RUNTIME_UNIT}"`);
    expect(text).toContain(`readonly BASE="$ROOT${c.RELEASES_ROOT}"`);
    expect(text).toContain(`readonly CURRENT="$BASE/${c.CURRENT_RELEASE_LINK.slice(c.RELEASES_ROOT.length + 1)}"`);
    expect(text).toContain(`readonly ETC_DIR="$ROOT${c.CONFIG_DIR}"`);
    expect(text).toContain(`readonly DATA_DIR="$ROOT${c.STATE_DIR}"`);
    expect(text).toContain(`"$HASH" =~ ^${c.RELEASE_HASH_SOURCE}$`);
    expect(text).toContain(`picortex-release ${c.RELEASE_ARGS_REGEX}`);
    expect(text).toContain(`HEALTH_URL="http://127.0.0.1:${c.DEFAULT_RUNTIME_PORT}/healthz"`);
  });
});
