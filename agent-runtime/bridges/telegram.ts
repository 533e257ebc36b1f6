import { readFileSync } from "node:fs";
import { Api, GrammyError, HttpError, InputFile } from "grammy";
import { TELEGRAM_TOKEN_SHAPE, type TelegramBridgeConfig } from "../config/bridges.js";
import type { Logger } from "../log.js";
import { DeliveryError, type BridgeCore, type Deliverer, type InboundMessage, type MessageState } from "./core.js";
import { TELEGRAM_MAX_MESSAGE, cleanName, commandOf, defaultChatId, isAddressed, splitMessage, type TelegramEntity } from "./format.js";
import type { OutboxRow } from "./store.js";
import { PicortexError } from "../errors.js";

/** A bot token is `<bot id>:<secret>`; checked without ever echoing it. */
const TOKEN_SHAPE = TELEGRAM_TOKEN_SHAPE;

export class TelegramConfigError extends PicortexError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("config", "config", message, options);
  }
}

/** Reads the bot token from its file (the systemd credential on a host). The message never contains the token. */
export function readBotToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new TelegramConfigError(`cannot read the Telegram bot token file ${file} (${(err as NodeJS.ErrnoException).code ?? "error"}); write the token from @BotFather there (mode 0600).`);
  }
  if (!TOKEN_SHAPE.test(token)) throw new TelegramConfigError(`${file} does not hold a Telegram bot token (expected <digits>:<secret> as @BotFather gives it).`);
  return token;
}

export const PRIVACY_NOTICE =
  "I can only see messages that mention me, reply to me or are commands, because this bot has Telegram's privacy mode on. " +
  "To let me read the whole conversation as context: in @BotFather send /setprivacy, pick this bot, choose Disable, " +
  "then remove me from this group and add me again (Telegram applies the change only on re-adding).";

export interface TelegramStatus {
  state: "starting" | "polling" | "conflict" | "unauthorized" | "error" | "stopped";
  message?: string;
  username?: string;
  botId?: number;
  privacyMode?: boolean;
}

type TgUser = { id: number; is_bot?: boolean; first_name?: string; last_name?: string; username?: string };
type TgMessage = {
  message_id: number;
  chat: { id: number; type: string; title?: string };
  from?: TgUser;
  /** Set when the message was sent on behalf of a chat (a channel, or an anonymous group admin). */
  sender_chat?: { id: number; type: string; title?: string; username?: string };
  text?: string;
  caption?: string;
  entities?: TelegramEntity[];
  caption_entities?: TelegramEntity[];
  reply_to_message?: { from?: TgUser };
  new_chat_members?: TgUser[];
  left_chat_member?: TgUser;
  new_chat_title?: string;
  migrate_to_chat_id?: number;
};
type TgUpdate = { update_id: number; message?: TgMessage; edited_message?: TgMessage; my_chat_member?: { chat: TgMessage["chat"]; new_chat_member: { status: string } } };

const displayName = (u?: TgUser) => (u ? [u.first_name, u.last_name].filter(Boolean).join(" ") || u.username || String(u.id) : "unknown");
const OFFSET_KEY = "telegram.offset";

/**
 * Telegram long polling (grammY's Bot API client). The offset lives in SQLite and moves in
 * the same transaction that records an update, so getUpdates confirms an update to Telegram
 * only after its turn is queued.
 */
export class TelegramBridge implements Deliverer {
  readonly platform = "telegram" as const;
  readonly maxMessage = TELEGRAM_MAX_MESSAGE;
  /** A document's caption (Bot API limit). */
  readonly maxCaption = 1024;
  readonly api: Api;
  status: TelegramStatus = { state: "starting" };
  private me: { id: number; username: string; canReadAll: boolean } | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly adminCache = new Map<string, { at: number; ids: Set<number> }>();

  constructor(
    private readonly cfg: TelegramBridgeConfig,
    token: string,
    private readonly core: BridgeCore,
    private readonly log: Logger,
  ) {
    this.api = new Api(token, { apiRoot: cfg.apiRoot.replace(/\/+$/, "") });
    core.register(this, {
      defaultMode: cfg.defaultMode,
      chatIdFor: (id) => (cfg.allowChats === "any" || cfg.allowChats.includes(id) ? (cfg.chatMap[id] ?? defaultChatId("telegram", id)) : undefined),
    });
  }

  /** grammY types its signal parameter with the abort-controller shim; Node's is the same at run time. */
  private get apiSignal(): never {
    return this.abort.signal as never;
  }

