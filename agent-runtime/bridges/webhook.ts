import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { WEBHOOK_SECRET_MIN, type WebhookBridgeConfig } from "../config/bridges.js";
import { HttpError, badRequest, conflict, tooManyRequests, unauthorized } from "../http/errors.js";
import { CredentialLimiter } from "../http/rate-limit.js";
import { Reply, readBody, type Route } from "../http/router.js";
import type { Logger } from "../log.js";
import { DeliveryError, type BridgeCore, type Deliverer } from "./core.js";
import { commandOf, defaultChatId } from "./format.js";
import type { OutboxRow } from "./store.js";

export const WEBHOOK_PATH = "/v1/bridges/webhook";
export const TIMESTAMP_HEADER = "x-picortex-timestamp";
export const SIGNATURE_HEADER = "x-picortex-signature";
/** Longest message a webhook reply chunk carries (SMS gateways split further themselves). */
export const WEBHOOK_MAX_MESSAGE = 4000;

/** `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`: the one signature both directions use. */
export function signWebhook(secret: string, timestamp: string, body: string | Buffer): string {
  return "sha256=" + createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex");
}

/** Constant-time check of a signature header against the expected one. */
export function signatureMatches(secret: string, timestamp: string, body: Buffer, header: string | undefined): boolean {
  if (!header) return false;
  const want = Buffer.from(signWebhook(secret, timestamp, body));
  const got = Buffer.from(header);
  return got.length === want.length && timingSafeEqual(got, want);
}

export function readWebhookSecret(file: string): string {
  let secret: string;
  try {
    secret = readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new Error(`cannot read the webhook secret file ${file} (${(err as NodeJS.ErrnoException).code ?? "error"}); write a random secret there, e.g. \`openssl rand -hex 32 > ${file}\`.`);
  }
  if (secret.length < WEBHOOK_SECRET_MIN) throw new Error(`the webhook secret in ${file} is shorter than 32 characters; use e.g. \`openssl rand -hex 32\`.`);
  return secret;
}

/** Names and titles: one line, no C0 or C1 control character (direction marks stay: RTL names use them; the CLI cleans them). */
const printable = (max: number) =>
  z.string().min(1).max(max).regex(/^[^\u0000-\u001f\u007f-\u009f]+$/, "must be printable text on one line: no control characters (U+0000-001F, U+007F-009F)");
/**
 * Ids (the message's, the conversation's, the sender's): printed by `picortex bridges` and
 * used as keys, so no control character (C0, DEL, C1 such as CSI U+009B) and no direction or
 * invisible character either: two ids that look the same are the same id.
 */
const webhookId = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(
      /^[^\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]+$/,
      "must be printable text on one line: no control characters (U+0000-001F, U+007F-009F) and no direction or invisible characters (U+061C, U+200B-200F, U+2028-202E, U+2066-2069, U+FEFF)",
    );

/** The one JSON shape a provider POSTs (docs/bridges.md). */
export const webhookMessageSchema = z
  .object({
    /** The provider's unique message id: the dedup and replay key. */
    id: webhookId(128),
    conversation: z.object({ id: webhookId(128), title: printable(256).optional(), type: z.enum(["group", "direct"]).default("group") }).strict(),
    sender: z.object({ id: webhookId(128), name: printable(256), admin: z.boolean().default(false) }).strict(),
    text: z.string().min(1).max(16_000).refine((t) => !t.includes("\u0000"), "text must not contain NUL"),
    /** The provider saw the agent addressed (a mention in its own syntax); commands and direct chats always are. */
    addressed: z.boolean().default(false),
    /** An edit of the message `editOf`: replaces it if its turn has not started, else a marked follow-up; never re-runs a turn. */
    edit: z.boolean().default(false),
    editOf: webhookId(128).optional(),
  })
  .strict();

/**
 * A signed webhook for texting providers that push (SMS/iMessage gateways, Slack, …).
 * Inbound: HMAC over timestamp + body, a timestamp window, and the message id as a durable
 * nonce (a replay is refused with 409). Outbound: replies POSTed to the callback URL, signed
 * the same way, with an idempotency key per chunk.
 */
export class WebhookBridge implements Deliverer {
  readonly platform = "webhook" as const;
  readonly maxMessage = WEBHOOK_MAX_MESSAGE;
  private readonly limiter = new CredentialLimiter("webhook");

