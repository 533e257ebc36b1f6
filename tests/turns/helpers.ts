import { execFileSync, spawn } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { renderChatUserHelper } from "../../templates/render-chat-user-helper.js";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadRuntimeConfig } from "../../agent-runtime/config/load.js";
import { startRuntime, type RunningRuntime } from "../../agent-runtime/server.js";
import { createLogger } from "../../agent-runtime/log.js";
import type { TurnsModule } from "../../agent-runtime/turns/module.js";
import { agentClaudeCommand, agentGatewayEnvironment } from "../../agent-runtime/host/agent-key.js";
import { startFakeAnthropicApi, type FakeAnthropicApi } from "../support/fake-anthropic-api.js";

export const REPO = resolve(import.meta.dirname, "../..");
export const CLAUDE = join(REPO, "node_modules/.bin/claude");
/** The real key the gateway swaps in; tests prove it never reaches a chat. */
export const REAL_KEY = "sk-ant-test-REALKEY-" + Math.random().toString(36).slice(2, 12);

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error("This test needs root (it creates real Linux users and uses real sudo); run it as root, as CI does.");
  if (!existsSync("/usr/bin/sudo")) throw new Error("This test needs sudo installed (/usr/bin/sudo).");
}

export interface TestRuntime {
  runtime: RunningRuntime;
  turns: TurnsModule;
  fake: FakeAnthropicApi;
  dataDir: string;
  url: string;
  token: string;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; json: any; text: string }>;
  waitTurn(chatId: string, turnId: string, timeoutMs?: number): Promise<any>;
  close(): Promise<void>;
}

export interface TestRuntimeOptions {
  mode: "host" | "local";
  turns?: Record<string, unknown>;
  chatsRoot?: string;
  fake?: FakeAnthropicApi;
  /** Start without any Anthropic key (no key file, no ANTHROPIC_API_KEY). */
  noKey?: boolean;
  /** Extra top-level config sections (e.g. bridges); `dataDir` is passed so files can live there. */
  config?: (dataDir: string) => Record<string, unknown>;
}

