import type { ServerResponse } from "node:http";
import { createHash } from "node:crypto";
import { z } from "zod";
import { CHAT_ID_PATTERN } from "../../host/contract.js";
import type { ApiTokenGuard } from "../../http/api-token-guard.js";
import { HttpError, badRequest, notFound } from "../../http/errors.js";
import { Reply, type RequestContext, type Route } from "../../http/router.js";
import type { ChatService, Idempotency } from "../chat-service.js";
import type { Chat, Turn } from "../domain.js";

const chatIdSchema = z.string().regex(CHAT_ID_PATTERN, "use 2-24 characters: lowercase letters, digits and single hyphens, starting with a letter");

export const createChatBody = z
  .object({
    id: chatIdSchema,
    budgetTokens: z.number().int().min(1).nullable().optional(),
  })
  .strict();

export const budgetBody = z.object({ budgetTokens: z.number().int().min(1).nullable() }).strict();

export function turnBodySchema(maxTextBytes: number) {
  return z
    .object({
      text: z
        .string()
        .min(1, "text must not be empty")
        .refine((t) => Buffer.byteLength(t, "utf8") <= maxTextBytes, `text must be at most ${maxTextBytes} bytes`)
        .refine((t) => !t.includes("\u0000"), "text must not contain NUL"),
      sender: z
        .string()
        .min(1)
        .max(64)
        .regex(/^[^\u0000-\u001f\u007f]+$/, "sender must be printable")
        .optional(),
    })
    .strict();
}

export interface RoutesDeps {
  chats: ChatService;
  apiAuth: ApiTokenGuard;
  maxTextBytes: number;
  /** What stands in the way of running turns now (e.g. no key configured); `chat create` shows it. */
  warnings?: () => string[];
}

export function chatView(chat: Chat, warm: boolean, mode: string) {
  return {
    id: chat.id,
    status: chat.status,
    mode,
    isolation: mode === "host" ? `Linux user pc-${chat.id}` : "local mode: current user, private HOME (weaker isolation)",
    sessionStarted: chat.sessionStarted,
    warm,
    budgetTokens: chat.budgetTokens,
    usage: { inputTokens: chat.usedInputTokens, outputTokens: chat.usedOutputTokens },
    provisioning: chat.provisionLog,
    error: chat.error,
    notice: chat.notice,
    archivePath: chat.archivePath,
    createdAt: new Date(chat.createdAt).toISOString(),
    deletedAt: chat.deletedAt ? new Date(chat.deletedAt).toISOString() : null,
  };
}

export function turnView(t: Turn) {
  return {
    id: t.id,
    chatId: t.chatId,
    status: t.status,
    text: t.text,
    sender: t.sender,
    reply: t.reply,
    error: t.errorCode ? { code: t.errorCode, message: t.error } : null,
    attempts: t.attempts,
    retried: t.retryOfInterrupted,
    runner: t.runner,
    usage: t.inputTokens === null ? null : { inputTokens: t.inputTokens, outputTokens: t.outputTokens },
    /** Files changed and commands run (bounded: see turns/activity.ts); null when none were recorded. */
    activity: t.activity,
    createdAt: new Date(t.createdAt).toISOString(),
    startedAt: t.startedAt ? new Date(t.startedAt).toISOString() : null,
    finishedAt: t.finishedAt ? new Date(t.finishedAt).toISOString() : null,
  };
}

