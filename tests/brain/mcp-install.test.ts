/**
 * Issue 16 item 8: the brain wired into the agents.
 * - `picortex brain mcp install` registers the server with the REAL `claude mcp add`, by
 *   absolute path, and Claude Code connects to it from a folder outside the clone (where
 *   `npx picortex` would look the name up in the npm registry).
 * - Every local-mode chat's Claude config carries the brain server (one shared store),
 *   and its tools are allowed by default.
 * - The README's record/recall example finds the entry it records.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LocalChatHost } from "../../agent-runtime/turns/host/local-chat-host.js";
import { chatBrainMcp } from "../../agent-runtime/cli/brain-mcp.js";
import { DEFAULT_ALLOWED_TOOLS } from "../../agent-runtime/config/turns.js";

const REPO = resolve(import.meta.dirname, "../..");
const CLAUDE = join(REPO, "node_modules/.bin/claude");
const BIN = join(REPO, "agent-runtime/bin/picortex.mjs");
const work = mkdtempSync(join(tmpdir(), "pcx-mcp-install-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(argv: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, env: opts.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (status) => done({ status, stdout, stderr }));
    child.stdin.end();
  });
}
const quiet = { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1", DISABLE_AUTOUPDATER: "1" };

describe("brain MCP registration", () => {
  it("`brain mcp install` registers an absolute command that Claude Code connects to from any folder", async () => {
    const home = join(work, "home");
    const elsewhere = join(work, "elsewhere");
    mkdirSync(home, { recursive: true });
    mkdirSync(elsewhere, { recursive: true });
    const env = { PATH: "/usr/bin:/bin", HOME: home, ...quiet };
    const r = await run([process.execPath, BIN, "brain", "mcp", "install", "--scope", "user", "--claude", CLAUDE, "--json"], { cwd: elsewhere, env });
    expect(r.status, r.stderr).toBe(0);
    const server = JSON.parse(readFileSync(join(home, ".claude.json"), "utf8")).mcpServers.brain;
    expect(isAbsolute(server.command)).toBe(true);
    expect(server.command).not.toMatch(/npx/);
    expect(server.args.slice(-2)).toEqual(["brain", "mcp"]);
    expect(isAbsolute(server.args[0])).toBe(true);
    expect(existsSync(server.args[0])).toBe(true);
    const list = await run([CLAUDE, "mcp", "list"], { cwd: elsewhere, env });
    expect(list.stdout, list.stderr).toMatch(/brain: .*Connected/);
  }, 120_000);

  it("refuses a bad --scope with exit 2", async () => {
    const r = await run([process.execPath, BIN, "brain", "mcp", "install", "--scope", "everyone", "--print"], { cwd: work, env: { PATH: "/usr/bin:/bin", HOME: work } });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--scope must be user, local or project");
  });

  it("every local-mode chat gets the brain server in its Claude config, one shared store, tools allowed", async () => {
    const dataDir = join(work, "data");
    const host = new LocalChatHost(CLAUDE, join(dataDir, "chats"), chatBrainMcp(dataDir));
    await host.provision("alpha", { token: "pct_chat_token_for_test_000000000000", gatewayUrl: "http://127.0.0.1:1/gw" }, () => {});
    await host.provision("beta", { token: "pct_chat_token_for_test_111111111111", gatewayUrl: "http://127.0.0.1:1/gw" }, () => {});
    const cfg = (id: string) => JSON.parse(readFileSync(join(dataDir, "chats", id, ".claude", ".claude.json"), "utf8")).mcpServers.brain;
    expect(cfg("alpha").env.PICORTEX_BRAIN_DB).toBe(join(dataDir, "brain.sqlite"));
    expect(cfg("beta").env.PICORTEX_BRAIN_DB).toBe(cfg("alpha").env.PICORTEX_BRAIN_DB);
    expect(cfg("alpha").env.PICORTEX_AGENT).toBe("chat-alpha");
    expect(DEFAULT_ALLOWED_TOOLS).toContain("mcp__brain");
    // The chat's own claude, with its environment, connects to the server.
    const spec = host.spawnSpec("alpha");
    const list = await run([CLAUDE, "mcp", "list"], { cwd: spec.cwd, env: { ...spec.env, ...quiet } });
    expect(list.stdout, list.stderr).toMatch(/brain: .*Connected/);
  }, 120_000);
});

describe("the README's brain example", () => {
  it("recalls the entry it records, run exactly as written", async () => {
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    const record = /^npx picortex (brain record .*?)\s*(#.*)?$/m.exec(readme)?.[1];
    const recall = /^npx picortex (brain recall .*?)\s*(#.*)?$/m.exec(readme)?.[1];
    expect(record, "README shows `npx picortex brain record …`").toBeDefined();
    expect(recall, "README shows `npx picortex brain recall …`").toBeDefined();
    const words = (line: string) => [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
    const env = { PATH: "/usr/bin:/bin", HOME: work, PICORTEX_BRAIN_DB: join(work, "readme-brain.sqlite") };
    const rec = await run([process.execPath, BIN, ...words(record!)], { cwd: work, env });
    expect(rec.status, rec.stderr).toBe(0);
    const title = /--title "([^"]+)"/.exec(record!)![1]!;
    const got = await run([process.execPath, BIN, ...words(recall!)], { cwd: work, env });
    expect(got.status, got.stderr).toBe(0);
    expect(got.stdout).toContain(title);
  }, 120_000);
});

describe("the portal session's Claude Code gets the brain", () => {
  it("starts claude with --mcp-config naming the shared store, and the real CLI offers the brain tools to the model", async () => {
    const { portalCommandWithBrain } = await import("../../agent-runtime/cli/brain-mcp.js");
    const { startFakeAnthropicApi } = await import("../support/fake-anthropic-api.js");
    const dataDir = join(work, "portal-data");
    mkdirSync(dataDir, { recursive: true });
    const command = portalCommandWithBrain(["claude"], dataDir);
    expect(command.slice(0, 2)).toEqual(["claude", "--mcp-config"]);
    expect(JSON.parse(readFileSync(command[2]!, "utf8")).mcpServers.brain.env.PICORTEX_BRAIN_DB).toBe(join(dataDir, "brain.sqlite"));
    expect(portalCommandWithBrain(["sh"], dataDir)).toEqual(["sh"]); // not Claude Code: left alone
    expect(portalCommandWithBrain(["claude", "--mcp-config", "/x.json"], dataDir)).toEqual(["claude", "--mcp-config", "/x.json"]);

    const api = await startFakeAnthropicApi();
    try {
      const home = join(work, "portal-home");
      mkdirSync(home, { recursive: true });
      const r = await run([CLAUDE, "-p", "--output-format", "json", ...command.slice(1), "--", "hello brain"], {
        // Blocking MCP connect, so the first request already lists the tools (no timing in the test).
        cwd: home,
        env: { PATH: "/usr/bin:/bin", HOME: home, ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: "sk-ant-fake", ...quiet, MCP_CONNECTION_NONBLOCKING: "false" },
      });
      expect(r.status, r.stderr + r.stdout).toBe(0);
      const tools = api.messageRequests().flatMap((q) => ((q.body as { tools?: { name: string }[] }).tools ?? []).map((t) => t.name));
      expect(tools.some((t) => t.startsWith("mcp__brain__")), tools.join(",")).toBe(true);
    } finally {
      await api.close();
    }
  }, 120_000);
});
