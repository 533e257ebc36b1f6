/**
 * The ChatWorkspace program against the REAL runtime (local mode, loopback, real Claude
 * Code CLI for the provisioning check): the API contract it relies on (201 create, 409
 * for an existing chat, 200 delete with an archive, 404 when gone, 401 for a bad token)
 * cannot drift without this failing.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chatApiScript } from "../../components/chat-workspace.js";
import { loadRuntimeConfig } from "../../agent-runtime/config/load.js";
import { startRuntime, type RunningRuntime } from "../../agent-runtime/server.js";
import { createLogger } from "../../agent-runtime/log.js";

const repoRoot = resolve(import.meta.dirname, "../..");
const claude = join(repoRoot, "node_modules/.bin/claude");
if (!existsSync(claude)) throw new Error(`the Claude Code CLI is required at ${claude}: run npm install`);

const dataDir = mkdtempSync(join(tmpdir(), "picortex-chat-contract-"));
let runtime: RunningRuntime;

beforeAll(async () => {
  const config = loadRuntimeConfig({
    env: {},
    overrides: {
      mode: "local",
      dataDir,
      server: { hosts: ["127.0.0.1"], port: 0 },
      portal: { enabled: false },
      brain: { enabled: false },
      turns: { claudePath: claude },
    },
  });
  runtime = await startRuntime(config, createLogger("test", () => {}));
});
afterAll(async () => {
  await runtime?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function run(action: "create" | "delete", env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    const child = spawn(process.execPath, ["-e", chatApiScript(action)], { env: { PATH: process.env.PATH!, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}
const env = (id: string, extra: Record<string, string> = {}) => ({
  PICORTEX_RUNTIME_URL: runtime.urls[0]!,
  PICORTEX_API_TOKEN: runtime.apiToken,
  PICORTEX_CHAT_ID: id,
  PICORTEX_CHAT_ON_DELETE: "archive",
  ...extra,
});

describe("ChatWorkspace program against the real runtime API", () => {
  it("creates a chat, adopts it on a re-run, and never prints the token", async () => {
    const r = await run("create", env("contract-a", { PICORTEX_CHAT_BUDGET: "100000" }));
    expect(r.stderr + r.stdout).not.toContain(runtime.apiToken);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: "contract-a", status: "ready" });
    const again = await run("create", env("contract-a"));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("adopted");
  });

  it("deletes with an archive, then treats the chat as already gone", async () => {
    const d = await run("delete", env("contract-a"));
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toMatch(/deleted contract-a \(archived at .*contract-a-\d+\.tar\.gz\)/);
    const again = await run("delete", env("never-existed"));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("already gone");
  });

  it("can create a chat again after a destroy (archive and purge)", async () => {
    for (const mode of ["archive", "purge"]) {
      const id = `again-${mode}`;
      expect((await run("create", env(id))).code).toBe(0);
      expect((await run("delete", env(id, { PICORTEX_CHAT_ON_DELETE: mode }))).code).toBe(0);
      const r = await run("create", env(id));
      expect(r.code, `${mode}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout).status).toBe("ready");
    }
  });

  it("fails on a wrong token with the runtime's message", async () => {
    const r = await run("create", env("contract-b", { PICORTEX_API_TOKEN: "pct_wrong" }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("HTTP 401");
  });
});
