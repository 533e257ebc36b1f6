import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import { isLoopback } from "../../http/mcp-endpoint.js";
import { enforceSourceAllowlist, listenOnFd } from "../../http/listen-fds.js";
import { request as httpsRequest } from "node:https";
import type { Logger } from "../../log.js";
import { createServer, type Server } from "node:http";
import { hashToken, secretsEqual } from "../../http/auth.js";
import { CredentialLimiter } from "../../http/rate-limit.js";
import { Router } from "../../http/router.js";
import { HostAllowlist } from "../../http/host-check.js";
import type { Route, RequestContext } from "../../http/router.js";
import { overBudget, usedTokens, type Chat } from "../domain.js";
import type { TurnStore } from "../store.js";
import { AGENT_PRINCIPAL, AGENT_TOKEN_PREFIX } from "../../host/agent-key.js";
import { PicortexError } from "../../errors.js";

/** Path prefix of the key gateway on the runtime's server; chats get `<base>/gateway`. */
export const GATEWAY_PREFIX = "/gateway";

const HOP_HEADERS = new Set(["host", "connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-authorization", "te", "trailer", "x-api-key", "authorization", "accept-encoding", "content-length"]);

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

/** Usage an upstream answer reported so far (cumulative), plus what streamed without a report. */
interface Usage {
  input: number;
  output: number;
}

/**
 * Reads usage from a response as it streams (SSE) or once it ends (JSON). `onUsage` is
 * called with the cumulative usage every time an event reports some (message_start's
 * input, every message_delta's output), so the chat is charged while the answer streams,
 * not only if the stream ends cleanly.
 */
class UsageMeter {
  input = 0;
  output = 0;
  reported = false;
  /** Characters of content that streamed, for an estimate when the stream is cut before the final usage report. */
  streamedChars = 0;
  /** Bytes of the answer relayed so far (a non-streamed answer's estimate when its JSON is cut). */
  relayedBytes = 0;
  /**
   * Whether the answer's final usage arrived: a stream's message_delta (message_start only
   * reports the input and a placeholder output of 1), or a complete JSON body. Until then
   * the reported output is a lower bound, not the charge.
   */
  complete = false;
  private buffered = "";

  constructor(
    readonly sse: boolean,
    private readonly onUsage: (u: Usage) => void,
  ) {}

  feed(chunk: Buffer): void {
    this.relayedBytes += chunk.length;
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
    let event: {
      type?: string;
      message?: { usage?: Record<string, number> };
      usage?: Record<string, number>;
      delta?: { text?: string; partial_json?: string; thinking?: string };
    };
    try {
      event = JSON.parse(json) as typeof event;
    } catch {
      return;
    }
    const inputOf = (u: Record<string, number> | undefined) =>
      (u?.input_tokens ?? 0) + (u?.cache_creation_input_tokens ?? 0) + (u?.cache_read_input_tokens ?? 0);
    const before = { input: this.input, output: this.output };
    if (event.type === "message_start") {
      this.input = Math.max(this.input, inputOf(event.message?.usage));
      this.output = Math.max(this.output, event.message?.usage?.output_tokens ?? 0);
      this.reported = true;
    } else if (event.type === "message_delta") {
      // Cumulative counts; newer API versions repeat the input counts here too.
      this.input = Math.max(this.input, inputOf(event.usage));
      this.output = Math.max(this.output, event.usage?.output_tokens ?? 0);
      this.reported = true;
      this.complete = true;
    } else if (event.type === "content_block_delta") {
      this.streamedChars += (event.delta?.text ?? event.delta?.partial_json ?? event.delta?.thinking ?? "").length;
    } else if (event.type === "message") {
      this.input = inputOf(event.usage);
      this.output = event.usage?.output_tokens ?? 0;
      this.reported = true;
      this.complete = true;
    }
    if (this.input !== before.input || this.output !== before.output) this.onUsage({ input: this.input, output: this.output });
  }
}

/** Errors that mean the upstream was never reached (as opposed to a connection lost mid-answer). */
const CONNECT_ERRORS = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET", "ETIMEDOUT", "EADDRNOTAVAIL"]);

class UpstreamUnreachable extends PicortexError {
  constructor(message: string) {
    super("unavailable", "upstream_unreachable", message);
  }
}

