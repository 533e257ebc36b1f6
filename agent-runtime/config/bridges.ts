import { z } from "zod";
import { toolRule } from "./turns.js";
import { BRIDGE_SECRET_FILES, CHAT_ID_PATTERN, runtimeBridgeSecretPath } from "../host/contract.js";

const chatId = z.string().regex(CHAT_ID_PATTERN, "a picortex chat id: 2-24 lowercase letters, digits and single hyphens, starting with a letter");

/** A bot token as @BotFather gives it: `<bot id>:<secret>`. */
export const TELEGRAM_TOKEN_SHAPE = /^\d{3,20}:[A-Za-z0-9_-]{20,100}$/;
/** The webhook's shared HMAC secret: at least this many characters. */
export const WEBHOOK_SECRET_MIN = 32;

/** A plain http(s) origin with an optional path: no credentials, query or fragment (it is shown in chats). */
const portalUrl = z.string().superRefine((u, ctx) => {
  let p: URL;
  try {
    p = new URL(u);
  } catch {
    ctx.addIssue({ code: "custom", message: `${JSON.stringify(u)} is not a URL: write the runtime's base URL with its scheme, e.g. https://picortex.example.ts.net` });
    return;
  }
  if ((p.protocol !== "https:" && p.protocol !== "http:") || p.username || p.password || p.search || p.hash)
    ctx.addIssue({ code: "custom", message: "an http(s) URL without credentials, query or fragment, e.g. https://picortex.example.ts.net" });
  else if (/\/portal\/?$/.test(p.pathname))
    ctx.addIssue({ code: "custom", message: "the runtime's base URL, without /portal (the link adds /portal/chats/…), e.g. https://picortex.example.ts.net" });
});

const absolutePath = z.string().refine((p) => p.startsWith("/"), "must be an absolute path");
const replyMode = z.enum(["addressed", "all"]);

/** Telegram group (or private chat) id as Telegram writes it, e.g. "-1001234567890". */
const telegramChatId = z.string().regex(/^-?\d{1,20}$/, 'a Telegram chat id such as "-1001234567890"');
/**
 * A chat id in a list, where `pulumi config set --path …[0] -- -100…` stores a number: taken as
 * its decimal string. (Telegram's ids fit in 52 bits, so a JSON number holds them exactly.)
 */
const telegramChatIdValue = z.union([z.number().int().safe(), z.string()]).transform(String).pipe(telegramChatId);
/** A webhook sender id; a number (from `pulumi config set --path`) is taken as its decimal string. */
const webhookSenderId = z.union([z.number().int().safe(), z.string()]).transform(String).pipe(z.string().min(1).max(128));

export const telegramBridgeSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** File holding the bot token (the systemd credential on a host); never in config, argv or logs. */
    tokenFile: absolutePath.optional(),
    /** Bot API root; the tests point it at a loopback fake. */
    apiRoot: z.string().url().default("https://api.telegram.org"),
    /** Long-polling timeout (getUpdates `timeout`). */
    pollTimeoutSeconds: z.number().int().min(0).max(50).default(25),
    /** `any`: every group the bot is added to gets a chat; a list: only these Telegram chat ids. */
    allowChats: z.union([z.literal("any"), z.array(telegramChatIdValue)], { error: '"any", or a list of Telegram chat ids such as ["-1001234567890"]' }).default("any"),
    /** Telegram chat id → picortex chat id (default: tg-<id>, with `n` for a negative id). */
    chatMap: z.record(telegramChatId, chatId).default({}),
    /** Default reply mode of a new chat: answer only when addressed, or to every message. */
    defaultMode: replyMode.default("addressed"),
    /** Telegram user ids that may use /pause, /resume, /budget and /mode in any chat (besides group admins). */
    adminUserIds: z.array(z.number().int()).default([]),
    /** Minimum spacing of messages to one chat (Telegram allows about 1/s per chat). */
    minIntervalMs: z.number().int().min(0).max(60_000).default(1000),
    /**
     * Telegram chat id (or "*" for every chat) → the Telegram user ids whose `/approve` lets a
     * turn run a tool its rules do not allow. A chat with approvers asks them; without, such a
     * tool is denied (turns.permissionMode as configured).
     */
    approvers: z
      .record(z.string().regex(/^(-?\d{1,20}|\*)$/, 'a Telegram chat id such as "-1001234567890", or "*" for every chat'), z.array(z.number().int().positive()).max(20))
      .default({}),
  })
  .strict();

export const webhookBridgeSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** File holding the shared HMAC secret (at least 32 characters). */
    secretFile: absolutePath.optional(),
    /** Where replies are POSTed (signed the same way). Without it replies are only in the chat history. */
    callbackUrl: z.string().url().optional(),
    /** Accepted clock difference of a request's timestamp. */
    windowSeconds: z.number().int().min(5).max(3600).default(300),
    defaultMode: replyMode.default("addressed"),
    /** Conversation id → picortex chat id (default: wh-<sanitised id>). */
    chatMap: z.record(z.string().min(1).max(128), chatId).default({}),
    /** Conversation id (or "*") → the sender ids (as the provider sends `sender.id`) that may approve tools there. */
    approvers: z.record(z.string().min(1).max(128), z.array(webhookSenderId).max(20)).default({}),
  })
  .strict();

