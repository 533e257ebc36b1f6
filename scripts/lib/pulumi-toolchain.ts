/**
 * The Pulumi CLI the engine lane (tests/engine/) runs, built from the Go module proxy.
 *
 * tools/pulumi/ is a Go module of our own that requires pkg/v3 and sdk/v3 at one
 * version (`go install …/cmd/pulumi@v3.x` is refused: pkg/v3's go.mod has replace
 * directives). It is built with -trimpath and CGO off, so the binary is a function of
 * go.mod, go.sum, the Go version and the flags below; the cache folder is keyed by a
 * hash of exactly those, and a warm machine reuses the binary without running the Go
 * toolchain at all.
 *
 * Layout: <cacheDir>/pulumi-<version>-<key>/bin/pulumi, written to a temporary folder
 * first and renamed into place, so a half-built CLI is never found. Concurrent callers
 * (two vitest runs) serialise on <cacheDir>/.build.lock.
 */
import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync, accessSync, constants } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { homedir } from "node:os";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
export const MODULE_DIR = join(REPO_ROOT, "tools/pulumi");
export const CLI_PACKAGE = "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi";
export const VERSION_SYMBOL = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version";
export const DEFAULT_CACHE_DIR = "/var/cache/picortex-toolchain";
export const CACHE_ENV = "PICORTEX_TOOLCHAIN_CACHE";

export class ToolchainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ToolchainError";
  }
}

export interface ToolchainInfo {
  /** Absolute path of the `pulumi` binary. */
  pulumi: string;
  /** Folder holding it (put it first on PATH, or pass it as PulumiCommand root's bin). */
  binDir: string;
  version: string;
  goVersion: string;
  key: string;
  cacheDir: string;
  /** true when this call built it, false when the cache was warm. */
  built: boolean;
  buildSeconds?: number;
}

/** The pkg/v3 version go.mod requires: the version stamped into the binary. */
export function pinnedVersion(moduleDir = MODULE_DIR): string {
  const mod = readFileSync(join(moduleDir, "go.mod"), "utf8");
  const m = /^\s*github\.com\/pulumi\/pulumi\/pkg\/v3 (v\d+\.\d+\.\d+)\b/m.exec(mod);
  if (!m) throw new ToolchainError(`${moduleDir}/go.mod does not require github.com/pulumi/pulumi/pkg/v3 at a release version`);
  const sdk = /^\s*github\.com\/pulumi\/pulumi\/sdk\/v3 (v\d+\.\d+\.\d+)\b/m.exec(mod);
  if (!sdk || sdk[1] !== m[1]) throw new ToolchainError(`${moduleDir}/go.mod must require sdk/v3 at the same version as pkg/v3 (${m[1]}), found ${sdk?.[1] ?? "none"}`);
  return m[1]!;
}

export function buildArgs(version: string, out: string): string[] {
  return ["build", "-trimpath", "-v", "-ldflags", `-X ${VERSION_SYMBOL}=${version}`, "-o", out, CLI_PACKAGE];
}

/** Environment of the build: CGO off so the binary does not depend on a C toolchain. */
export function buildEnv(): NodeJS.ProcessEnv {
  return { ...process.env, CGO_ENABLED: "0", GOFLAGS: "-mod=readonly -buildvcs=false" };
}

/** `go version` as the module sees it (run inside it, so a toolchain go.mod selects counts). */
export function goVersion(moduleDir = MODULE_DIR): string {
  try {
    return execFileSync("go", ["version"], { cwd: moduleDir, encoding: "utf8", env: buildEnv() }).trim();
  } catch (err) {
    throw new ToolchainError(
      `the Go toolchain is needed to build the Pulumi CLI once (go version failed: ${(err as Error).message.split("\n")[0]}). Install Go >= the version in tools/pulumi/go.mod, or point ${CACHE_ENV} at a warm cache.`,
    );
  }
}

/** sha256 over go.mod, go.sum, `go version` and the build recipe (first 16 hex chars). */
export function cacheKey(moduleDir: string, goVer: string, version: string): string {
  const h = createHash("sha256");
  for (const f of ["go.mod", "go.sum"]) h.update(f).update("\0").update(readFileSync(join(moduleDir, f))).update("\0");
  h.update(goVer).update("\0").update(JSON.stringify(buildArgs(version, "OUT"))).update("\0").update("CGO_ENABLED=0");
  return h.digest("hex").slice(0, 16);
}

export function resolveCacheDir(explicit?: string): string {
  const dir = explicit ?? process.env[CACHE_ENV] ?? DEFAULT_CACHE_DIR;
  if (!dir.startsWith("/")) throw new ToolchainError(`the toolchain cache must be an absolute path, got ${JSON.stringify(dir)} (${CACHE_ENV} or --cache-dir)`);
  if (explicit === undefined && process.env[CACHE_ENV] === undefined) {
    // The default is root's; a developer without write access gets a per-user cache.
    try {
      mkdirSync(dir, { recursive: true });
      accessSync(dir, constants.W_OK);
    } catch {
      return join(homedir(), ".cache/picortex-toolchain");
    }
  }
  return dir;
}