/** How long the gateway waits for a TCP (and TLS) connection to the upstream. */
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** One token per this many bytes of request body: the input estimate reserved before the real count is known. */
const INPUT_BYTES_PER_TOKEN = 4;
/** One token per this many characters relayed: the output estimate for an answer cut before its final usage. */
const OUTPUT_CHARS_PER_TOKEN = 4;
/**
 * Largest request body the gateway buffers. The real API accepts 32 MB, but Claude Code's
 * requests (the whole conversation, tools and system prompt) stay at a few MB; a lower cap
 * keeps a chat from pinning tens of MB per request in the runtime's memory.
 */
export const MAX_REQUEST_BYTES = 8 * 1024 * 1024;
/** Requests one chat may have in the gateway at once (Claude Code runs a few: main loop, subagents, title). */
export const MAX_IN_FLIGHT_PER_CHAT = 4;
/** The gateway listener's limits for receiving a request's headers and its whole body (loopback: seconds suffice). */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** Smallest extended-thinking budget the API accepts. */
const MIN_THINKING_TOKENS = 1024;

/**
 * Who a gateway request is charged to: a chat, or the portal's agent (its own principal,
 * issue 13 item 2). Every limit is kept per principal key: usage and budget, the ledger's
 * reservations, the requests in flight.
 */
export interface GatewayPrincipal {
  /** The chat id, or AGENT_PRINCIPAL (never a chat id). */
  key: string;
  /** For messages: `chat alpha`, `the portal agent`. */
  label: string;
  /** How the operator raises the budget (ends the refusal message). */
  raiseHint: string;
  /** Tokens used so far and the budget (null: none), read fresh. */
  usage(): { used: number; budget: number | null };
  addUsage(input: number, output: number): void;
}

/** A chat as a gateway principal. */
export function chatPrincipal(store: TurnStore, chatId: string): GatewayPrincipal {
  return {
    key: chatId,
    label: `chat ${chatId}`,
    raiseHint: `the operator can raise it with \`picortex chat budget ${chatId} <tokens>\``,
    usage: () => {
      const chat = store.getChat(chatId);
      return { used: chat ? usedTokens(chat) : 0, budget: chat?.budgetTokens ?? null };
    },
    addUsage: (i, o) => void store.addUsage(chatId, i, o),
  };
}

/** The portal's agent as a gateway principal: its usage has its own row, its budget is turns.agentBudgetTokens. */
export function agentPrincipal(store: TurnStore, budgetTokens: number | null): GatewayPrincipal {
  return {
    key: AGENT_PRINCIPAL,
    label: "the portal agent",
    raiseHint: "the operator can raise it with turns.agentBudgetTokens in the runtime config",
    usage: () => {
      const u = store.principalUsage(AGENT_PRINCIPAL);
      return { used: u.input + u.output, budget: budgetTokens };
    },
    addUsage: (i, o) => void store.addUsage(AGENT_PRINCIPAL, i, o),
  };
}

/**
 * The per-principal budget ledger (an entry per chat, one for the portal agent). A
 * request's worst case (its input estimate plus its `max_tokens`, clamped to what
 * remains) is reserved before it is forwarded, in one synchronous step with the check,
 * so parallel requests of one principal see each other's
 * reservations and cannot together pass the budget. Usage is charged as the upstream
 * reports it; when the request ends (cleanly, by error or because the client hung up)
 * the reservation is released and only what was charged stays.
 */
export class BudgetLedger {
  private readonly outstanding = new Map<string, number>();

  /** Tokens reserved by this principal's (chat id or AGENT_PRINCIPAL) requests in flight. */
  reservedFor(key: string): number {
    return this.outstanding.get(key) ?? 0;
  }

  /**
   * Checks and reserves in one step. Returns the `max_tokens` the request may use, or
   * a refusal naming the numbers.
   */
  reserve(principal: GatewayPrincipal, inputEstimate: number, maxTokens: number): { ok: true; reservation: Reservation } | { ok: false; used: number; budget: number; reserved: number; needed: number } {
    const { used, budget } = principal.usage();
    const reserved = this.reservedFor(principal.key);
    let allowed = maxTokens;
    if (budget !== null) {
      const left = budget - used - reserved - inputEstimate;
      if (left < 1) return { ok: false, used, budget, reserved, needed: inputEstimate + 1 };
      allowed = Math.min(maxTokens, left);
    }
    const amount = budget === null ? 0 : inputEstimate + allowed;
    this.outstanding.set(principal.key, reserved + amount);
    return { ok: true, reservation: new Reservation(this, principal, amount, allowed, inputEstimate) };
  }

