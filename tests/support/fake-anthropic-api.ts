/**
 * The project's fake Anthropic Messages API: enough of the real wire format for the
 * real Claude Code CLI (and the runtime's key gateway) to hold a conversation over
 * loopback. Replies stream as SSE exactly like the real API (message_start,
 * content_block_start, content_block_delta/text_delta, content_block_stop,
 * message_delta with usage, message_stop).
 *
 *   const api = await startFakeAnthropicApi();
 *   api.enqueue({ delayMs: 500 });            // next /v1/messages reply is slow
 *   api.enqueue({ error: { status: 529 } });  // then one overloaded error
 *   api.enqueue({ hang: true });              // then one that never answers
 *   ... ANTHROPIC_BASE_URL=api.url ...
 *   api.requests                              // every request, parsed
 *   await api.close();
 *
 * The default reply is `reply #<n>: <last user text>`, so a test can tell which
 * request answered which turn, and `messageCount` in the request log shows whether
 * the earlier conversation was carried.
 */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from "node:http";
import type { Socket } from "node:net";

export interface FakeReplyScript {
  /** Wait this long before the first byte of the reply. */
  delayMs?: number;
  /** Answer with this HTTP error instead of a reply (Anthropic error JSON body). */
  error?: { status: number; type?: string; message?: string };
  /** Accept the request and never answer (until close). */
  hang?: boolean;
  /** Hold the reply until this settles (a test decides when the upstream answers). */
  gate?: Promise<unknown>;
  /** Reply text instead of the default echo. */
  text?: string;
  /** Split the text into this many text_delta events (default 3). */
  chunks?: number;
  /** Stream up to and including message_delta (with its usage), then hold the stream open without message_stop. */
  holdAfterDelta?: boolean;
  /**
   * Report at most the request's max_tokens as output (the real API never exceeds it).
   * Off by default: the reply text is not truncated, and the warm-process tests were
   * written against the uncapped usage.
   */
  honourMaxTokens?: boolean;
  /**
   * Answer with a call of this tool (a tool_use block, stop_reason "tool_use") instead of
   * text: the CLI runs the tool and sends its result in the next request (see toolResults).
   */
  toolUse?: { name: string; input: Record<string, unknown> };
  /**
   * Apply only to a request whose last user text is exactly this prompt; other requests pass it
   * by (the CLI's own side requests, e.g. a session title, quote the prompt inside their text).
   */
  forText?: string;
}

export interface FakeRequest {
  method: string;
  path: string;
  /** Lower-cased request headers (the key headers are kept so tests can prove the swap). */
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  /** For /v1/messages: how many messages the conversation carried. */
  messageCount?: number;
  /** For /v1/messages: the text of the last user message. */
  lastUserText?: string;
  /** Every user text in the conversation, in order. */
  userTexts?: string[];
  /** The text of every tool_result block in the conversation, in order (with is_error). */
  toolResults?: Array<{ text: string; isError: boolean }>;
  /** Names of the tools the request offered the model. */
  toolNames?: string[];
  at: number;
}

export interface FakeAnthropicApi {
  url: string;
  port: number;
  requests: FakeRequest[];
  /** Only the requests that asked for a model reply (not count_tokens, not HEAD). */
  messageRequests(): FakeRequest[];
  /** Scripts the next /v1/messages replies, in order; unscripted replies use the default. */
  enqueue(...scripts: FakeReplyScript[]): void;
  /** Applies to every reply that has no queued script (e.g. a constant delay). */
  setDefault(script: FakeReplyScript): void;
  /** Usage reported per reply, so gateway tests can check accounting. */
  usage: { input_tokens: number; output_tokens: number };
  close(): Promise<void>;
}

export interface StartOptions {
  port?: number;
  host?: string;
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((b) => (b && typeof b === "object" && (b as { type?: string }).type === "text" ? String((b as { text?: unknown }).text ?? "") : ""))
      .join("");
  }
  return "";
}

/** The user-typed texts of a conversation (tool results and system reminders are skipped). */
function userTexts(body: unknown): string[] {
  const messages = (body as { messages?: Array<{ role?: string; content?: unknown }> })?.messages;
  if (!Array.isArray(messages)) return [];
  const out: string[] = [];
  for (const m of messages) {
    if (m.role !== "user") continue;
    const blocks = Array.isArray(m.content) ? m.content : [{ type: "text", text: m.content }];
    for (const b of blocks as Array<{ type?: string; text?: unknown }>) {
      if (b?.type !== "text") continue;
      const t = String(b.text ?? "");
      if (t.startsWith("<system-reminder>") || t.startsWith("<command-") || t.startsWith("<local-command")) continue;
      out.push(t);
    }
  }
  return out;
}

function toolResultsOf(body: unknown): Array<{ text: string; isError: boolean }> {
  const messages = (body as { messages?: Array<{ role?: string; content?: unknown }> })?.messages;
  if (!Array.isArray(messages)) return [];
  const out: Array<{ text: string; isError: boolean }> = [];
  for (const m of messages) {
    if (m.role !== "user" || !Array.isArray(m.content)) continue;
    for (const b of m.content as Array<{ type?: string; content?: unknown; is_error?: boolean }>) {
      if (b?.type === "tool_result") out.push({ text: textOf(b.content), isError: b.is_error === true });
    }
  }
  return out;
}

