/**
 * The first hour without a key (issue 16 item 1, the gateway's part), with the real
 * Claude Code CLI: no key configured, or an upstream that cannot be reached, must end the
 * turn at once with one actionable message, not three minutes of silent retries (the CLI
 * retries 5xx and connection errors ten times with backoff).
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
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
  // Both runners: warm (the default) and cold. The gateway's 401 authentication_error with
  // x-should-retry: false is the one request the turn makes; what time the turn takes is
  // Claude Code's own start-up (measured here: about 0.7 s cold, 1.3 s warm, on 2 busy cores).
  for (const warm of [true, false]) {
    it(`no Anthropic key (${warm ? "warm" : "cold"} runner): one request, one authentication error the CLI does not retry, naming what to export`, async () => {
      rt = await startTestRuntime({ mode: "local", noKey: true, turns: { warm: { enabled: warm } } });
      await createChat(rt, "nokey");
      const requests = countGatewayRequests(rt);
      const t = await rt.waitTurn("nokey", await sendTurn(rt, "nokey", "hello?"), 120_000);
      expect(t.status).toBe("failed");
      expect(t.runner).toBe(warm ? "warm" : "cold");
      expect(t.error.message).toMatch(/no Anthropic API key configured: export ANTHROPIC_API_KEY before `npm start`/);
      // Said once, not once per retry or per output channel.
      expect(t.error.message.split("no Anthropic API key configured")).toHaveLength(2);
      // The CLI's result subtype for an API error is "success": it must not reach the user.
      expect(t.error.message).not.toMatch(/\(success/);
      // Not retried, not re-authenticated: exactly one request reached the gateway, none the upstream.
      expect(requests()).toBe(1);
      expect(rt.fake.messageRequests()).toHaveLength(0);
    });
  }

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