export async function startTestRuntime(o: TestRuntimeOptions): Promise<TestRuntime> {
  const dataDir = mkdtempSync(join(tmpdir(), "pc-turns-"));
  const keyFile = join(dataDir, "anthropic-api-key");
  writeFileSync(keyFile, REAL_KEY + "\n", { mode: 0o600 });
  const fake = o.fake ?? (await startFakeAnthropicApi());
  const config = loadRuntimeConfig({
    env: {},
    overrides: {
      mode: o.mode,
      dataDir,
      server: { hosts: ["127.0.0.1"], port: 0 },
      portal: { enabled: false },
      brain: { enabled: false },
      turns: {
        claudePath: CLAUDE,
        upstreamBaseUrl: fake.url,
        ...(o.noKey ? {} : { apiKeyFile: keyFile }),
        killGraceSeconds: 1,
        gatewayPort: 0,
        ...(o.chatsRoot ? { chatsRoot: o.chatsRoot } : {}),
        ...(o.turns ?? {}),
      },
      ...(o.config?.(dataDir) ?? {}),
    },
  });
  const lines: string[] = [];
  const debug = !!process.env.PC_TEST_DEBUG;
  const runtime = await startRuntime(config, createLogger("test", (l) => (debug ? process.stderr.write(l + "\n") : lines.push(l))));
  const turns = runtime.modules.find((m) => m.name === "turns") as TurnsModule;
  const url = runtime.urls[0]!;
  const token = runtime.apiToken;
  const call: TestRuntime["call"] = async (method, path, body, headers = {}) => {
    // One retry on ECONNRESET: undici may reuse a keep-alive socket the server is closing.
    const send = () => fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const res = await send().catch((err: Error & { cause?: { code?: string } }) => {
      if (err.cause?.code === "ECONNRESET") return send();
      throw err;
    });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text };
  };
  const waitTurn: TestRuntime["waitTurn"] = async (chatId, turnId, timeoutMs = 180_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const r = await call("GET", `/v1/chats/${chatId}/turns/${turnId}`);
      if (["done", "failed", "interrupted"].includes(r.json?.status)) return r.json;
      if (Date.now() > until) throw new Error(`turn ${turnId} still ${r.json?.status} after ${timeoutMs} ms\n${lines.slice(-20).join("\n")}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  return {
    runtime,
    turns,
    fake,
    dataDir,
    url,
    token,
    call,
    waitTurn,
    async close() {
      await runtime.close();
      if (!o.fake) await fake.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Host-mode fixtures: the chat group, a private chats root, and cleanup of pc-* users made here. */
export const TEST_SUDOERS = "/etc/sudoers.d/picortex-turns-test";

function removeChatUsers(ids: string[]): void {
  for (const id of ids) {
    try {
      execFileSync("pkill", ["-KILL", "-U", `pc-${id}`], { stdio: "ignore" });
    } catch {}
    try {
      execFileSync("userdel", ["--remove", `pc-${id}`], { stdio: "ignore" });
    } catch {}
  }
}

/** A fresh directory under /srv whose name passes the host path grammar (lowercase, no dots). */
function lowercaseScratchDir(prefix: string): string {
  const suffix = randomBytes(5).toString("hex").replace(/[0-9]/g, (d) => "abcdefghij"[Number(d)]!);
  const dir = `/srv/${prefix}-${suffix}`;
  mkdirSync(dir, { mode: 0o755 });
  return dir;
}

/**
 * `uids`: the chat uid range of this fixture's helper. Test files run in parallel and each
 * helper keeps its own allocation record, so two files need disjoint ranges.
 */
export function setupHostFixtures(ids: string[], uids: { min: number; max: number } = { min: 95000, max: 99999 }): { chatsRoot: string; claudePath: string; chatUserHelper: string; cleanup(ids: string[]): void } {
  requireRoot();
  removeChatUsers(ids); // leftovers of an interrupted earlier run
  try {
    execFileSync("getent", ["group", "picortex-chats"]);
  } catch {
    execFileSync("groupadd", ["--system", "picortex-chats"]);
  }
  const chatsRoot = lowercaseScratchDir("pc-turns-test");
  execFileSync("chmod", ["0755", chatsRoot]);
  // Chat users must be able to execute the CLI, as with /usr/local/bin/claude on a host.
  // The checkout's copy may sit under a directory they cannot enter (a clone in a 0700
  // mktemp dir), so the tests install their own, world-executable, copy.
  const binDir = mkdtempSync("/srv/pc-turns-bin-");
  execFileSync("chmod", ["0755", binDir]);
  const claudePath = join(binDir, "claude");
  copyFileSync(realpathSync(CLAUDE), claudePath);
  chmodSync(claudePath, 0o755);
  // What the Foundation's drop-in grants the claude path (CWD=*), for root here: sudo
  // refuses `-D` even to root without it. Name without dots or @includedir skips it.
  // One drop-in per fixture: test files run in parallel, and one's cleanup must not drop another's rule.
  const sudoers = `${TEST_SUDOERS}-${randomBytes(4).toString("hex")}`;
  writeFileSync(sudoers, `Defaults!${claudePath} runcwd=*\n`, { mode: 0o440 });
  execFileSync("visudo", ["-cf", sudoers]);
  // The root helper that creates and deletes chat users, rendered for this chats root.
  const helperDir = lowercaseScratchDir("pc-turns-helper");
  const chatUserHelper = join(helperDir, "picortex-chat-user");
  writeFileSync(chatUserHelper, renderChatUserHelper({ chatsRoot, chatGroup: "picortex-chats", stateDir: join(helperDir, "state"), uidMin: uids.min, uidMax: uids.max }), { mode: 0o755 });
  return {
    chatsRoot,
    claudePath,
    chatUserHelper,
    cleanup(ids) {
      removeChatUsers(ids);
      rmSync(chatsRoot, { recursive: true, force: true });
      rmSync(binDir, { recursive: true, force: true });
      rmSync(helperDir, { recursive: true, force: true });
      rmSync(sudoers, { force: true });
    },
  };
}

export async function createChat(rt: TestRuntime, id: string, extra: Record<string, unknown> = {}): Promise<any> {
  const r = await rt.call("POST", "/v1/chats", { id, ...extra });
  if (r.status !== 201) throw new Error(`creating chat ${id}: ${r.status} ${r.text}`);
  return r.json;
}

export async function sendTurn(rt: TestRuntime, chatId: string, text: string): Promise<string> {
  const r = await rt.call("POST", `/v1/chats/${chatId}/turns`, { text });
  if (r.status !== 202) throw new Error(`sending turn: ${r.status} ${r.text}`);
  return r.json.id as string;
}

/**
 * Runs `claude -p <prompt>` with the portal agent unit's argv and environment (host/agent-key.ts):
 * HOME, the credentials folder LoadCredential= leaves (agent-token and agent-brain-headers
 * carrying `token`) and the gateway URL, no key. While it runs, every process's argv is
 * scanned for the token (the helpers' `cat`s included).
 */
export async function runAgentClaude(gatewayPort: number, token: string, prompt: string): Promise<{ code: number | null; stdout: string; output: string; leaks: string[] }> {
  const [, ...args] = agentClaudeCommand(CLAUDE, gatewayPort);
  if (args.join(" ").includes(token)) throw new Error("the agent's argv carries its token");
  const creds = mkdtempSync(join(tmpdir(), "pc-agent-creds-"));
  writeFileSync(join(creds, "agent-token"), token + "\n", { mode: 0o400 });
  writeFileSync(join(creds, "agent-brain-headers"), JSON.stringify({ Authorization: `Bearer ${token}` }) + "\n", { mode: 0o400 });
  const home = mkdtempSync(join(tmpdir(), "pc-agent-home-"));
  const [baseVar, baseUrl] = agentGatewayEnvironment(gatewayPort).split(/=(.*)/);
  const child = spawn(CLAUDE, [...args, "-p", prompt, "--output-format", "json"], {
    cwd: home,
    env: { PATH: process.env.PATH, HOME: home, CREDENTIALS_DIRECTORY: creds, [baseVar!]: baseUrl!, DISABLE_AUTOUPDATER: "1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let output = "";
  child.stdout.on("data", (c) => ((stdout += c), (output += c)));
  child.stderr.on("data", (c) => (output += c));
  const leaks: string[] = [];
  const scan = setInterval(() => {
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(token)) leaks.push(pid);
      } catch {}
    }
  }, 20);
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  clearInterval(scan);
  rmSync(home, { recursive: true, force: true });
  rmSync(creds, { recursive: true, force: true });
  return { code, stdout, output, leaks };
}
