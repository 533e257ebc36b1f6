import { afterAll, describe, expect, it } from "vitest";
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireTool } from "./helpers.js";

const BIN = join(process.cwd(), "agent-runtime", "bin", "picortex.mjs");
const dataDir = mkdtempSync(join(tmpdir(), "pcx-portal-cli-"));
const socket = join(dataDir, "tmux.sock");

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, "portal", ...args, "--data-dir", dataDir], { timeout: 90_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

afterAll(async () => {
  await cli(["stop"]);
  try {
    execFileSync("tmux", ["-S", socket, "kill-server"], { stdio: "ignore" });
  } catch {
    /* none */
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe("picortex portal CLI", () => {
  it("starts detached, reports status, prints a working #token link, and stops", async () => {
    requireTool("tmux", "apt-get install tmux");
    const start = await cli(["start", "--port", "0", "--host", "127.0.0.1", "--tmux-socket", socket, "--command", "env PS1=cli$ sh", "--read-only-token", "--json"]);
    expect(start.code, start.stderr).toBe(0);
    const started = JSON.parse(start.stdout) as { pid: number; urls: string[] };
    expect(started.urls[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(statSync(join(dataDir, "portal-token")).mode & 0o777).toBe(0o600);

    const status = await cli(["status", "--json"]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: true, pid: started.pid, portal: { session: "picortex", readOnlyToken: true } });

    const token = JSON.parse((await cli(["token", "--json"])).stdout) as { token: string; links: string[] };
    expect(token.links[0]).toBe(`${started.urls[0]}/portal/#token=${token.token}`);
    const signIn = await fetch(`${started.urls[0]}/portal/api/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: token.token }),
    });
    expect(signIn.status).toBe(200);
    const viewer = JSON.parse((await cli(["token", "--read-only", "--json"])).stdout) as { token: string; role: string };
    expect(viewer.role).toBe("read-only");
    expect(viewer.token).not.toBe(token.token);

    const again = await cli(["start", "--port", "0", "--host", "127.0.0.1", "--tmux-socket", socket]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already running/);

    const stop = await cli(["stop", "--json"]);
    expect(JSON.parse(stop.stdout)).toMatchObject({ stopped: true, pid: started.pid });
    const after = await cli(["status", "--json"]);
    expect(after.code).toBe(3);
    expect(JSON.parse(after.stdout)).toMatchObject({ running: false });
  }, 240_000); // seven CLI processes through tsx on a loaded 2-core CI machine

  it("refuses to bind every interface", async () => {
    const res = await cli(["start", "--host", "0.0.0.0", "--port", "0"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/every interface/);
  });
});
