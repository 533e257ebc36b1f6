/**
 * The chat stack (stacks/chat) through the real engine, as the README drives it:
 * `pulumi stack init chat-team-alpha`, `pulumi config set workspaceStack prod`,
 * `pulumi up`, a second up with no change, `pulumi destroy`, and a destroy from a fresh
 * checkout (as CI's destroy workflow has it: no Pulumi.chat-*.yaml on that machine).
 *
 * The workspace stack is up on the emulators (host-only); the chats are created by the
 * REAL runtime API (agent-runtime, local mode, loopback) that ChatWorkspace's command
 * calls. The runtime is reached through the chat stack's documented `runtimeUrl`
 * override, because the tailnet name is not resolvable here.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { spawn } from "node:child_process";
import { loadRuntimeConfig } from "../../agent-runtime/config/load.js";
import { startRuntime, type RunningRuntime } from "../../agent-runtime/server.js";
import { createLogger } from "../../agent-runtime/log.js";
import { assertOk, credentialSecrets, readmeWorkspaceStack, startFixture, type Fixture } from "./support/lane-fixture.js";
import { setConfig, type Project } from "./harness/engine.js";
import { checkAgainstRecording } from "./support/recordings.js";

const repoRoot = resolve(import.meta.dirname, "../..");
const claude = join(repoRoot, "node_modules/.bin/claude");
const CHAT_STACK = "chat-team-alpha";

let f: Fixture;
let ws: Project;
let chat: Project;
let runtime: RunningRuntime;
const dataDir = mkdtempSync(join(tmpdir(), "picortex-engine-chat-"));

/** Gone from the runtime: 404, or kept as a "deleted" record (the archive is on disk). */
async function chatGone(id: string): Promise<boolean> {
  const got = await chatOnRuntime(id);
  return got.status === 404 || got.body.status === "deleted";
}

async function chatOnRuntime(id: string): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${runtime.urls[0]}/v1/chats/${id}`, { headers: { authorization: `Bearer ${runtime.apiToken}` } });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, any> };
}

beforeAll(async () => {
  if (!existsSync(claude)) throw new Error(`the Claude Code CLI is required at ${claude}: run npm install`);
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
  runtime = await startRuntime(config, createLogger("engine-chat", () => {}));
  f = await startFixture();
  ws = await readmeWorkspaceStack(f, "prod", { "picortex:protection": "false" });
  await setConfig(f.lane, ws, "prod", "picortex:apiToken", runtime.apiToken, { secret: true });
  assertOk(await f.lane.run(ws, "prod", "up"), "workspace up");
  chat = f.lane.project("chat");
  const init = await f.lane.cli(["stack", "init", CHAT_STACK], { cwd: chat.workDir });
  if (init.code !== 0) throw new Error(init.stderr);
  await setConfig(f.lane, chat, CHAT_STACK, "workspaceStack", "prod");
  await setConfig(f.lane, chat, CHAT_STACK, "runtimeUrl", runtime.urls[0]!);
}, 30 * 60_000);

afterAll(async () => {
  if (f && ws) await f.lane.run(ws, "prod", "destroy").catch(() => undefined);
  await f?.close();
  await runtime?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe.sequential("chat stack on the real engine", () => {
  it("up creates the chat through the runtime API; the token never shows", async () => {
    const r = await f.lane.run(chat, CHAT_STACK, "up");
    assertOk(r, "chat up");
    expect(r.outputs?.chatId?.value).toBe("team-alpha");
    expect(r.outputs?.linuxUser?.value).toBe("pc-team-alpha");
    const got = await chatOnRuntime("team-alpha");
    expect(got.status).toBe(200);
    expect(got.body.status).toBe("ready");
    expect(r.stdout + r.stderr).not.toContain(runtime.apiToken);
  }, 600_000);

  it("a second up changes nothing", async () => {
    const r = await f.lane.run(chat, CHAT_STACK, "up", { expectNoChanges: true });
    assertOk(r, "chat re-up");
    expect(Object.keys(r.summary?.resourceChanges ?? {}).filter((k) => k !== "same")).toEqual([]);
  }, 600_000);

  it("destroy removes the chat from the runtime", async () => {
    const r = await f.lane.run(chat, CHAT_STACK, "destroy");
    assertOk(r, "chat destroy");
    expect(await chatGone("team-alpha")).toBe(true);
  }, 600_000);

  it("a chat stack can be destroyed from a fresh checkout (CI's destroy workflow)", async () => {
    const again = await f.lane.run(chat, CHAT_STACK, "up");
    assertOk(again, "chat up again");
    expect((await chatOnRuntime("team-alpha")).body.status).toBe("ready");
    const fresh = f.lane.project("chat");
    const sel = await f.lane.cli(["stack", "select", CHAT_STACK], { cwd: fresh.workDir });
    expect(sel.code, sel.stderr).toBe(0);
    const r = await f.lane.run(fresh, CHAT_STACK, "destroy");
    assertOk(r, "chat destroy from a fresh checkout");
    expect(await chatGone("team-alpha")).toBe(true);
  }, 600_000);

  it("scripts/chat.ts create, list and destroy through its own Automation API path (inline program, no language host)", async () => {
    const dir = f.lane.project("chat").workDir;
    const chatTs = async (...args: string[]) => {
      const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
        const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "scripts/chat.ts"), ...args], {
          cwd: repoRoot,
          env: { ...f.lane.env, PICORTEX_PULUMI_ROOT: dirname(dirname(f.lane.pulumi)), PICORTEX_CHAT_WORKDIR: dir },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d));
        child.stderr.on("data", (d: Buffer) => (stderr += d));
        child.on("error", fail);
        child.on("close", (code) => done({ code, stdout, stderr }));
      });
      expect(r.stdout + r.stderr, "the API token in scripts/chat.ts output").not.toContain(runtime.apiToken);
      return r;
    };
    const created = await chatTs("create", "team-beta", "--workspace-stack", "prod", "--runtime-url", runtime.urls[0]!, "--json");
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ id: "team-beta", stack: "chat-team-beta", action: "created", result: "succeeded" });
    expect((await chatOnRuntime("team-beta")).body.status).toBe("ready");
    const listed = await chatTs("list", "--json");
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.stringify(JSON.parse(listed.stdout))).toContain("team-beta");
    const destroyed = await chatTs("destroy", "team-beta", "--json");
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(JSON.parse(destroyed.stdout)).toMatchObject({ id: "team-beta", action: "destroyed", result: "succeeded" });
    expect(await chatGone("team-beta")).toBe(true);
  }, 600_000);

  it("no secret is in plain text in the backend", () => {
    const text = f.lane.backendText();
    for (const s of [runtime.apiToken, ...credentialSecrets(f)]) expect(text).not.toContain(s);
  });

  it("every provider answered as the recorded real provider did (recordings/chat-stack.jsonl)", () => {
    checkAgainstRecording(f, "chat-stack", [runtime.apiToken, ...credentialSecrets(f)]);
  });
});