  /** @internal */
  release(key: string, amount: number): void {
    const left = this.reservedFor(key) - amount;
    if (left > 0) this.outstanding.set(key, left);
    else this.outstanding.delete(key);
  }
}

/** One request's hold on its principal's budget: charged as usage arrives, settled exactly once. */
export class Reservation {
  private charged: Usage = { input: 0, output: 0 };
  private settled = false;

  constructor(
    private readonly ledger: BudgetLedger,
    readonly principal: GatewayPrincipal,
    private amount: number,
    readonly maxTokens: number,
    readonly inputEstimate: number,
  ) {}

  /** Records cumulative usage: only the increase over what was already charged is added. */
  charge(u: Usage): void {
    const di = Math.max(0, u.input - this.charged.input);
    const dout = Math.max(0, u.output - this.charged.output);
    if (di === 0 && dout === 0) return;
    this.principal.addUsage(di, dout);
    this.charged = { input: this.charged.input + di, output: this.charged.output + dout };
    // What is charged is now in the store; hold back only the rest of the reservation.
    if (!this.settled) {
      const release = Math.min(this.amount, di + dout);
      this.ledger.release(this.principal.key, release);
      this.amount -= release;
    }
  }

  /**
   * Ends the hold. `fallback` (cumulative, like `charge`) is charged where it exceeds what
   * was charged: the estimate for an answer whose final usage report never arrived.
   */
  settle(fallback?: Usage): void {
    if (this.settled) return;
    if (fallback) this.charge(fallback);
    this.settled = true;
    this.ledger.release(this.principal.key, this.amount);
    this.amount = 0;
  }
}

/** Lowers `max_tokens` (and a thinking budget that would no longer fit under it). */
function clampMaxTokens(body: Record<string, unknown>, maxTokens: number): void {
  body.max_tokens = maxTokens;
  const thinking = body.thinking as { type?: string; budget_tokens?: number } | undefined;
  if (thinking && thinking.type === "enabled" && typeof thinking.budget_tokens === "number" && thinking.budget_tokens >= maxTokens) {
    if (maxTokens - 1 >= MIN_THINKING_TOKENS) thinking.budget_tokens = maxTokens - 1;
    else delete body.thinking;
  }
}

async function readRequestBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > MAX_REQUEST_BYTES) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_REQUEST_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export interface GatewayOptions {
  store: TurnStore;
  upstreamBaseUrl: string;
  /** Reads the real key; throws with an actionable message when it is not configured. */
  realKey: () => string;
  log: Logger;
  /** Shared budget ledger (one per runtime); a fresh one by default. */
  ledger?: BudgetLedger;
  /** Failure limiter for chat tokens; a fresh one by default. */
  limiter?: CredentialLimiter;
  /**
   * The portal agent's principal (host mode): the SHA-256 hex of its token (written by
   * picortex-release, host/agent-key.ts) and its budget. Unset: no agent principal.
   */
  agent?: { tokenHash: string; budgetTokens: number | null };
  /** Failure limiter for tokens that claim to be the agent's (`pca_…`); a fresh one by default. */
  agentLimiter?: CredentialLimiter;
  /** Give up on an upstream connection not made within this time (default 5 s). */
  connectTimeoutMs?: number;
  /** Requests one chat may have in flight; more are refused with 429 (default MAX_IN_FLIGHT_PER_CHAT). */
  maxInFlightPerChat?: number;
  /** The listener's limit for a request's headers (default 10 s). */
  headersTimeoutMs?: number;
  /** The listener's limit for a whole request, body included (default 30 s). */
  requestTimeoutMs?: number;
  /** More routes for chats on this listener (host mode: the brain's MCP endpoint, brain/server/mcp-http.ts). */
  extraRoutes?: Route[];
}

/**
 * The loopback key gateway. A chat's CLI authenticates with its per-chat token; the
 * gateway checks it, enforces the chat's budget, swaps in the real key and streams
 * the request to the upstream and the answer back, recording the chat's token usage.
 */
