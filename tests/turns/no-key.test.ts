/**
 * The first hour without a key (issue 16 item 1, the gateway's part), with the real
 * Claude Code CLI: no key configured, or an upstream that cannot be reached, must end the
 * turn at once with one actionable message, not three minutes of silent retries (the CLI
 * retries 5xx and connection errors ten times with backoff).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createChat, sendTurn, startTestRuntime, type TestRuntime } from "./helpers.js";

let rt: TestRuntime | undefined;
afterEach(async () => {
  await rt?.close();
  rt = undefined;
});

/** Counts requests that reach the gateway (each one authenticates its chat token once). */
function countGatewayRequests(t: TestRuntime): () => number {
  let n = 0;
  const store = t.turns.store;
  const original = store.chatByTokenHash.bind(store);
  store.chatByTokenHash = (hash: string) => {
    n += 1;
    return original(hash);
  };
  return () => n;
}

describe("a turn that cannot reach a model fails at once, with a message that says why", { timeout: 240_000 }, () => {
  // Both runners (warm, the default, and cold), with the brain on as by default: Claude Code
  // waits for its MCP servers before its first request, so a turn that starts it only to
  // be refused took its whole start-up (measured: 4-5 s for a chat's first turn in local
  // mode, 0.7-1.3 s without the brain). Without a key the turn never starts Claude Code.
  for (const warm of [true, false]) {
    it(`no Anthropic key (${warm ? "warm" : "cold"} runner): fails before Claude Code starts, with one message naming what to export`, async () => {
      rt = await startTestRuntime({ mode: "local", noKey: true, turns: { warm: { enabled: warm } }, config: () => ({ brain: { enabled: true } }) });
      await createChat(rt, "nokey");
      const requests = countGatewayRequests(rt);
      const t = await rt.waitTurn("nokey", await sendTurn(rt, "nokey", "hello?"), 120_000);
      expect(t.status).toBe("failed");
      expect(t.error.code).toBe("not_configured");
      expect(t.error.message).toBe(
        "no Anthropic API key configured: export ANTHROPIC_API_KEY before `npm start` (or set turns.apiKeyFile), then restart the runtime.",
      );
      // No process was started for it: no request reached the gateway (or the upstream), no warm process.
      expect(requests()).toBe(0);
      expect(rt.fake.messageRequests()).toHaveLength(0);
      expect(rt.turns.warm?.list() ?? []).toEqual([]);
    });
  }

  it("no Anthropic key, a request reaching the gateway anyway: one 401 authentication error the CLI does not retry", async () => {
    rt = await startTestRuntime({ mode: "local", noKey: true, turns: { warm: { enabled: false } } });
    await createChat(rt, "nokey");
    const token = readFileSync(join(rt.dataDir, "chats/nokey/.claude/picortex-token"), "utf8").trim();
    const r = await fetch(rt.turns.gatewayUrl() + "/v1/messages", {
      method: "POST",
      headers: { "x-api-key": token, "content-type": "application/json" },
      body: JSON.stringify({ model: "m", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }),
    });
    expect(r.status).toBe(401);
    expect(r.headers.get("x-should-retry")).toBe("false");
    const body = await r.json();
    expect(body.error.type).toBe("authentication_error");
    expect(body.error.message).toMatch(/no Anthropic API key configured: export ANTHROPIC_API_KEY before `npm start`/);
  });

  it("a key file written after the start is used by the next turn (the check is per turn, not cached)", async () => {
    const keyDir = mkdtempSync(join(tmpdir(), "pc-late-key-"));
    const keyFile = join(keyDir, "key");
    try {
      rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: false }, apiKeyFile: keyFile } });
      await createChat(rt, "latekey");
      const t1 = await rt.waitTurn("latekey", await sendTurn(rt, "latekey", "before the key"), 120_000);
      expect(t1.status).toBe("failed");
      expect(t1.error.code).toBe("not_configured");
      expect(t1.error.message).toContain(`cannot read ${keyFile}`);
      writeFileSync(keyFile, "sk-ant-late\n", { mode: 0o600 });
      const t2 = await rt.waitTurn("latekey", await sendTurn(rt, "latekey", "after the key"), 120_000);
      expect(t2.status, JSON.stringify(t2)).toBe("done");
      expect(rt.fake.messageRequests().at(-1)!.headers["x-api-key"]).toBe("sk-ant-late");
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
  });

  it("an unreachable upstream: one clear error naming the upstream, not ten retries", async () => {
    rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: false }, upstreamBaseUrl: "http://127.0.0.1:1" } });
    await createChat(rt, "noup");
    const requests = countGatewayRequests(rt);
    const t = await rt.waitTurn("noup", await sendTurn(rt, "noup", "anyone there?"), 120_000);
    expect(t.status).toBe("failed");
    expect(t.error.message).toMatch(/cannot reach the upstream API at http:\/\/127\.0\.0\.1:1/);
    expect(requests()).toBeGreaterThanOrEqual(1);
    expect(requests()).toBeLessThanOrEqual(2);
  });

  it("a blackholed upstream (SYNs dropped): the gateway gives up after its connect timeout with the same clear error", async () => {
    // A listener whose accept queue is full: further SYNs are dropped, so connect() hangs
    // (what a firewalled or blackholed API address does), deterministically and locally.
    const blackhole = spawn("python3", ["-c", BLACKHOLE], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const port = await new Promise<number>((ok, fail) => {
        blackhole.stdout!.once("data", (c) => ok(Number(String(c).trim())));
        blackhole.once("error", fail);
      });
      rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: false }, upstreamBaseUrl: `http://127.0.0.1:${port}` } });
      await createChat(rt, "blackhole");
      const token = readFileSync(join(rt.dataDir, "chats/blackhole/.claude/picortex-token"), "utf8").trim();
      const r = await fetch(rt.turns.gatewayUrl() + "/v1/messages", {
        method: "POST",
        headers: { "x-api-key": token, "content-type": "application/json" },
        body: JSON.stringify({ model: "m", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }),
      });
      expect(r.status).toBe(400);
      expect(r.headers.get("x-should-retry")).toBe("false");
      expect((await r.json()).error.message).toMatch(new RegExp(`cannot reach the upstream API at http://127\\.0\\.0\\.1:${port} \\(no connection within 5 s\\)`));
    } finally {
      blackhole.kill("SIGKILL");
    }
  });
});

const BLACKHOLE = `
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
fill = []
for _ in range(4):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(s.getsockname())
    except BlockingIOError: pass
    fill.append(c)
print(s.getsockname()[1], flush=True)
time.sleep(300)
`;
