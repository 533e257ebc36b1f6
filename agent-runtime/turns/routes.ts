import type { ServerResponse } from "node:http";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { z } from "zod";
import { CHAT_ID_PATTERN } from "../host/contract.js";
import { generateToken, hashToken } from "../http/auth.js";
import type { ApiTokenGuard } from "../http/api-token-guard.js";
import { HttpError, badRequest, conflict, notFound } from "../http/errors.js";
import { Reply, type RequestContext, type Route } from "../http/router.js";
import type { Logger } from "../log.js";
import type { ChatHost } from "./chat-host.js";
import type { TurnEngine } from "./engine.js";
import type { Provisioner } from "./provisioner.js";
import type { TurnEvent, TurnEvents } from "./events.js";
import type { Chat, Turn } from "./domain.js";
import type { TurnStore } from "./store.js";
import type { WarmPool } from "./warm-pool.js";

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
  store: TurnStore;
  engine: TurnEngine;
  provisioner: Provisioner;
  events: TurnEvents;
  host: ChatHost;
  warm: WarmPool | undefined;
  apiAuth: ApiTokenGuard;
  dataDir: string;
  /** The key gateway's URL (its own loopback listener). */
  gatewayUrl: () => string;
  onDelete: "archive" | "remove";
  defaultBudgetTokens: number | undefined;
  maxTextBytes: number;
  /** What stands in the way of running turns now (e.g. no key configured); `chat create` shows it. */
  warnings?: () => string[];
  log: Logger;
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

/** Client-chosen key that makes a create safe to resend (RFC draft "Idempotency-Key" header). */
const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{8,128}$/;
/** How long a key is remembered: far longer than any client retries for. */
export const IDEMPOTENCY_TTL_MS = 7 * 24 * 3600 * 1000;

function idempotencyKey(ctx: RequestContext): string | undefined {
  const raw = ctx.req.headers["idempotency-key"];
  if (raw === undefined) return undefined;
  if (typeof raw !== "string" || !IDEMPOTENCY_KEY.test(raw)) {
    throw badRequest("Idempotency-Key must be 8-128 characters: letters, digits, '.', '_', ':' or '-' (e.g. a UUID).");
  }
  return raw;
}

const requestHash = (body: unknown) => createHash("sha256").update(JSON.stringify(body)).digest("hex");

const keyReused = (key: string, what: string) =>
  new HttpError(422, "idempotency_key_reused", `Idempotency-Key ${key} was already used for a different ${what}; send a new key with a new request.`);

const wantsSse = (ctx: RequestContext) => String(ctx.req.headers.accept ?? "").includes("text/event-stream");
const FINISHED = new Set(["done", "failed", "interrupted"]);