/** The folder a warm cache would hold for this module and Go version (no build). */
export function cliLocation(opts: { cacheDir?: string; moduleDir?: string } = {}): Omit<ToolchainInfo, "built"> {
  const moduleDir = opts.moduleDir ?? MODULE_DIR;
  const cacheDir = resolveCacheDir(opts.cacheDir);
  const version = pinnedVersion(moduleDir);
  const gv = goVersion(moduleDir);
  const key = cacheKey(moduleDir, gv, version);
  const binDir = join(cacheDir, `pulumi-${version}-${key}`, "bin");
  return { pulumi: join(binDir, "pulumi"), binDir, version, goVersion: gv, key, cacheDir };
}

function isWarm(pulumi: string, version: string): boolean {
  if (!existsSync(pulumi)) return false;
  try {
    const out = execFileSync(pulumi, ["version"], { encoding: "utf8", env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "1" }, timeout: 60_000 }).trim();
    return out === version;
  } catch {
    return false;
  }
}

/** An exclusive lock file; a lock left by a dead process is taken over. */
async function withLock<T>(lockPath: string, onWait: (holder: string) => void, fn: () => Promise<T>): Promise<T> {
  let announced = false;
  for (;;) {
    try {
      const fd = openSync(lockPath, "wx", 0o644);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      let holder = "";
      try {
        holder = readFileSync(lockPath, "utf8").trim();
      } catch {
        continue;
      }
      const pid = Number(holder);
      let alive = Number.isInteger(pid) && pid > 0;
      if (alive) {
        try {
          process.kill(pid, 0);
        } catch {
          alive = false;
        }
      }
      if (!alive) {
        rmSync(lockPath, { force: true });
        continue;
      }
      if (!announced) onWait(holder);
      announced = true;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(lockPath);
    } catch {
      // already gone
    }
  }
}

export interface EnsureOptions {
  cacheDir?: string;
  moduleDir?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Build even when the cache is warm (the result replaces the cached binary). */
  rebuild?: boolean;
}

/** Returns the cached CLI, building it first when the cache is cold. */
export async function ensurePulumiCli(opts: EnsureOptions = {}): Promise<ToolchainInfo> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`pulumi-toolchain: ${l}\n`));
  const moduleDir = opts.moduleDir ?? MODULE_DIR;
  const loc = cliLocation({ cacheDir: opts.cacheDir, moduleDir });
  if (!opts.rebuild && isWarm(loc.pulumi, loc.version)) {
    log(`using cached Pulumi CLI ${loc.version} at ${loc.pulumi}`);
    return { ...loc, built: false };
  }
  mkdirSync(loc.cacheDir, { recursive: true });
  return withLock(
    join(loc.cacheDir, ".build.lock"),
    (holder) => log(`another build (pid ${holder}) holds ${loc.cacheDir}/.build.lock; waiting for it`),
    async () => {
      if (!opts.rebuild && isWarm(loc.pulumi, loc.version)) {
        log(`using cached Pulumi CLI ${loc.version} at ${loc.pulumi} (built by another process)`);
        return { ...loc, built: false };
      }
      const started = Date.now();
      const final = dirname(loc.binDir);
      const tmp = `${final}.building-${process.pid}`;
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(join(tmp, "bin"), { recursive: true });
      log(`building Pulumi CLI ${loc.version} (${loc.goVersion}) into ${final}: a cold build takes 6-10 min on 2 cores and downloads ~1.5 GB of modules`);
      await runGoBuild(moduleDir, buildArgs(loc.version, join(tmp, "bin/pulumi")), log, started);
      if (!isWarm(join(tmp, "bin/pulumi"), loc.version)) {
        rmSync(tmp, { recursive: true, force: true });
        throw new ToolchainError(`the built CLI does not report version ${loc.version}; check the -X ${VERSION_SYMBOL} flag`);
      }
      rmSync(final, { recursive: true, force: true });
      renameSync(tmp, final);
      const buildSeconds = Math.round((Date.now() - started) / 1000);
      log(`built ${loc.pulumi} (${Math.round(statSync(loc.pulumi).size / 1e6)} MB) in ${buildSeconds} s`);
      return { ...loc, built: true, buildSeconds };
    },
  );
}

function runGoBuild(moduleDir: string, args: string[], log: (l: string) => void, started: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("go", args, { cwd: moduleDir, env: buildEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let packages = 0;
    let tail: string[] = [];
    let buf = "";
    const onData = (d: Buffer) => {
      buf += d.toString("utf8");
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const line of lines) {
        // `go build -v` prints each package as it is compiled; anything else is kept for errors.
        if (/^[\w.\-~]+(\/[\w.\-~@]+)+$|^[a-z]+(\/[a-z0-9]+)*$/.test(line.trim())) packages++;
        else if (line.trim()) tail = [...tail, line].slice(-40);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    const timer = setInterval(() => log(`… ${packages} packages compiled (${Math.round((Date.now() - started) / 1000)} s)`), 30_000);
    child.on("error", (err) => {
      clearInterval(timer);
      reject(new ToolchainError(`cannot run go: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      clearInterval(timer);
      if (code === 0) {
        log(`go build finished: ${packages} packages compiled`);
        resolve();
      } else reject(new ToolchainError(`go build failed (${signal ?? `exit ${code}`}):\n${tail.join("\n")}`));
    });
  });
}