  constructor(
    private readonly cfg: WebhookBridgeConfig,
    private readonly secret: string,
    private readonly core: BridgeCore,
    private readonly log: Logger,
    private readonly now: () => number = () => Date.now(),
  ) {
    core.register(this, { defaultMode: cfg.defaultMode, chatIdFor: (id) => cfg.chatMap[id] ?? defaultChatId("webhook", id) });
  }

  routes(): Route[] {
    return [
      {
        method: "POST",
        path: WEBHOOK_PATH,
        handler: async (ctx) => {
          const raw = await readBody(ctx.req, 64 * 1024);
          const ts = String(ctx.req.headers[TIMESTAMP_HEADER] ?? "");
          const sig = ctx.req.headers[SIGNATURE_HEADER];
          if (!/^\d{9,11}$/.test(ts) || !signatureMatches(this.secret, ts, raw, typeof sig === "string" ? sig : undefined)) {
            const retry = this.limiter.refuse(ctx.req.socket.remoteAddress);
            if (retry > 0) throw tooManyRequests(retry);
            throw unauthorized(`Missing or invalid webhook signature: send ${TIMESTAMP_HEADER} (unix seconds) and ${SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>.`);
          }
          const skew = Math.abs(this.now() / 1000 - Number(ts));
          if (skew > this.cfg.windowSeconds)
            throw new HttpError(401, "stale_timestamp", `The request's timestamp is ${Math.round(skew)} s away from this runtime's clock (window ${this.cfg.windowSeconds} s); sign with the current time.`);
          let json: unknown;
          try {
            json = JSON.parse(raw.toString("utf8"));
          } catch {
            throw badRequest("Request body is not valid JSON.");
          }
          const parsed = webhookMessageSchema.safeParse(json);
          if (!parsed.success) {
            const first = parsed.error.issues[0];
            throw badRequest(`Invalid webhook message${first ? `: ${first.path.join(".") || "(root)"}: ${first.message}` : ""}.`);
          }
          const m = parsed.data;
          const command = m.edit ? undefined : commandOf(m.text, "picortex");
          const result = this.core.ingest({
            platform: "webhook",
            updateId: m.id,
            platformChatId: m.conversation.id,
            chatTitle: m.conversation.title ?? null,
            messageId: m.edit && m.editOf ? m.editOf : m.id,
            senderId: `wh:${m.sender.id}`,
            senderName: m.sender.name,
            text: m.text,
            kind: m.edit ? "edit" : "message",
            addressed: !m.edit && (m.addressed || !!command || m.conversation.type === "direct"),
            command,
            senderIsAdmin: m.sender.admin,
          });
          if (result.status === "duplicate") throw conflict(`Message ${m.id} was already accepted; a replayed or repeated request is refused.`);
          return new Reply(202, { status: result.status, chatId: result.chatId ?? null, turnId: result.turnId ?? null });
        },
      },
    ];
  }

  async send(row: OutboxRow): Promise<string> {
    const key = `${row.turn_id}:${row.chunk}`;
    if (!this.cfg.callbackUrl) return key; // replies stay in the chat history only
    const body = JSON.stringify({
      type: "reply",
      id: key,
      conversationId: row.platform_chat_id,
      inReplyTo: row.reply_to,
      turnId: row.turn_id,
      chunk: row.chunk,
      chunks: row.chunks,
      text: row.text,
    });
    const ts = String(Math.floor(this.now() / 1000));
    let res: Response;
    try {
      res = await fetch(this.cfg.callbackUrl, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": key, [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: signWebhook(this.secret, ts, body) },
        body,
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new DeliveryError(`callback unreachable: ${(err as Error).message}`);
    }
    const text = await res.text().catch(() => "");
    if (res.status === 429) {
      const after = Number(res.headers.get("retry-after") ?? "1");
      throw new DeliveryError("callback rate limited (429)", (Number.isFinite(after) && after >= 0 ? after : 1) * 1000);
    }
    if (!res.ok) throw new DeliveryError(`callback answered ${res.status}`, undefined, res.status >= 400 && res.status < 500 && res.status !== 408);
    try {
      const id = (JSON.parse(text) as { id?: unknown }).id;
      return typeof id === "string" && id ? id.slice(0, 128) : key;
    } catch {
      return key;
    }
  }
}