function startSse(res: ServerResponse): (event: string, data: unknown) => void {
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive", "x-content-type-options": "nosniff" });
  return (event, data) => {
    if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
}

/**
 * Streams a turn's events as SSE: its status, then its text chunks, then one `turn` event
 * with its final JSON; then the stream closes. Shared by the API and the portal chat view.
 */
export function streamTurn(chats: ChatService, res: ServerResponse, turnId: string): void {
  const send = startSse(res);
  const stop = chats.follow(
    turnId,
    (e) => send(e.type, e),
    (final) => {
      if (final) send("turn", turnView(final));
      res.end();
    },
  );
  res.on("close", stop);
}

/** Client-chosen key that makes a create safe to resend (RFC draft "Idempotency-Key" header). */
const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{8,128}$/;

/** The request's Idempotency-Key (validated) with the hash of its body, if it sent one. */
function idempotencyOf(ctx: RequestContext, body: unknown): Idempotency | undefined {
  const raw = ctx.req.headers["idempotency-key"];
  if (raw === undefined) return undefined;
  if (typeof raw !== "string" || !IDEMPOTENCY_KEY.test(raw)) {
    throw badRequest("Idempotency-Key must be 8-128 characters: letters, digits, '.', '_', ':' or '-' (e.g. a UUID).");
  }
  return { key: raw, requestHash: createHash("sha256").update(JSON.stringify(body)).digest("hex") };
}

const wantsSse = (ctx: RequestContext) => String(ctx.req.headers.accept ?? "").includes("text/event-stream");

/** The HTTP API of the turns module: parses and checks each request, calls the ChatService, shapes its answer. */
export function turnsRoutes(d: RoutesDeps): Route[] {
  const { chats } = d;
  const auth = (ctx: RequestContext) => d.apiAuth.check(ctx.req);
  const chatParam = (ctx: RequestContext): Chat => {
    const id = ctx.params.id ?? "";
    if (!CHAT_ID_PATTERN.test(id)) throw badRequest(`Invalid chat id: use 2-24 characters, lowercase letters, digits and single hyphens, starting with a letter.`);
    return chats.get(id);
  };
  const view = (chat: Chat) => chatView(chat, chats.isWarm(chat.id), chats.hostMode);
  const turnParam = (ctx: RequestContext, chat: Chat): Turn => {
    const tid = ctx.params.tid ?? "";
    const turn = /^t_[a-f0-9]{20}$/.test(tid) ? chats.findTurn(chat.id, tid) : undefined;
    if (!turn) throw notFound(`No turn ${tid.slice(0, 40)} in chat ${chat.id}.`);
    return turn;
  };
  const accepted = (turn: Turn) => ({ ...turnView(turn), eventsPath: `/v1/chats/${turn.chatId}/turns/${turn.id}/events` });

  return [
    {
      method: "POST",
      path: "/v1/chats",
      handler: async (ctx) => {
        auth(ctx);
        const body = await ctx.body(createChatBody, 4096);
        const created = chats.create(body.id, body.budgetTokens, idempotencyOf(ctx, body));
        if (created.replayed) {
          // A resend of a create that was accepted: its outcome, not a second chat or a 409.
          ctx.res.setHeader("idempotent-replayed", "true");
          const final = await created.chat;
          if (wantsSse(ctx)) {
            const send = startSse(ctx.res);
            send(final.status === "ready" ? "ready" : final.status === "provisioning" ? "progress" : "failed", view(final));
            ctx.res.end();
            return undefined;
          }
          return new Reply(final.status === "ready" ? 201 : final.status === "provisioning" ? 202 : 500, view(final));
        }
        if (wantsSse(ctx)) {
          const send = startSse(ctx.res);
          const final = await created.provision((e) => send("progress", e));
          send(final.status === "ready" ? "ready" : "failed", { ...view(final), warnings: d.warnings?.() ?? [] });
          ctx.res.end();
          return undefined;
        }
        const final = await created.provision();
        if (final.status !== "ready") throw new HttpError(500, "provision_failed", `Provisioning chat ${final.id} failed: ${final.error}`);
        return new Reply(201, { ...view(final), warnings: d.warnings?.() ?? [] });
      },
    },
    {
      method: "GET",
      path: "/v1/chats",
      handler: (ctx) => {
        auth(ctx);
        const all = ctx.url.searchParams.get("all") === "1";
        return { chats: chats.list(all).map(view) };
      },
    },
    {
      method: "GET",
      path: "/v1/chats/:id",
      handler: (ctx) => {
        auth(ctx);
        return view(chatParam(ctx));
      },
    },
    {
      method: "PUT",
      path: "/v1/chats/:id/budget",
      handler: async (ctx) => {
        auth(ctx);
        const chat = chatParam(ctx);
        const body = await ctx.body(budgetBody, 1024);
        return view(chats.setBudget(chat.id, body.budgetTokens));
      },
    },
    {
      method: "DELETE",
      path: "/v1/chats/:id",
      handler: async (ctx) => {
        auth(ctx);
        return chats.delete(chatParam(ctx), ctx.url.searchParams.get("purge") === "1");
      },
    },
    {
      method: "GET",
      path: "/v1/chats/:id/messages",
      handler: (ctx) => {
        auth(ctx);
        const chat = chatParam(ctx);
        return {
          messages: chats.messages(chat.id).map((m) => ({ turnId: m.turnId, role: m.role, sender: m.sender, text: m.text, at: new Date(m.createdAt).toISOString() })),
        };
      },
    },
    {
      method: "POST",
      path: "/v1/chats/:id/turns",
      handler: async (ctx) => {
        auth(ctx);
        const chat = chatParam(ctx);
        const body = await ctx.body(turnBodySchema(d.maxTextBytes), d.maxTextBytes * 2 + 4096);
        const { turn, replayed } = chats.send(chat, body.text, body.sender ?? null, { idempotency: idempotencyOf(ctx, body) });
        if (replayed) ctx.res.setHeader("idempotent-replayed", "true");
        return new Reply(202, accepted(turn));
      },
    },
    {
      method: "GET",
      path: "/v1/chats/:id/turns",
      handler: (ctx) => {
        auth(ctx);
        const chat = chatParam(ctx);
        return { turns: chats.turns(chat.id).map(turnView) };
      },
    },
    {
      method: "GET",
      path: "/v1/chats/:id/turns/:tid",
      handler: (ctx) => {
        auth(ctx);
        return turnView(turnParam(ctx, chatParam(ctx)));
      },
    },
    {
      method: "GET",
      path: "/v1/chats/:id/turns/:tid/events",
      handler: (ctx) => {
        auth(ctx);
        const turn = turnParam(ctx, chatParam(ctx));
        streamTurn(chats, ctx.res, turn.id);
        return undefined;
      },
    },
  ];
}
