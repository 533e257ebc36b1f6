/**
 * Cross-principal attacks on the runtime's credentials (issue 13 item 6): a chat's agent
 * on the same loopback as the operator sends bad tokens of every kind, from sources
 * rotated over 127.0.0.0/8. It must be limited (429) for every token kind, and must never
 * lock out another principal's valid credential.
 */
import { request } from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRuntimeConfig } from "../../agent-runtime/config/load.js";
import { startRuntime, type RunningRuntime } from "../../agent-runtime/server.js";
import { createLogger } from "../../agent-runtime/log.js";
import type { TurnsModule } from "../../agent-runtime/turns/module.js";
import { startFakeAnthropicApi, type FakeAnthropicApi } from "../support/fake-anthropic-api.js";

const CLAUDE = resolve(import.meta.dirname, "../../node_modules/.bin/claude");

/** A raw request from a chosen loopback source address. */
function send(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; from?: string },
): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((resolvePromise, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method ?? "GET", headers: opts.headers, localAddress: opts.from, agent: false },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolvePromise({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** 127.a.b.c, a different source for every call. */
let n = 1;
const rotated = () => {
  n += 1;
  return `127.${(n >> 16) & 255}.${(n >> 8) & 255}.${(n & 255) || 1}`;
};

describe("one principal cannot lock out another; every token kind is limited", { timeout: 120_000 }, () => {
  let runtime: RunningRuntime;
  let fake: FakeAnthropicApi;
  let dataDir: string;
  let api: string;
  let gateway: string;
  let chatToken: string;
  let brainToken: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "pc-principals-"));
    fake = await startFakeAnthropicApi();
    writeFileSync(join(dataDir, "key"), "sk-ant-test-principals\n", { mode: 0o600 });
    const config = loadRuntimeConfig({
      env: {},
      overrides: {
        mode: "local",
        dataDir,
        server: { hosts: ["127.0.0.1"], port: 0 },
        portal: { enabled: false },
        turns: { claudePath: CLAUDE, upstreamBaseUrl: fake.url, apiKeyFile: join(dataDir, "key"), warm: { enabled: false } },
      },
    });
    runtime = await startRuntime(config, createLogger("test", () => {}));
    api = runtime.urls[0]!;
    gateway = (runtime.modules.find((m) => m.name === "turns") as TurnsModule).gatewayUrl();
    const auth = { authorization: `Bearer ${runtime.apiToken}`, "content-type": "application/json" };
    expect((await send(`${api}/v1/chats`, { method: "POST", headers: auth, body: JSON.stringify({ id: "victim" }) })).status).toBe(201);
    chatToken = readFileSync(join(dataDir, "chats/victim/.claude/picortex-token"), "utf8").trim();
    const issued = await send(`${api}/v1/brain/tokens`, { method: "POST", headers: auth, body: JSON.stringify({ workspaceId: "ws1" }) });
    brainToken = JSON.parse(issued.text).token;
  });
  afterAll(async () => {
    await runtime?.close();
    await fake?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("chats reach the gateway on its own loopback listener; the API listener does not serve it", async () => {
    expect(new URL(gateway).port).not.toBe(new URL(api).port);
    expect(new URL(gateway).hostname).toBe("127.0.0.1");
    expect((await send(`${api}/gateway/v1/messages`, { method: "POST", headers: { "x-api-key": chatToken }, body: "{}" })).status).toBe(404);
    expect((await send(`${gateway.replace(/\/gateway$/, "")}/v1/chats`, { headers: { authorization: `Bearer ${runtime.apiToken}` } })).status).toBe(404);
    const settings = JSON.parse(readFileSync(join(dataDir, "chats/victim/.claude/settings.json"), "utf8"));
    expect(settings.env.ANTHROPIC_BASE_URL).toBe(gateway);
  });

  it("bad API tokens from rotated 127.x sources are limited, and the operator's token still works", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      statuses.push((await send(`${api}/v1/chats`, { headers: { authorization: "Bearer pct_chat-guessing-0000" }, from: rotated() })).status);
    }
    // Rotating the source over 127.0.0.0/8 does not escape the limit.
    expect(statuses.slice(0, 30).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(30).every((s) => s === 429)).toBe(true);
    expect((await send(`${api}/v1/chats`, { headers: { authorization: "Bearer pct_chat-guessing-0001" }, from: rotated() })).status).toBe(429);
    // The operator, on the same loopback, is not locked out.
    expect((await send(`${api}/v1/chats`, { headers: { authorization: `Bearer ${runtime.apiToken}` }, from: rotated() })).status).toBe(200);
    expect((await send(`${api}/v1/chats`, { headers: { authorization: `Bearer ${runtime.apiToken}` } })).status).toBe(200);
  });

  it("bad gateway tokens are limited; the chat's valid token is not refused", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      statuses.push((await send(`${gateway}/v1/messages`, { method: "POST", headers: { "x-api-key": `pcc_guess-${i}` }, body: "{}", from: rotated() })).status);
    }
    expect(statuses).toContain(401);
    expect(statuses[statuses.length - 1]).toBe(429);
    const ok = await send(`${gateway}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": chatToken, "content-type": "application/json" },
      body: JSON.stringify({ model: "m", max_tokens: 10, stream: true, messages: [{ role: "user", content: "hi" }] }),
      from: rotated(),
    });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain("message_stop");
  });

  it("bad brain tokens are limited; a valid brain token is not refused", async () => {
    const pull = (token: string) =>
      send(`${api}/v1/brain/pull`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ cursor: 0 }), from: rotated() });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await pull(`pcb_guess-${i}`)).status);
    expect(statuses).toContain(401);
    expect(statuses[statuses.length - 1]).toBe(429);
    expect((await pull(brainToken)).status).toBe(200);
  });
});