  start(): void {
    this.loop = this.pollLoop();
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.loop;
    this.status = { ...this.status, state: "stopped" };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.abort.signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
    });
  }

  private async pollLoop(): Promise<void> {
    let backoff = 1000;
    while (!this.abort.signal.aborted) {
      try {
        if (!this.me) {
          const me = await this.api.getMe(this.apiSignal);
          this.me = { id: me.id, username: me.username, canReadAll: !!me.can_read_all_group_messages };
          this.status = { state: "polling", username: me.username, botId: me.id, privacyMode: !this.me.canReadAll };
          if (!this.me.canReadAll) this.log.warn(`Telegram bot @${me.username} has privacy mode on: ${PRIVACY_NOTICE}`);
        }
        const offset = Number(this.core.store.getState(OFFSET_KEY) ?? "0");
        const updates = (await this.api.getUpdates(
          { offset, timeout: this.cfg.pollTimeoutSeconds, allowed_updates: ["message", "edited_message", "my_chat_member"] },
          this.apiSignal,
        )) as unknown as TgUpdate[];
        this.status = { ...this.status, state: "polling", message: undefined };
        backoff = 1000;
        for (const u of updates) await this.handle(u);
      } catch (err) {
        if (this.abort.signal.aborted) return;
        let wait = backoff;
        backoff = Math.min(backoff * 2, 30_000);
        if (err instanceof GrammyError && err.error_code === 409) {
          const message =
            "Another process is polling this bot token (Telegram answered 409 Conflict): only one runtime per bot can receive its messages. Stop the other runtime or bot, or give this one its own bot token.";
          if (this.status.state !== "conflict") this.log.error(message);
          this.status = { ...this.status, state: "conflict", message };
          wait = 5000;
        } else if (err instanceof GrammyError && err.error_code === 401) {
          const message = "Telegram rejected the bot token (401 Unauthorized): put the current token from @BotFather in bridges.telegram.tokenFile and restart.";
          if (this.status.state !== "unauthorized") this.log.error(message);
          this.status = { ...this.status, state: "unauthorized", message };
          wait = 60_000;
        } else if (err instanceof GrammyError && err.parameters.retry_after) {
          wait = err.parameters.retry_after * 1000;
        } else {
          const message = err instanceof HttpError ? `cannot reach the Telegram Bot API: ${err.message}` : String((err as Error).message ?? err);
          this.status = { ...this.status, state: "error", message };
          this.log.warn("telegram polling failed; retrying", { error: message, retryInMs: wait });
        }
        await this.sleep(wait);
      }
    }
  }

  private async isAdmin(chatId: number, chatType: string, userId: number): Promise<boolean> {
    if (this.cfg.adminUserIds.includes(userId)) return true;
    if (chatType === "private") return true;
    const key = String(chatId);
    const cached = this.adminCache.get(key);
    if (cached && Date.now() - cached.at < 60_000) return cached.ids.has(userId);
    try {
      const admins = await this.api.getChatAdministrators(chatId, this.apiSignal);
      const ids = new Set(admins.map((a) => a.user.id));
      this.adminCache.set(key, { at: Date.now(), ids });
      return ids.has(userId);
    } catch {
      return false;
    }
  }

  /** One update: recorded (and its turn queued) with the offset in one transaction. */
  async handle(u: TgUpdate): Promise<void> {
    const me = this.me!;
    const commitOffset = () => this.core.store.setState(OFFSET_KEY, String(u.update_id + 1));
    const msg = u.message ?? u.edited_message;
    if (!msg) {
      if (u.my_chat_member && ["member", "administrator"].includes(u.my_chat_member.new_chat_member.status) && u.my_chat_member.chat.type !== "private") {
        this.core.store.tx(() => {
          commitOffset();
          this.privacyNotice(String(u.my_chat_member!.chat.id), `my_${u.update_id}`);
        });
        this.core.wake();
      } else commitOffset();
      return;
    }
    const chatId = String(msg.chat.id);
    if (msg.migrate_to_chat_id) {
      this.core.store.tx(() => {
        commitOffset();
        this.core.store.moveLink("telegram", chatId, String(msg.migrate_to_chat_id));
      });
      return;
    }
    const base = {
      platform: "telegram" as const,
      updateId: String(u.update_id),
      platformChatId: chatId,
      chatTitle: msg.chat.title ?? null,
      messageId: String(msg.message_id),
      // Posts on behalf of a chat carry a shared service account in `from` (Channel_Bot,
      // GroupAnonymousBot): the chat they speak for is the sender, or all of them would be one
      // member (one cap, joined split messages across people).
      senderId: msg.sender_chat ? `tgc:${msg.sender_chat.id}` : `tg:${msg.from?.id ?? "?"}`,
      senderName: msg.sender_chat ? msg.sender_chat.title || msg.sender_chat.username || String(msg.sender_chat.id) : displayName(msg.from),
    };
    let m: InboundMessage;
    if (msg.new_chat_members || msg.left_chat_member) {
      const who = msg.new_chat_members ? msg.new_chat_members.map(displayName).join(", ") + " joined" : displayName(msg.left_chat_member) + " left";
      m = { ...base, kind: "member", text: who, addressed: false };
    } else if (msg.new_chat_title) {
      m = { ...base, kind: "rename", text: `renamed the group to ${JSON.stringify(cleanName(msg.new_chat_title, 128))}`, addressed: false };
    } else {
      const text = msg.text ?? msg.caption;
      if (text === undefined) {
        commitOffset();
        return;
      }
      const edit = !!u.edited_message;
      const command = edit ? undefined : commandOf(text, me.username);
      const addressed =
        !edit &&
        isAddressed({ text, entities: msg.entities ?? msg.caption_entities, chatType: msg.chat.type, replyToUserId: msg.reply_to_message?.from?.id, botId: me.id, botUsername: me.username });
      m = {
        ...base,
        // An edit is recorded as context (marked), never re-runs a turn.
        kind: edit ? "edit" : "message",
        text,
        addressed,
        command,
        // Only a group's administrators can post as the group itself (anonymously); a channel never is one.
        senderIsAdmin: !command ? false : msg.sender_chat ? msg.sender_chat.id === msg.chat.id : msg.from ? await this.isAdmin(msg.chat.id, msg.chat.type, msg.from.id) : false,
      };
    }
    const isGroup = msg.chat.type === "group" || msg.chat.type === "supergroup";
    this.core.ingest(m, () => {
      commitOffset();
      if (isGroup) this.privacyNotice(chatId, `first_${u.update_id}`);
    });
  }

  /** Tells a group once, durably, that privacy mode hides its messages (only when it is on). */
  private privacyNotice(chatId: string, key: string): void {
    if (!this.me || this.me.canReadAll) return;
    if (this.cfg.allowChats !== "any" && !this.cfg.allowChats.includes(chatId)) return; // not a group we serve
    const link = this.core.store.getLink("telegram", chatId);
    const noticeKey = `privacy.${chatId}`;
    if (link?.privacy_notice_sent || this.core.store.getState(noticeKey)) return;
    this.core.store.setState(noticeKey, "1");
    this.core.store.enqueueReply(`n_${key}`, "telegram", chatId, null, splitMessage(PRIVACY_NOTICE, this.maxMessage));
  }

  // ---- Deliverer -------------------------------------------------------------

  async send(row: OutboxRow): Promise<string> {
    const reply = row.reply_to ? { reply_parameters: { message_id: Number(row.reply_to), allow_sending_without_reply: true } } : {};
    try {
      if (row.document !== null) {
        const file = new InputFile(Buffer.from(row.document, "utf8"), `reply-${row.turn_id.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 40) || "turn"}.md`);
        return String((await this.api.sendDocument(row.platform_chat_id, file, { caption: row.text, ...reply }, this.apiSignal)).message_id);
      }
      return String((await this.api.sendMessage(row.platform_chat_id, row.text, reply, this.apiSignal)).message_id);
    } catch (err) {
      throw toDeliveryError(err, this.core, row);
    }
  }

  async mark(chatId: string, messageId: string, state: MessageState): Promise<void> {
    const emoji = ({ seen: "👀", working: "✍", done: "👍", failed: "👎" } as const)[state];
    await this.api.setMessageReaction(chatId, Number(messageId), [{ type: "emoji", emoji }], {}, this.apiSignal);
  }

  async typing(chatId: string): Promise<void> {
    await this.api.sendChatAction(chatId, "typing", {}, this.apiSignal);
  }

  async notice(chatId: string, text: string, editOf?: string): Promise<string | undefined> {
    if (editOf) {
      await this.api.editMessageText(chatId, Number(editOf), text, {}, this.apiSignal);
      return editOf;
    }
    return String((await this.api.sendMessage(chatId, text, {}, this.apiSignal)).message_id);
  }
}

function toDeliveryError(err: unknown, core: BridgeCore, row: OutboxRow): DeliveryError {
  if (err instanceof GrammyError) {
    if (err.parameters.retry_after !== undefined) return new DeliveryError(`429: ${err.description}`, err.parameters.retry_after * 1000);
    if (err.parameters.migrate_to_chat_id) {
      core.store.moveLink("telegram", row.platform_chat_id, String(err.parameters.migrate_to_chat_id));
      return new DeliveryError("the group became a supergroup; resending to its new id");
    }
    // 400 chat not found / 403 bot removed or blocked: retrying cannot help.
    return new DeliveryError(`${err.error_code}: ${err.description}`, undefined, err.error_code === 403 || (err.error_code === 400 && !/too many/i.test(err.description)));
  }
  if (err instanceof HttpError) return new DeliveryError(`network: ${err.message}`);
  return new DeliveryError(String((err as Error)?.message ?? err));
}
