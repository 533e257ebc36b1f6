/**
 * Issue 16 items 2 and 3: `chat send` never prints an empty reply, `chat show` says a turn
 * failed, and progress shows on a terminal only. The runtime is a scripted fake that
 * produces the exact races (text streamed before the client subscribed), so every run
 * hits them; the CLI is the real one, in a pipe and in a real pty.
 */
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as pty from "node-pty";

const REPO = resolve(import.meta.dirname, "../..");
const CLI = join(REPO, "agent-runtime/cli/picortex.ts");
const TSX = join(REPO, "node_modules/tsx/dist/esm/index.mjs");
const env = { PATH: process.env.PATH!, HOME: "/nonexistent", PICORTEX_API_TOKEN: "pct_fake_token_for_tests_0123456789" };

type Script = { event: string; data: unknown; delayMs?: number }[];
const scripts: Record<string, Script> = {
  // The turn ran and streamed "hello " before the client subscribed: the stream starts mid-turn.
  late: [
    { event: "status", data: { type: "status", status: "running" } },
    { event: "text", data: { type: "text", text: "world" } },
    { event: "turn", data: { id: "t-late", status: "done", reply: "hello world" } },
  ],
  // The turn had finished before the client subscribed: only the final event.
  finished: [{ event: "turn", data: { id: "t-finished", status: "done", reply: "all of it" } }],
  // Subscribed while queued: streamed live, then progress for a while on a terminal.
  slow: [
    { event: "status", data: { type: "status", status: "queued" } },
    { event: "status", data: { type: "status", status: "running", attempt: 1 }, delayMs: 700 },
    { event: "text", data: { type: "text", text: "slow " }, delayMs: 700 },
    { event: "text", data: { type: "text", text: "reply" } },
    { event: "turn", data: { id: "t-slow", status: "done", reply: "slow reply" } },
  ],
};

let server: Server;
let url = "";
beforeAll(async () => {
  server = createServer((req, res) => {
    const u = new URL(req.url!, "http://x");
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const m = /^\/v1\/chats\/([a-z-]+)\/turns$/.exec(u.pathname);
    if (req.method === "POST" && m) return json(202, { id: `t-${m[1]}`, status: "queued", eventsPath: `/v1/chats/${m[1]}/turns/t-${m[1]}/events` });
    const e = /^\/v1\/chats\/([a-z-]+)\/turns\/[^/]+\/events$/.exec(u.pathname);
    if (e) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      void (async () => {
        for (const step of scripts[e[1]!]!) {
          if (step.delayMs) await new Promise((r) => setTimeout(r, step.delayMs));
          res.write(`event: ${step.event}\ndata: ${JSON.stringify(step.data)}\n\n`);
        }
        res.end();
      })();
      return;
    }
    if (req.method === "POST" && u.pathname === "/v1/chats") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const ready = { id: "nokey", status: "ready", isolation: "local", warnings: ["turns cannot run: no Anthropic key is configured (export ANTHROPIC_API_KEY and restart npm start)"] };
      res.end(`event: progress\ndata: ${JSON.stringify({ step: "user", progress: 1, message: "done" })}\n\nevent: ready\ndata: ${JSON.stringify(ready)}\n\n`);
      return;
    }
    if (u.pathname === "/v1/chats/broken") return json(200, { id: "broken", status: "ready", isolation: "local", usage: { inputTokens: 0, outputTokens: 0 } });
    if (u.pathname === "/v1/chats/broken/messages")
      return json(200, { messages: [{ turnId: "t1", role: "user", sender: null, text: "hello?" }] });
    if (u.pathname === "/v1/chats/broken/turns")
      return json(200, { turns: [{ id: "t1", status: "failed", reply: null, error: { code: "upstream", message: "no Anthropic key is configured" } }] });
    json(404, { error: { code: "not_found", message: u.pathname } });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => server?.close());

function run(args: string[]) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
    const child = spawn(process.execPath, ["--import", TSX, CLI, "chat", "--url", url, ...args], { cwd: REPO, env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (status) => done({ status, stdout, stderr }));
    child.stdin.end();
  });
}

describe("chat send output", () => {
  it("prints the whole reply when text streamed before the client subscribed", async () => {
    const r = await run(["send", "late", "hi"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe("hello world\n");
  });

  it("prints the reply of a turn that finished before the client subscribed", async () => {
    const r = await run(["send", "finished", "hi"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe("all of it\n");
  });

  it("piped: the reply alone on stdout, nothing on stderr; --json: one document", async () => {
    const r = await run(["send", "slow", "hi"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe("slow reply\n");
    expect(r.stderr).toBe("");
    const j = await run(["send", "slow", "hi", "--json"]);
    expect(j.stderr).toBe("");
    expect(JSON.parse(j.stdout)).toMatchObject({ status: "done", reply: "slow reply" });
  });

  it("on a terminal, shows that the turn is queued, then running, then the reply", async () => {
    const term = pty.spawn(process.execPath, ["--import", TSX, CLI, "chat", "--url", url, "send", "slow", "hi"], { cwd: REPO, env, cols: 100, rows: 10 });
    let output = "";
    term.onData((d) => (output += d));
    const code = await new Promise<number>((r) => term.onExit((e) => r(e.exitCode)));
    expect(code, output).toBe(0);
    expect(output).toContain("queued");
    expect(output).toContain("running");
    expect(output).toContain("slow reply");
  });
});

describe("chat create", () => {
  it("warns when the runtime reports that turns cannot run (e.g. no key configured)", async () => {
    const r = await run(["create", "nokey"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("warning: turns cannot run: no Anthropic key is configured");
  });
});

describe("chat show", () => {
  it("shows a failed turn as failed, with its reason", async () => {
    const r = await run(["show", "broken"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("> you: hello?");
    expect(r.stdout).toMatch(/turn failed: no Anthropic key is configured/);
  });
});