export function gatewayRoutes(o: GatewayOptions): Route[] {
  const upstream = new URL(o.upstreamBaseUrl);
  const basePath = upstream.pathname.replace(/\/$/, "");

  const limiter = o.limiter ?? new CredentialLimiter("gateway");
  const agentLimiter = o.agentLimiter ?? new CredentialLimiter("gateway-agent");
  const agent = o.agent ? agentPrincipal(o.store, o.agent.budgetTokens) : undefined;
  const authenticate = (ctx: RequestContext): GatewayPrincipal | undefined => {
    if (!isLoopback(ctx.req.socket.remoteAddress)) {
      apiError(ctx.res, 403, "permission_error", "The picortex key gateway only accepts loopback connections.");
      return undefined;
    }
    const token = presentedToken(ctx.req.headers);
    const hash = token ? hashToken(token) : "";
    // The agent's token matches only the agent's hash (constant time), a chat's only its
    // own row: neither can be taken for the other, whatever the prefix says.
    if (token && agent && o.agent && secretsEqual(hash, o.agent.tokenHash)) return agent;
    const chat: Chat | undefined = token ? o.store.chatByTokenHash(hash) : undefined;
    if (chat && secretsEqual(hash, chat.tokenHash)) return chatPrincipal(o.store, chat.id);
    // A valid token is never refused; bad ones count per claimed principal kind and
    // client bucket, so a chat spraying bad tokens never brings the agent's kind to 429.
    const claimsAgent = !!token?.startsWith(AGENT_TOKEN_PREFIX);
    const retry = (claimsAgent ? agentLimiter : limiter).refuse(ctx.req.socket.remoteAddress);
    const what = claimsAgent ? "portal agent token" : "chat token";
    if (retry > 0) {
      ctx.res.setHeader("retry-after", String(retry));
      apiError(ctx.res, 429, "rate_limit_error", `picortex gateway: too many bad ${what}s; retry in ${retry} s.`);
    } else apiError(ctx.res, 401, "authentication_error", `picortex gateway: unknown or revoked ${what}.`);
    return undefined;
  };

  const ledger = o.ledger ?? new BudgetLedger();
  const connectTimeoutMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;

  const budgetRefusal = (ctx: RequestContext, p: GatewayPrincipal, used: number, budget: number, reserved: number, needed?: number) => {
    // 400 (not 429): the CLI retries 429/5xx for minutes; a budget will not heal by retrying.
    apiError(
      ctx.res,
      400,
      "invalid_request_error",
      `picortex: ${p.label} has used ${used} of its ${budget}-token budget${reserved > 0 ? ` (${reserved} more reserved by requests in flight)` : ""}${needed !== undefined ? ` and this request needs about ${needed}` : ""}; ${p.raiseHint}.`,
    );
  };

  const maxInFlight = o.maxInFlightPerChat ?? MAX_IN_FLIGHT_PER_CHAT;
  const inFlight = new Map<string, number>();

  const forward = async (ctx: RequestContext): Promise<void> => {
    const principal = authenticate(ctx);
    if (!principal) return;
    // Each request may buffer a body of up to MAX_REQUEST_BYTES: bound how many one principal holds.
    const mine = inFlight.get(principal.key) ?? 0;
    if (mine >= maxInFlight) {
      ctx.res.setHeader("retry-after", "1");
      apiError(ctx.res, 429, "rate_limit_error", `picortex gateway: ${principal.label} already has ${mine} requests in flight (at most ${maxInFlight}); retry when one ends.`);
      return;
    }
    inFlight.set(principal.key, mine + 1);
    try {
      await forwardFor(ctx, principal);
    } finally {
      const left = (inFlight.get(principal.key) ?? 1) - 1;
      if (left > 0) inFlight.set(principal.key, left);
      else inFlight.delete(principal.key);
    }
  };

  const forwardFor = async (ctx: RequestContext, principal: GatewayPrincipal): Promise<void> => {
    const countsUsage = ctx.url.pathname === `${GATEWAY_PREFIX}/v1/messages`;
    const spent = countsUsage ? overBudget(principal.usage()) : undefined;
    if (spent) {
      budgetRefusal(ctx, principal, spent.used, spent.budget, ledger.reservedFor(principal.key));
      return;
    }
    let key: string;
    try {
      key = o.realKey();
    } catch (err) {
      // An authentication-class answer: Claude Code does not retry a 401 (it retries 5xx
      // ten times, minutes of silence), and shows this message as the turn's error.
      ctx.res.setHeader("x-should-retry", "false");
      apiError(ctx.res, 401, "authentication_error", (err as Error).message);
      return;
    }
    let body = await readRequestBody(ctx.req);
    if (!body) {
      // Stop reading: the rest of an oversized body is not buffered (the connection closes after the answer).
      ctx.res.setHeader("connection", "close");
      ctx.res.setHeader("x-should-retry", "false");
      apiError(
        ctx.res,
        413,
        "request_too_large",
        `picortex gateway: the request body exceeds ${MAX_REQUEST_BYTES / (1024 * 1024)} MB (the gateway's limit per request); shorten the conversation (e.g. /compact) or leave out large attachments.`,
      );
      return;
    }
    let reservation: Reservation | undefined;
    if (countsUsage) {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
      } catch {
        apiError(ctx.res, 400, "invalid_request_error", "picortex gateway: the request body is not JSON.");
        return;
      }
      const maxTokens = parsed?.max_tokens;
      if (typeof parsed !== "object" || parsed === null || !Number.isSafeInteger(maxTokens) || (maxTokens as number) < 1) {
        apiError(ctx.res, 400, "invalid_request_error", "picortex gateway: max_tokens must be a positive integer.");
        return;
      }
      // Check and reserve in one synchronous step (no await in between): requests of one
      // chat in parallel each see what the others hold.
      const r = ledger.reserve(principal, Math.ceil(body.length / INPUT_BYTES_PER_TOKEN), maxTokens as number);
      if (!r.ok) {
        budgetRefusal(ctx, principal, r.used, r.budget, r.reserved, r.needed);
        return;
      }
      reservation = r.reservation;
      if (reservation.maxTokens < (maxTokens as number)) clampMaxTokens(parsed, reservation.maxTokens);
      // Always forward what was parsed and reserved, never the original bytes: a body with a
      // key twice ({"max_tokens":100000,…,"max_tokens":1}) parses to the last one here, and
      // an upstream that kept the first would generate past the reservation.
      body = Buffer.from(JSON.stringify(parsed), "utf8");
    }
    const target = new URL(upstream.origin);
    target.pathname = basePath + ctx.url.pathname.slice(GATEWAY_PREFIX.length);
    target.search = new URL(ctx.req.url ?? "/", "http://x").search;
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(ctx.req.headers)) if (v !== undefined && !HOP_HEADERS.has(k)) headers[k] = v;
    headers["x-api-key"] = key;
    headers["content-length"] = String(body.length);
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    let meter: UsageMeter | undefined;
    let answered = false;
    // Settles the reservation exactly once, however the exchange ends.
    const settle = () => {
      if (!reservation) return;
      if (meter && answered) {
        meter.end();
        reservation.charge(meter);
        if (meter.complete) reservation.settle();
        else {
          // Cut before the final usage report (the client hung up, or the upstream broke off):
          // what was reported so far is only a lower bound (message_start says output 1), so
          // charge at least the estimate of what was sent and relayed. A stream counts its
          // content deltas; a JSON body cut mid-way counts every byte relayed.
          const relayed = meter.sse ? meter.streamedChars : meter.relayedBytes;
          reservation.settle({
            input: Math.max(meter.input, reservation.inputEstimate),
            output: Math.max(meter.output, Math.ceil(relayed / OUTPUT_CHARS_PER_TOKEN)),
          });
        }
      } else reservation.settle();
    };
    try {
      await new Promise<void>((resolve) => {
        const up = send(target, { method: ctx.req.method, headers }, (upRes: IncomingMessage) => {
          const ok = (upRes.statusCode ?? 0) < 300;
          const outHeaders: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(upRes.headers)) if (v !== undefined && !HOP_HEADERS.has(k)) outHeaders[k] = v;
          ctx.res.writeHead(upRes.statusCode ?? 502, outHeaders);
          if (reservation && ok) {
            answered = true;
            const held = reservation;
            meter = new UsageMeter(String(upRes.headers["content-type"] ?? "").includes("text/event-stream"), (u) => held.charge(u));
          }
          upRes.on("data", (c: Buffer) => {
            // Metered before it is relayed: whatever the client has seen is already charged.
            meter?.feed(c);
            ctx.res.write(c);
          });
          upRes.on("end", () => {
            ctx.res.end();
            resolve();
          });
          upRes.on("error", () => {
            ctx.res.destroy();
            resolve();
          });
          upRes.on("close", () => resolve());
        });
        // Fail fast when the upstream cannot be reached: a connection that is not up within
        // the connect timeout is abandoned (a blackholed address would otherwise hang for
        // minutes), and the answer is one Claude Code does not retry.
        const connectTimer = setTimeout(() => up.destroy(new UpstreamUnreachable(`no connection within ${connectTimeoutMs / 1000} s`)), connectTimeoutMs);
        up.on("socket", (sock) => {
          if (!sock.connecting) clearTimeout(connectTimer);
          else sock.once(target.protocol === "https:" ? "secureConnect" : "connect", () => clearTimeout(connectTimer));
        });
        up.on("response", () => clearTimeout(connectTimer));
        up.on("close", () => clearTimeout(connectTimer));
        up.on("error", (err: NodeJS.ErrnoException) => {
          clearTimeout(connectTimer);
          o.log.warn("gateway upstream error", { principal: principal.key, error: err.message });
          if (!ctx.res.headersSent) {
            const unreachable = err instanceof UpstreamUnreachable || CONNECT_ERRORS.has(err.code ?? "");
            if (unreachable) {
              ctx.res.setHeader("x-should-retry", "false");
              // 400: Claude Code retries 5xx and connection errors for minutes; an unreachable upstream needs a person.
              apiError(
                ctx.res,
                400,
                "invalid_request_error",
                `picortex gateway cannot reach the upstream API at ${upstream.origin} (${err.message}); check the host's network or turns.upstreamBaseUrl.`,
              );
            } else apiError(ctx.res, 502, "api_error", `picortex gateway lost the upstream API at ${upstream.origin}: ${err.message}`);
          } else ctx.res.destroy();
          resolve();
        });
        // The client hung up (turn killed): stop the upstream request too.
        ctx.res.on("close", () => {
          if (!ctx.res.writableFinished) up.destroy();
          resolve();
        });
        up.end(body);
      });
    } finally {
      settle();
    }
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

