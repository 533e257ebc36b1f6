import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import type { Logger } from "../log.js";
import { hashToken, secretsEqual } from "../http/auth.js";
import type { Route, RequestContext } from "../http/router.js";
import { type ChatRow, type TurnStore } from "./store.js";

/** Path prefix of the key gateway on the runtime's server; chats get `<base>/gateway`. */
export const GATEWAY_PREFIX = "/gateway";

const HOP_HEADERS = new Set(["host", "connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-authorization", "te", "trailer", "x-api-key", "authorization", "accept-encoding", "content-length"]);

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith("::ffff:") ? address.slice(7) : address;
  return a === "::1" || (isIP(a) === 4 && a.startsWith("127."));
}

/** Anthropic-shaped error, so the CLI shows the message to the chat as is. */
function apiError(res: ServerResponse, status: number, type: string, message: string): void {
  const body = JSON.stringify({ type: "error", error: { type, message } });
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function presentedToken(headers: IncomingHttpHeaders): string | undefined {
  const key = headers["x-api-key"];
  if (typeof key === "string" && key) return key.trim();
  const auth = headers.authorization;
  const m = typeof auth === "string" ? /^Bearer\s+(\S{1,512})$/.exec(auth) : null;
  return m?.[1];
}

/** Counts tokens from a response as it streams (SSE) or once it ends (JSON). */
class UsageMeter {
  input = 0;
  output = 0;
  private buffered = "";

  constructor(private readonly sse: boolean) {}

  feed(chunk: Buffer): void {
    this.buffered += chunk.toString("utf8");
    if (!this.sse) return;
    let i: number;
    while ((i = this.buffered.indexOf("\n")) >= 0) {
      const line = this.buffered.slice(0, i).trim();
      this.buffered = this.buffered.slice(i + 1);
      if (line.startsWith("data:")) this.take(line.slice(5));
    }
  }

  end(): void {
    if (!this.sse) this.take(this.buffered);
    this.buffered = "";
  }

  private take(json: string): void {
    let event: { type?: string; message?: { usage?: Record<string, number> }; usage?: Record<string, number> };
    try {
      event = JSON.parse(json) as typeof event;
    } catch {
      return;
    }
    const inputOf = (u: Record<string, number> | undefined) =>
      (u?.input_tokens ?? 0) + (u?.cache_creation_input_tokens ?? 0) + (u?.cache_read_input_tokens ?? 0);
    if (event.type === "message_start") this.input = inputOf(event.message?.usage);
    else if (event.type === "message_delta") this.output = event.usage?.output_tokens ?? this.output;
    else if (event.type === "message") {
      this.input = inputOf(event.usage);
      this.output = event.usage?.output_tokens ?? 0;
    }
  }
}

export interface GatewayOptions {
  store: TurnStore;
  upstreamBaseUrl: string;
  /** Reads the real key; throws with an actionable message when it is not configured. */
  realKey: () => string;
  log: Logger;
}

/**
 * The loopback key gateway. A chat's CLI authenticates with its per-chat token; the
 * gateway checks it, enforces the chat's budget, swaps in the real key and streams
 * the request to the upstream and the answer back, recording the chat's token usage.
 */
export function gatewayRoutes(o: GatewayOptions): Route[] {
  const upstream = new URL(o.upstreamBaseUrl);
  const basePath = upstream.pathname.replace(/\/$/, "");

  const authenticate = (ctx: RequestContext): ChatRow | undefined => {
    if (!isLoopback(ctx.req.socket.remoteAddress)) {
      apiError(ctx.res, 403, "permission_error", "The picortex key gateway only accepts loopback connections.");
      return undefined;
    }
    const token = presentedToken(ctx.req.headers);
    const hash = token ? hashToken(token) : "";
    const chat = token ? o.store.chatByTokenHash(hash) : undefined;
    if (!chat || !secretsEqual(hash, chat.token_hash)) {
      apiError(ctx.res, 401, "authentication_error", "picortex gateway: unknown or revoked chat token.");
      return undefined;
    }
    return chat;
  };

  const forward = async (ctx: RequestContext): Promise<void> => {
    const chat = authenticate(ctx);
    if (!chat) return;
    const used = chat.used_input_tokens + chat.used_output_tokens;
    const countsUsage = ctx.url.pathname === `${GATEWAY_PREFIX}/v1/messages`;
    if (countsUsage && chat.budget_tokens !== null && used >= chat.budget_tokens) {
      // 400 (not 429): the CLI retries 429/5xx for minutes; a budget will not heal by retrying.
      apiError(
        ctx.res,
        400,
        "invalid_request_error",
        `picortex: chat ${chat.id} has used ${used} of its ${chat.budget_tokens}-token budget; the operator can raise it with \`picortex chat budget ${chat.id} <tokens>\`.`,
      );
      return;
    }
    let key: string;
    try {
      key = o.realKey();
    } catch (err) {
      apiError(ctx.res, 503, "api_error", (err as Error).message);
      return;
    }
    const target = new URL(upstream.origin);
    target.pathname = basePath + ctx.url.pathname.slice(GATEWAY_PREFIX.length);
    target.search = new URL(ctx.req.url ?? "/", "http://x").search;
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(ctx.req.headers)) if (v !== undefined && !HOP_HEADERS.has(k)) headers[k] = v;
    headers["x-api-key"] = key;
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    await new Promise<void>((resolve) => {
      const up = send(target, { method: ctx.req.method, headers }, (upRes: IncomingMessage) => {
        const outHeaders: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(upRes.headers)) if (v !== undefined && !HOP_HEADERS.has(k)) outHeaders[k] = v;
        ctx.res.writeHead(upRes.statusCode ?? 502, outHeaders);
        const meter = new UsageMeter(String(upRes.headers["content-type"] ?? "").includes("text/event-stream"));
        upRes.on("data", (c: Buffer) => {
          if (countsUsage && (upRes.statusCode ?? 0) < 300) meter.feed(c);
          ctx.res.write(c);
        });
        upRes.on("end", () => {
          if (countsUsage && (upRes.statusCode ?? 0) < 300) {
            meter.end();
            if (meter.input || meter.output) o.store.addUsage(chat.id, meter.input, meter.output);
          }
          ctx.res.end();
          resolve();
        });
        upRes.on("error", () => {
          ctx.res.destroy();
          resolve();
        });
      });
      up.on("error", (err) => {
        o.log.warn("gateway upstream error", { chatId: chat.id, error: err.message });
        if (!ctx.res.headersSent) apiError(ctx.res, 502, "api_error", `picortex gateway could not reach the upstream API: ${err.message}`);
        else ctx.res.destroy();
        resolve();
      });
      // The client hung up (turn killed): stop the upstream request too.
      ctx.res.on("close", () => {
        if (!ctx.res.writableFinished) up.destroy();
      });
      ctx.req.pipe(up);
    });
  };

  const ping = (ctx: RequestContext) => {
    ctx.res.writeHead(200, { "content-length": 0 });
    ctx.res.end();
    return undefined;
  };

  return [
    { method: "GET", path: GATEWAY_PREFIX, handler: ping },
    { method: "GET", path: `${GATEWAY_PREFIX}/`, handler: ping },
    { method: "POST", path: `${GATEWAY_PREFIX}/v1/messages`, handler: forward },
    { method: "POST", path: `${GATEWAY_PREFIX}/v1/messages/count_tokens`, handler: forward },
  ];
}