export const bridgesConfigSchema = z
  .object({
    telegram: telegramBridgeSchema.prefault({}),
    webhook: webhookBridgeSchema.prefault({}),
    /** Budget (tokens) of a chat the bridge creates; default: turns.defaultBudgetTokens. */
    budgetTokens: z.number().int().min(1).optional(),
    /**
     * Tokens each member's messages may spend in one chat (the turns they trigger), inside the
     * chat's budget; unset: no per-member cap. An admin changes it per chat with /cap.
     */
    memberBudgetTokens: z.number().int().min(1).optional(),
    /** Delivery attempts of one reply chunk before it is marked failed (429s do not count). */
    maxAttempts: z.number().int().min(1).max(100).default(12),
    /** How long a tool approval waits for an approver before the tool is denied. */
    approvalTimeoutSeconds: z.number().int().min(10).max(3600).default(300),
    /**
     * In a chat with approvers, the tools that still run without asking (Claude Code rules, as
     * turns.allowedTools); unset: turns.allowedTools. E.g. ["Read", "Glob", "Grep"] asks for every
     * command and edit.
     */
    toolsWithoutApproval: z.array(toolRule).max(100).optional(),
    /**
     * The runtime's URL as group members open it (e.g. https://picortex.<tailnet>.ts.net): each
     * reply's receipt then ends with a link to the chat in the portal's chat view. Unset: no link.
     */
    portalUrl: portalUrl.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.telegram.enabled && !c.telegram.tokenFile)
      ctx.addIssue({ code: "custom", path: ["telegram", "tokenFile"], message: "bridges.telegram.enabled needs tokenFile: the file holding the bot token from @BotFather (mode 0600)" });
    if (c.webhook.enabled && !c.webhook.secretFile)
      ctx.addIssue({ code: "custom", path: ["webhook", "secretFile"], message: "bridges.webhook.enabled needs secretFile: a file holding a random secret of at least 32 characters (e.g. `openssl rand -hex 32`)" });
  });

export type BridgesConfig = z.infer<typeof bridgesConfigSchema>;
export type TelegramBridgeConfig = z.infer<typeof telegramBridgeSchema>;
export type WebhookBridgeConfig = z.infer<typeof webhookBridgeSchema>;
export type ReplyMode = z.infer<typeof replyMode>;

/**
 * The sender ids that may approve tools in a platform chat: the list under its id (or, for a
 * group that moved, under an id it had before, newest first), else the "*" list.
 */
export function approverIds(map: Record<string, readonly (string | number)[]>, platformChatId: string | readonly string[], prefix: "tg:" | "wh:"): string[] {
  const has = (k: string) => Object.prototype.hasOwnProperty.call(map, k);
  const ids = typeof platformChatId === "string" ? [platformChatId] : platformChatId;
  const key = ids.find(has) ?? (has("*") ? "*" : undefined);
  return (key === undefined ? [] : map[key]!).map((id) => `${prefix}${id}`);
}

/**
 * The bridges as a workspace stack configures them (`picortex:bridges`): the runtime's own
 * settings without what the deploy decides (whether a bridge is on, and where its secret
 * file is): a bridge is on exactly when its secret is set in the stack.
 */
export const stackBridgesSchema = z
  .object({
    telegram: telegramBridgeSchema.omit({ enabled: true, tokenFile: true }).partial().strict().optional(),
    webhook: webhookBridgeSchema.omit({ enabled: true, secretFile: true }).partial().strict().optional(),
    budgetTokens: z.number().int().min(1).optional(),
    memberBudgetTokens: z.number().int().min(1).optional(),
    maxAttempts: z.number().int().min(1).max(100).optional(),
    approvalTimeoutSeconds: z.number().int().min(10).max(3600).optional(),
    toolsWithoutApproval: z.array(toolRule).max(100).optional(),
    portalUrl: portalUrl.optional(),
  })
  .strict();
export type StackBridges = z.infer<typeof stackBridgesSchema>;

/**
 * The runtime's `bridges` section for a host: the stack's settings, each bridge on when its
 * secret is deployed (`deployed`), reading it where the runtime unit's credential puts it.
 * Parsed with the runtime's schema, so a deploy can never ship a section the runtime refuses.
 */
export function hostBridgesConfig(settings: StackBridges, deployed: (secret: keyof typeof BRIDGE_SECRET_FILES) => boolean): BridgesConfig {
  const { telegram, webhook, ...rest } = settings;
  const on = { telegram: deployed("telegramBotToken"), webhook: deployed("webhookSecret") };
  return bridgesConfigSchema.parse({
    ...rest,
    telegram: { ...telegram, enabled: on.telegram, ...(on.telegram ? { tokenFile: runtimeBridgeSecretPath("telegramBotToken") } : {}) },
    webhook: { ...webhook, enabled: on.webhook, ...(on.webhook ? { secretFile: runtimeBridgeSecretPath("webhookSecret") } : {}) },
  });
}
