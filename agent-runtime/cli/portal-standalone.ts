import { execFile, spawn } from "node:child_process";
import { existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { RuntimeConfig } from "../config/schema.js";
import { startRuntime, type RunningRuntime } from "../server.js";
import { writeFileAtomic } from "../store/atomic-file.js";
import type { Logger } from "../log.js";

/**
 * `picortex portal start` runs a standalone portal: the runtime's HTTP server with only
 * the portal module mounted (no turns, no brain). It detaches by default and records
 * itself in `<dataDir>/portal.pid` (JSON) so `status` and `stop` can find it.
 */
export interface PortalPidfile {
  pid: number;
  urls: string[];
  session: string;
  startedAt: string;
}

export const pidfilePath = (dataDir: string) => join(dataDir, "portal.pid");
export const logfilePath = (dataDir: string) => join(dataDir, "portal.log");

export function readPidfile(dataDir: string): PortalPidfile | undefined {
  const path = pidfilePath(dataDir);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as PortalPidfile;
  } catch {
    return undefined; // torn or hand-edited: treat as absent
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The tailnet IPv4 address when `tailscale` is installed and up; never guesses. */
export function detectTailnetAddress(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile("tailscale", ["ip", "-4"], { timeout: 2000 }, (err, stdout) => {
      const ip = err ? undefined : String(stdout).trim().split("\n")[0];
      resolve(ip && /^100\.\d+\.\d+\.\d+$/.test(ip) ? ip : undefined);
    });
  });
}

/** Runs the portal in this process until SIGINT/SIGTERM, keeping the pidfile current. */
export async function runPortalForeground(config: RuntimeConfig, log: Logger): Promise<RunningRuntime> {
  const existing = readPidfile(config.dataDir);
  if (existing && existing.pid !== process.pid && processAlive(existing.pid)) {
    throw new Error(`A portal is already running (pid ${existing.pid}, ${existing.urls.join(", ")}); stop it with \`picortex portal stop\`.`);
  }
  const runtime = await startRuntime(config, log);
  const record: PortalPidfile = { pid: process.pid, urls: runtime.urls, session: config.portal.session, startedAt: new Date().toISOString() };
  writeFileAtomic(pidfilePath(config.dataDir), JSON.stringify(record) + "\n", 0o600);
  const stop = async (signal: string) => {
    log.info(`portal received ${signal}, shutting down (the tmux session keeps running)`);
    await runtime.close();
    const current = readPidfile(config.dataDir);
    if (current?.pid === process.pid) rmSync(pidfilePath(config.dataDir), { force: true });
    process.exit(0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
  return runtime;
}

/**
 * Starts `picortex portal start --foreground …` detached (own session, output to
 * `<dataDir>/portal.log`) and waits until it has written its pidfile or died.
 */
export async function startDetached(dataDir: string, childArgs: string[], timeoutMs = 60_000): Promise<PortalPidfile> {
  const out = openSync(logfilePath(dataDir), "a", 0o600);
  const before = readPidfile(dataDir);
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...childArgs], {
    detached: true,
    stdio: ["ignore", out, out],
  });
  let exited: number | null | undefined;
  child.once("exit", (code) => {
    exited = code;
  });
  child.unref();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = readPidfile(dataDir);
    if (now && now.pid === child.pid && now.startedAt !== before?.startedAt) return now;
    if (exited !== undefined) throw new Error(`the portal exited during startup (code ${exited}); see ${logfilePath(dataDir)}`);
    if (Date.now() > deadline) throw new Error(`the portal did not start within ${timeoutMs / 1000} s; see ${logfilePath(dataDir)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sends SIGTERM and waits for the process to go; SIGKILL after the grace period. */
export async function stopPortal(dataDir: string, graceMs = 10_000): Promise<{ stopped: boolean; pid?: number; stale?: boolean }> {
  const record = readPidfile(dataDir);
  if (!record) return { stopped: false };
  if (!processAlive(record.pid)) {
    rmSync(pidfilePath(dataDir), { force: true });
    return { stopped: false, pid: record.pid, stale: true };
  }
  process.kill(record.pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (processAlive(record.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (processAlive(record.pid)) process.kill(record.pid, "SIGKILL");
  rmSync(pidfilePath(dataDir), { force: true });
  return { stopped: true, pid: record.pid };
}
