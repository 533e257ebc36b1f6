/**
 * Attacks on the key gateway's budget accounting and memory (attacker review of the
 * gateway): a client that hangs up before the final usage report (streamed and not),
 * a body with max_tokens twice, and oversized / too many parallel request bodies. Each
 * test talks raw HTTP to the gateway's own listener with a chat's token, in front of a
 * scripted upstream that answers like the real API.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_IN_FLIGHT_PER_CHAT, MAX_REQUEST_BYTES, startGatewayServer, type GatewayServer } from "../../agent-runtime/turns/http/gateway.js";
import { hashToken } from "../../agent-runtime/http/auth.js";
import type { TurnStore } from "../../agent-runtime/turns/store.js";
import type { Logger } from "../../agent-runtime/log.js";

const TOKEN = "chat-token-attack-aaaaaaaaaaaaaaaa";

interface FakeChat {
  id: string;
  tokenHash: string;
  budgetTokens: number | null;
  usedInputTokens: number;
  usedOutputTokens: number;
}

function fakeStore(budget: number | null): { store: TurnStore; chat: FakeChat } {
  const chat: FakeChat = { id: "a", tokenHash: hashToken(TOKEN), budgetTokens: budget, usedInputTokens: 0, usedOutputTokens: 0 };
  const store = {
    getChat: () => chat,
    chatByTokenHash: (h: string) => (h === chat.tokenHash ? chat : undefined),
    addUsage: (_id: string, i: number, o: number) => {
      chat.usedInputTokens += i;
      chat.usedOutputTokens += o;
    },
  } as unknown as TurnStore;
  return { store, chat };
}

const log = { warn() {}, error() {}, info() {}, debug() {} } as unknown as Logger;
const sse = (res: ServerResponse, ev: string, d: unknown) => res.write(`event: ${ev}\ndata: ${JSON.stringify(d)}\n\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let upstream: Server | undefined;
let gw: GatewayServer | undefined;
afterEach(async () => {
  await gw?.close();
  upstream?.closeAllConnections();
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
  gw = undefined;
  upstream = undefined;
});

async function setup(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>, budget: number | null = 100_000) {
  upstream = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    await handler(req, res, Buffer.concat(chunks).toString("utf8"));
  });
  await new Promise<void>((r) => upstream!.listen(0, "127.0.0.1", () => r()));
  const port = (upstream.address() as { port: number }).port;
  const { store, chat } = fakeStore(budget);
  gw = await startGatewayServer({ store, upstreamBaseUrl: `http://127.0.0.1:${port}`, realKey: () => "real-key", log }, 0);
  return { chat, gw };
}

/** Sends a request by hand and hangs up once `done(seen)` says so. */
function hangUpWhen(port: number, body: string, done: (seen: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () =>
      s.write(
        `POST /gateway/v1/messages HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nx-api-key: ${TOKEN}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      ),
    );
    let seen = "";
    s.on("data", (c) => {
      seen += c.toString("utf8");
      if (done(seen)) {
        s.destroy();
        resolve(seen);
      }
    });
    s.on("error", reject);
    s.on("close", () => resolve(seen));
  });
}

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("gateway attacks", { timeout: 60_000 }, () => {
  it("a streamed answer cut before message_delta is charged its streamed text, not message_start's output 1", async () => {
    let finished = false;
    const { chat, gw } = await setup(async (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      sse(res, "message_start", { type: "message_start", message: { usage: { input_tokens: 10, output_tokens: 1 } } });
      for (let i = 0; i < 50; i++) sse(res, "content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "x".repeat(400) } });
      sse(res, "content_block_stop", { type: "content_block_stop", index: 0 });
      await sleep(300);
      sse(res, "message_delta", { type: "message_delta", usage: { output_tokens: 5000 } });
      sse(res, "message_stop", { type: "message_stop" });
      res.end();
      finished = true;
    });
    const body = JSON.stringify({ model: "m", max_tokens: 8000, stream: true, messages: [{ role: "user", content: "hi" }] });
    const seen = await hangUpWhen(gw.port, body, (s) => s.includes("content_block_stop"));
    expect(seen).toContain("x".repeat(400));
    await waitFor(() => finished, "the upstream to finish");
    await sleep(100);
    // 20 000 characters relayed: about 5 000 tokens (the upstream's real count), never 1.
    expect(chat.usedOutputTokens).toBeGreaterThanOrEqual(5000);
    expect(chat.usedInputTokens).toBeGreaterThanOrEqual(10);
  });

  it("a complete stream is charged exactly its reported usage", async () => {
    const { chat, gw } = await setup(async (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      sse(res, "message_start", { type: "message_start", message: { usage: { input_tokens: 10, output_tokens: 1 } } });
      sse(res, "content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "x".repeat(4000) } });
      sse(res, "message_delta", { type: "message_delta", usage: { output_tokens: 42 } });
      sse(res, "message_stop", { type: "message_stop" });
      res.end();
    });
    const r = await fetch(gw.url + "/v1/messages", {
      method: "POST",
      headers: { "x-api-key": TOKEN, "content-type": "application/json" },
      body: JSON.stringify({ model: "m", max_tokens: 100, stream: true, messages: [{ role: "user", content: "hi" }] }),
    });
    await r.text();
    await waitFor(() => chat.usedOutputTokens > 0, "usage");
    await sleep(50);
    expect([chat.usedInputTokens, chat.usedOutputTokens]).toEqual([10, 42]);
  });

  it("a non-streamed answer cut before its usage (at the end of the JSON) is charged the bytes relayed, not 0", async () => {
    let finished = false;
    const { chat, gw } = await setup(async (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(`{"type":"message","content":[{"type":"text","text":"${"y".repeat(30_000)}"}],`);
      await sleep(300);
      res.end(`"usage":{"input_tokens":10,"output_tokens":7500}}`);
      finished = true;
    });
    const body = JSON.stringify({ model: "m", max_tokens: 8000, messages: [{ role: "user", content: "hi" }] });
    await hangUpWhen(gw.port, body, (s) => (s.match(/y/g) ?? []).length >= 30_000);
    await waitFor(() => finished, "the upstream to finish");
    await sleep(100);
    expect(chat.usedOutputTokens).toBeGreaterThanOrEqual(7500);
  });

  it("forwards the parsed body, so a second max_tokens key cannot reserve 1 and generate 100000", async () => {
    const seen: string[] = [];
    const { gw } = await setup((_req, res, body) => {
      seen.push(body);
      const out = JSON.stringify({ type: "message", content: [], usage: { input_tokens: 1, output_tokens: 1 } });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out) });
      res.end(out);
    });
    const raw = `{"max_tokens":100000,"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1}`;
    const r = await fetch(gw.url + "/v1/messages", { method: "POST", headers: { "x-api-key": TOKEN, "content-type": "application/json" }, body: raw });
    expect(r.status).toBe(200);
    await r.text();
    expect(seen).toHaveLength(1);
    // Exactly one max_tokens key reaches the upstream, and it is the one that was reserved.
    expect(seen[0]?.match(/"max_tokens"/g)).toHaveLength(1);
    expect(JSON.parse(seen[0] ?? "{}").max_tokens).toBe(1);
  });

  it("refuses a body over the gateway's cap (8 MB) with 413 and a clear message, without forwarding it", async () => {
    expect(MAX_REQUEST_BYTES).toBeLessThanOrEqual(8 * 1024 * 1024);
    let forwarded = 0;
    const { gw } = await setup((_req, res) => {
      forwarded++;
      res.writeHead(500);
      res.end();
    });
    const big = JSON.stringify({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "z".repeat(MAX_REQUEST_BYTES) }] });
    const r = await fetch(gw.url + "/v1/messages", { method: "POST", headers: { "x-api-key": TOKEN, "content-type": "application/json" }, body: big });
    expect(r.status).toBe(413);
    expect(await r.text()).toMatch(/exceeds 8 MB/);
    expect(forwarded).toBe(0);
  });

  it("holds at most MAX_IN_FLIGHT_PER_CHAT requests of one chat; the next is refused with 429 until one ends", async () => {
    const held: ServerResponse[] = [];
    const { gw } = await setup((_req, res) => {
      held.push(res); // the upstream holds every answer: the requests stay in flight
    }, null);
    const body = JSON.stringify({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "hi" }] });
    const send = () => fetch(gw.url + "/v1/messages", { method: "POST", headers: { "x-api-key": TOKEN, "content-type": "application/json" }, body });
    const first = Array.from({ length: MAX_IN_FLIGHT_PER_CHAT }, () => send());
    await waitFor(() => held.length === MAX_IN_FLIGHT_PER_CHAT, "the first requests to reach the upstream");
    const over = await send();
    expect(over.status).toBe(429);
    expect(await over.text()).toMatch(/requests in flight/);
    expect(held).toHaveLength(MAX_IN_FLIGHT_PER_CHAT);
    // One ends: a new request is let through.
    const done = JSON.stringify({ type: "message", content: [], usage: { input_tokens: 1, output_tokens: 1 } });
    held[0]!.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(done) });
    held[0]!.end(done);
    const r0 = await first[0]!;
    expect(r0.status).toBe(200);
    await r0.text();
    const again = send();
    await waitFor(() => held.length === MAX_IN_FLIGHT_PER_CHAT + 1, "the next request to be forwarded");
    for (const res of held.slice(1)) {
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(done) });
      res.end(done);
    }
    for (const p of [...first.slice(1), again]) expect((await p).status).toBe(200);
  });

  it("drops a client that trickles its body instead of holding it (and its buffer) for Node's default 300 s", async () => {
    let forwarded = 0;
    upstream = createServer((_req, res) => {
      forwarded++;
      res.end();
    });
    await new Promise<void>((r) => upstream!.listen(0, "127.0.0.1", () => r()));
    const { store } = fakeStore(null);
    const port = (upstream.address() as { port: number }).port;
    gw = await startGatewayServer({ store, upstreamBaseUrl: `http://127.0.0.1:${port}`, realKey: () => "real-key", log, requestTimeoutMs: 1_500, headersTimeoutMs: 1_000 }, 0);
    const body = JSON.stringify({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "hi" }] });
    const p = gw.port;
    const answer = await new Promise<string>((resolve) => {
      const s = connect(p, "127.0.0.1", () =>
        s.write(`POST /gateway/v1/messages HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nx-api-key: ${TOKEN}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, -1)}`),
      );
      // Never sends the last byte; trickles nothing else. The gateway must end the connection.
      let seen = "";
      s.on("data", (c) => (seen += c.toString("utf8")));
      s.on("error", () => resolve(seen));
      s.on("close", () => resolve(seen));
    });
    expect(answer === "" || answer.startsWith("HTTP/1.1 408")).toBe(true);
    expect(forwarded).toBe(0);
  });
});