function sse(res: ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

export async function startFakeAnthropicApi(options: StartOptions = {}): Promise<FakeAnthropicApi> {
  const host = options.host ?? "127.0.0.1";
  const queue: FakeReplyScript[] = [];
  let fallback: FakeReplyScript = {};
  const requests: FakeRequest[] = [];
  const sockets = new Set<Socket>();
  const usage = { input_tokens: 11, output_tokens: 7 };
  let replies = 0;

  const readJson = async (req: IncomingMessage): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    const raw = Buffer.concat(chunks).toString("utf8");
    if (!raw) return undefined;
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  };

  const answerMessages = async (req: IncomingMessage, res: ServerResponse, body: unknown, record: FakeRequest) => {
    const texts = userTexts(body);
    record.userTexts = texts;
    record.lastUserText = texts[texts.length - 1] ?? "";
    // A script meant for one conversation waits for it (other requests pass it by).
    const at = queue.findIndex((s) => s.forText === undefined || (texts.at(-1) ?? "").trim() === s.forText);
    const script = (at >= 0 ? queue.splice(at, 1)[0] : undefined) ?? fallback;
    record.toolResults = toolResultsOf(body);
    record.toolNames = ((body as { tools?: Array<{ name?: string }> })?.tools ?? []).map((t) => String(t?.name));
    record.messageCount = Array.isArray((body as { messages?: unknown[] })?.messages) ? (body as { messages: unknown[] }).messages.length : 0;
    if (script.delayMs) await new Promise((r) => setTimeout(r, script.delayMs));
    if (script.gate) await script.gate;
    if (script.hang) return; // the socket stays open until the client gives up or close()
    if (script.error) {
      const status = script.error.status;
      const payload = JSON.stringify({
        type: "error",
        error: { type: script.error.type ?? (status === 529 ? "overloaded_error" : "api_error"), message: script.error.message ?? `fake error ${status}` },
      });
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
      res.end(payload);
      return;
    }
    replies += 1;
    const model = String((body as { model?: unknown })?.model ?? "claude-fake");
    if (script.toolUse) {
      answerToolUse(res, body, script.toolUse, `msg_fake_${replies}`, model);
      return;
    }
    const text = script.text ?? `reply #${replies}: ${record.lastUserText}`;
    const id = `msg_fake_${replies}`;
    const stream = (body as { stream?: unknown })?.stream === true;
    if (!stream) {
      const payload = JSON.stringify({
        id,
        type: "message",
        role: "assistant",
        model,
        content: [{ type: "text", text }],
        stop_reason: "end_turn",
        stop_sequence: null,
        usage,
      });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
      res.end(payload);
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    sse(res, "message_start", {
      type: "message_start",
      message: {
        id,
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: usage.input_tokens, output_tokens: 1 },
      },
    });
    sse(res, "content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
    const parts = Math.max(1, script.chunks ?? 3);
    const size = Math.ceil(text.length / parts) || 1;
    for (let i = 0; i < text.length; i += size) {
      sse(res, "content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: text.slice(i, i + size) } });
    }
    sse(res, "content_block_stop", { type: "content_block_stop", index: 0 });
    // With honourMaxTokens, like the real API, reported output never exceeds the request's max_tokens.
    const maxTokens = (body as { max_tokens?: unknown })?.max_tokens;
    const outputTokens = script.honourMaxTokens && typeof maxTokens === "number" ? Math.min(usage.output_tokens, maxTokens) : usage.output_tokens;
    sse(res, "message_delta", {
      type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { output_tokens: outputTokens },
    });
    if (script.holdAfterDelta) return; // the socket stays open until the client gives up or close()
    sse(res, "message_stop", { type: "message_stop" });
    res.end();
  };

  const answerToolUse = (res: ServerResponse, body: unknown, tool: { name: string; input: Record<string, unknown> }, id: string, model: string) => {
    const block = { type: "tool_use", id: `toolu_fake_${replies}`, name: tool.name, input: tool.input };
    if ((body as { stream?: unknown })?.stream !== true) {
      const payload = JSON.stringify({ id, type: "message", role: "assistant", model, content: [block], stop_reason: "tool_use", stop_sequence: null, usage });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
      res.end(payload);
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    sse(res, "message_start", {
      type: "message_start",
      message: { id, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: usage.input_tokens, output_tokens: 1 } },
    });
    sse(res, "content_block_start", { type: "content_block_start", index: 0, content_block: { ...block, input: {} } });
    sse(res, "content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: JSON.stringify(tool.input) } });
    sse(res, "content_block_stop", { type: "content_block_stop", index: 0 });
    sse(res, "message_delta", { type: "message_delta", delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: usage.output_tokens } });
    sse(res, "message_stop", { type: "message_stop" });
    res.end();
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://fake.invalid");
      const body = req.method === "POST" ? await readJson(req) : undefined;
      const record: FakeRequest = { method: req.method ?? "GET", path: url.pathname, headers: { ...req.headers }, body, at: Date.now() };
      requests.push(record);
      if (req.method === "HEAD" || (req.method === "GET" && url.pathname === "/")) {
        res.writeHead(200);
        res.end();
        return;
      }
      if (req.method === "POST" && url.pathname === "/v1/messages/count_tokens") {
        const payload = JSON.stringify({ input_tokens: 42 });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
        res.end(payload);
        return;
      }
      if (req.method === "POST" && url.pathname === "/v1/messages") {
        await answerMessages(req, res, body, record);
        return;
      }
      const payload = JSON.stringify({ type: "error", error: { type: "not_found_error", message: `fake API has no ${req.method} ${url.pathname}` } });
      res.writeHead(404, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
      res.end(payload);
    })().catch((err) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : (options.port ?? 0);
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    requests,
    messageRequests: () => requests.filter((r) => r.method === "POST" && r.path === "/v1/messages"),
    enqueue: (...scripts) => void queue.push(...scripts),
    setDefault: (script) => {
      fallback = script;
    },
    usage,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Short alias: `import { start } from "tests/support/fake-anthropic-api.js"`. */
export const start = startFakeAnthropicApi;