export interface GatewayServer {
  /** What chats put in ANTHROPIC_BASE_URL: `http://127.0.0.1:<port>/gateway`. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * The gateway's own loopback listener. Chats (and the portal's agent) reach the key
 * gateway here, never on the operator's API listener: the two principals do not share an
 * endpoint, and the API listener does not serve the gateway at all.
 */
export async function startGatewayServer(o: GatewayOptions, listen: number | { fd: number }, host = "127.0.0.1"): Promise<GatewayServer> {
  const port = typeof listen === "number" ? listen : 0;
  const router = new Router((m) => o.log.error(m)).add(...gatewayRoutes(o), ...(o.extraRoutes ?? []));
  const names = new HostAllowlist([host]);
  // A client trickling its request cannot hold a buffered body for Node's default 300 s.
  const requestTimeout = o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const server: Server = createServer(
    {
      headersTimeout: Math.min(o.headersTimeoutMs ?? HEADERS_TIMEOUT_MS, requestTimeout),
      requestTimeout,
      // How often Node checks those limits (its default, 30 s, would double them).
      connectionsCheckingInterval: Math.min(1_000, requestTimeout),
    },
    (req, res) => {
    if (!names.allows(req)) {
      apiError(res, 421, "permission_error", "The picortex key gateway answers only to loopback Host names.");
      return;
    }
    router.handle(req, res).then(
      (handled) => {
        if (!handled) apiError(res, 404, "not_found_error", "The picortex key gateway serves only /gateway/v1/messages.");
      },
      () => {
        if (!res.headersSent) apiError(res, 500, "api_error", "picortex gateway internal error; see the runtime log.");
        else res.destroy();
      },
    );
  });
  let bound: number;
  if (typeof listen === "object") {
    // picortex-runtime.socket's second port (a host): the dual-stack wildcard, held by
    // systemd across restarts; only loopback sources (chats, the portal's agent) are served.
    enforceSourceAllowlist(server, "gateway", (address) => o.log.warn("gateway: closed connections from outside loopback", { address }));
    bound = await listenOnFd(server, listen.fd);
  } else bound = await listenOnPort(server, port, host);
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${bound}${GATEWAY_PREFIX}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function listenOnPort(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        err.code === "EADDRINUSE"
          ? new Error(`The key gateway cannot listen on ${host}:${port}: the port is in use. Set turns.gatewayPort to a free port (0 picks one).`)
          : err,
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  return typeof addr === "object" && addr ? addr.port : port;
}