export function turnsRoutes(d: RoutesDeps): Route[] {
  const auth = (ctx: RequestContext) => d.apiAuth.check(ctx.req);
  const chatParam = (ctx: RequestContext): Chat => {
    const id = ctx.params.id ?? "";
    if (!CHAT_ID_PATTERN.test(id)) throw badRequest(`Invalid chat id: use 2-24 characters, lowercase letters, digits and single hyphens, starting with a letter.`);
    const chat = d.store.getChat(id);
    if (!chat) throw notFound(`No chat ${id}.`);
    return chat;
  };
  const view = (chat: Chat) => chatView(chat, d.warm?.has(chat.id) ?? false, d.host.mode);
  const turnParam = (ctx: RequestContext, chat: Chat): Turn => {
    const tid = ctx.params.tid ?? "";
    const turn = /^t_[a-f0-9]{20}$/.test(tid) ? d.store.getTurn(tid) : undefined;
    if (!turn || turn.chatId !== chat.id) throw notFound(`No turn ${tid.slice(0, 40)} in chat ${chat.id}.`);
    return turn;
  };

  return [
    {
      method: "POST",
      path: "/v1/chats",
      handler: async (ctx) => {
        auth(ctx);
        const body = await ctx.body(createChatBody, 4096);
        const budget = body.budgetTokens === undefined ? (d.defaultBudgetTokens ?? null) : body.budgetTokens;
        const key = idempotencyKey(ctx);
        const hash = requestHash(body);
        const prior = key ? d.store.idempotent("chat", key) : undefined;
        if (key && prior) {
          // A resend of a create that was accepted: its outcome, not a second chat or a 409.
          if (prior.requestHash !== hash) throw keyReused(key, "chat creation");
          ctx.res.setHeader("idempotent-replayed", "true");
          const now = d.store.getChat(prior.resultId);
          const final = (now?.status === "provisioning" ? await d.provisioner.pending(prior.resultId) : undefined) ?? d.store.getChat(prior.resultId)!;
          if (wantsSse(ctx)) {
            const send = startSse(ctx.res);
            send(final.status === "ready" ? "ready" : final.status === "provisioning" ? "progress" : "failed", view(final));
            ctx.res.end();
            return undefined;
          }
          return new Reply(final.status === "ready" ? 201 : final.status === "provisioning" ? 202 : 500, view(final));
        }
        // The real token is made by each provisioning attempt; this placeholder is never handed out.
        const chat = d.store.atomically(() => {
          const created = d.store.createChat(body.id, hashToken(generateToken("pcc_")), budget);
          if (key) d.store.recordIdempotency("chat", key, hash, created.id);
          return created;
        });
        if (wantsSse(ctx)) {
          const send = startSse(ctx.res);
          const final = await d.provisioner.provision(chat.id, (e) => send("progress", e));
          send(final.status === "ready" ? "ready" : "failed", { ...view(final), warnings: d.warnings?.() ?? [] });
          ctx.res.end();
          return undefined;
        }
        const final = await d.provisioner.provision(chat.id);
        if (final.status !== "ready") throw new HttpError(500, "provision_failed", `Provisioning chat ${chat.id} failed: ${final.error}`);
        return new Reply(201, { ...view(final), warnings: d.warnings?.() ?? [] });
      },
    },
    {
      method: "GET",
      path: "/v1/chats",
      handler: (ctx) => {
        auth(ctx);
        const all = ctx.url.searchParams.get("all") === "1";
        return { chats: d.store.listChats(all).map(view) };
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
        d.store.setBudget(chat.id, body.budgetTokens);
        return view(d.store.getChat(chat.id)!);
      },
    },
    {
      method: "DELETE",
      path: "/v1/chats/:id",
      handler: async (ctx) => {
        auth(ctx);
        const chat = chatParam(ctx);
        const purge = ctx.url.searchParams.get("purge") === "1";
        if (chat.status !== "deleted") {
          // Deleted first, so no queued turn of this chat starts while it goes away.
          d.store.markDeleted(chat.id, null, false);
          await d.warm?.evict(chat.id, "chat deleted");
        }
        // A repeated delete (e.g. a Pulumi retry) runs the removal again: one that failed
        // half-way is finished, and remove() is a no-op once nothing of the chat is left.
        // The archive path is recorded only once the archive exists.
        let archivePath = chat.archivePath;
        const archiveTo = d.onDelete === "archive" ? join(d.dataDir, "archives", `${chat.id}-${Date.now()}.tar.gz`) : undefined;
        try {
          const { archived } = await d.host.remove(chat.id, archiveTo);
          if (archived && archiveTo) {
            archivePath = archiveTo;
            d.store.markDeleted(chat.id, archivePath, false);
          }
        } catch (err) {
          throw new HttpError(500, "delete_failed", `Chat ${chat.id} is marked deleted but removing its workspace failed: ${(err as Error).message}`);
        }
        if (purge) d.store.markDeleted(chat.id, archivePath, true);
        return { id: chat.id, deleted: true, purged: purge, archivePath };
      },
    },
    {
      method: "GET",
      path: "/v1/chats/:id/messages",
      handler: (ctx) => {
        auth(ctx);
        const chat = chatParam(ctx);
        return {
          messages: d.store.listMessages(chat.id).map((m) => ({ turnId: m.turnId, role: m.role, sender: m.sender, text: m.text, at: new Date(m.createdAt).toISOString() })),
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
        const key = idempotencyKey(ctx);
        const hash = requestHash(body);
        const prior = key ? d.store.idempotent(`turn:${chat.id}`, key) : undefined;
        if (key && prior) {
          // The same message resent (the answer to the first send was lost): the first turn, not a second one.
          if (prior.requestHash !== hash) throw keyReused(key, `turn in chat ${chat.id}`);
          ctx.res.setHeader("idempotent-replayed", "true");
          return new Reply(202, { ...turnView(d.store.getTurn(prior.resultId)!), eventsPath: `/v1/chats/${chat.id}/turns/${prior.resultId}/events` });
        }
        if (chat.status !== "ready") throw conflict(`Chat ${chat.id} is ${chat.status}; turns can only be sent to a ready chat.`);
        const turn = d.store.enqueueTurn(chat.id, body.text, body.sender ?? null, key ? { key, requestHash: hash } : undefined);
        d.engine.kick();
        return new Reply(202, { ...turnView(d.store.getTurn(turn.id)!), eventsPath: `/v1/chats/${chat.id}/turns/${turn.id}/events` });
      },
    },
    {
      method: "GET",
      path: "/v1/chats/:id/turns",
      handler: (ctx) => {
        auth(ctx);
        const chat = chatParam(ctx);
        return { turns: d.store.listTurns(chat.id).map(turnView) };
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
        const send = startSse(ctx.res);
        const finish = () => {
          send("turn", turnView(d.store.getTurn(turn.id)!));
          ctx.res.end();
        };
        // Subscribe before reading the state, so nothing between the two is missed.
        const unsubscribe = d.events.subscribe(turn.id, (e: TurnEvent) => {
          if (e.type === "done") {
            unsubscribe();
            finish();
          } else send(e.type, e);
        });
        ctx.res.on("close", unsubscribe);
        const now = d.store.getTurn(turn.id)!;
        if (FINISHED.has(now.status)) {
          unsubscribe();
          finish();
        } else send("status", { type: "status", status: now.status });
        return undefined;
      },
    },
  ];
}
