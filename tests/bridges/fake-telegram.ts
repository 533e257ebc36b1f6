/**
 * A loopback fake of the Telegram Bot API, enough for grammY and the bridge:
 * getMe, getUpdates (offset confirms, long-poll timeout, 409 for a second poller),
 * sendMessage, sendDocument (multipart, as grammY uploads an InputFile), editMessageText, sendChatAction,
 * setMessageReaction, getChatAdministrators, deleteWebhook.
 *
 *   const tg = await startFakeTelegram({ token });
 *   tg.onSend = (body, n) => (n === 1 ? { status: 429, retryAfter: 1 } : "ok");
 *   tg.groupMessage(-100123, { id: 7, name: "Alice" }, "@picortex_bot hi");
 *   await tg.waitFor(() => tg.sent.length >= 1);
 *
 * A sendMessage answered "hang" is never confirmed and not recorded: for the bridge it is
 * a message the platform never acknowledged, as when the runtime dies mid-request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { Readable } from "node:stream";

export interface FakeUser {
  id: number;
  name: string;
  username?: string;
}

export interface SentMessage {
  chatId: string;
  messageId: number;
  text: string;
  replyTo?: number;
  /** sendDocument: the file's name and content (`text` is the caption). */
  document?: { name: string; content: string };
}

export type SendScript = "ok" | "hang" | { status: number; retryAfter?: number; description?: string };

export interface FakeTelegram {
  url: string;
  bot: { id: number; username: string };
  /** Delivered (confirmed) messages, in order. */
  sent: SentMessage[];
  edits: Array<{ chatId: string; messageId: number; text: string }>;
  chatActions: Array<{ chatId: string; action: string }>;
  /** setMessageReaction calls: the emoji set on a message, in order. */
  reactions: Array<{ chatId: string; messageId: number; emoji: string }>;
  /** Every sendMessage attempt (including refused and hung ones). */
  sendAttempts: Array<{ chatId: string; text: string; outcome: string }>;
  /** getUpdates requests: offset and whether 409 was returned. */
  polls: Array<{ offset: number; conflict: boolean }>;
  /** Decides each sendMessage's fate; n counts attempts from 1. */
  onSend: (body: Record<string, unknown>, n: number) => SendScript;
  admins: Map<string, number[]>;
  canReadAllGroupMessages: boolean;
  /** Queues an update; returns its update_id. */
  push(update: Record<string, unknown>): number;
  groupMessage(chatId: number, from: FakeUser, text: string, extra?: Record<string, unknown>): { updateId: number; messageId: number };
  /** Updates not yet confirmed by an offset. */
  pending(): number;
  waitFor(pred: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      try {
        resolve(raw ? JSON.parse(raw) : {});
      } catch (err) {
        reject(err);
      }
    });
    req.on("error", reject);
  });
}

export async function startFakeTelegram(o: { token: string; bot?: { id: number; username: string }; canReadAll?: boolean }): Promise<FakeTelegram> {
  const bot = o.bot ?? { id: 777000111, username: "picortex_test_bot" };
  const updates: Array<Record<string, unknown> & { update_id: number }> = [];
  let nextUpdate = 1000;
  let nextMessage = 1;
  let sendCount = 0;
  let pendingPoll: { res: ServerResponse; wake: () => void } | undefined;
  const sockets = new Set<Socket>();
  const hung = new Set<ServerResponse>();

  const fake: FakeTelegram = {
    url: "",
    bot,
    sent: [],
    edits: [],
    chatActions: [],
    reactions: [],
    sendAttempts: [],
    polls: [],
    onSend: () => "ok",
    admins: new Map(),
    canReadAllGroupMessages: o.canReadAll ?? true,
    push(update) {
      const u = { update_id: nextUpdate++, ...update };
      updates.push(u);
      pendingPoll?.wake();
      return u.update_id;
    },
    groupMessage(chatId, from, text, extra = {}) {
      const messageId = nextMessage++;
      const entities: Array<Record<string, unknown>> = [];
      const re = /@[A-Za-z0-9_]{3,64}/g;
      for (let m; (m = re.exec(text)); ) entities.push({ type: "mention", offset: m.index, length: m[0].length });
      const cmd = /^\/[A-Za-z0-9_@]+/.exec(text);
      if (cmd) entities.unshift({ type: "bot_command", offset: 0, length: cmd[0].length });
      const updateId = fake.push({
        message: {
          message_id: messageId,
          date: Math.floor(Date.now() / 1000),
          chat: { id: chatId, type: chatId < 0 ? "supergroup" : "private", ...(chatId < 0 ? { title: "Test group" } : {}) },
          from: { id: from.id, is_bot: false, first_name: from.name, ...(from.username ? { username: from.username } : {}) },
          text,
          ...(entities.length ? { entities } : {}),
          ...extra,
        },
      });
      return { updateId, messageId };
    },
    pending: () => updates.length,
    async waitFor(pred, timeoutMs = 120_000, what = "condition") {
      const until = Date.now() + timeoutMs;
      while (!pred()) {
        if (Date.now() > until) throw new Error(`fake telegram: timed out waiting for ${what}; sent=${JSON.stringify(fake.sent.map((s) => s.text.slice(0, 60)))}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async close() {
      pendingPoll?.wake();
      for (const r of hung) r.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const ok = (res: ServerResponse, result: unknown) => {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ok: true, result }));
  };
  const fail = (res: ServerResponse, status: number, description: string, parameters?: Record<string, unknown>) => {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify({ ok: false, error_code: status, description, ...(parameters ? { parameters } : {}) }));
  };

  const server: Server = createServer(async (req, res) => {
    const m = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(req.url ?? "");
    if (!m) return fail(res, 404, "Not Found");
    if (m[1] !== o.token) return fail(res, 401, "Unauthorized");
    const method = m[2]!;
    let body: Record<string, unknown>;
    let file: { name: string; content: string } | undefined;
    try {
      if (String(req.headers["content-type"] ?? "").startsWith("multipart/form-data")) {
        // An upload: fields are strings (JSON for objects, as the Bot API takes them), files are Files.
        const form = await new Response(Readable.toWeb(req) as ReadableStream, { headers: { "content-type": String(req.headers["content-type"]) } }).formData();
        body = {};
        for (const [k, v] of form.entries()) {
          if (typeof v === "string") body[k] = /^[[{]/.test(v) ? JSON.parse(v) : v;
          else file = { name: v.name, content: await v.text() };
        }
      } else body = await readJson(req);
    } catch {
      return fail(res, 400, "Bad Request: can't parse the request body");
    }
    switch (method) {
      case "getMe":
        return ok(res, { id: bot.id, is_bot: true, first_name: "picortex", username: bot.username, can_join_groups: true, can_read_all_group_messages: fake.canReadAllGroupMessages, supports_inline_queries: false });
      case "deleteWebhook":
        return ok(res, true);
      case "getUpdates": {
        const offset = Number(body.offset ?? 0);
        if (pendingPoll) {
          fake.polls.push({ offset, conflict: true });
          return fail(res, 409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running");
        }
        fake.polls.push({ offset, conflict: false });
        // An offset confirms every update before it.
        while (updates.length && updates[0]!.update_id < offset) updates.shift();
        const answer = () => ok(res, updates.slice(0, Number(body.limit ?? 100)));
        if (updates.length || !Number(body.timeout)) return answer();
        const timer = setTimeout(() => wake(), Number(body.timeout) * 1000);
        const wake = () => {
          clearTimeout(timer);
          if (pendingPoll?.res === res) pendingPoll = undefined;
          answer();
        };
        pendingPoll = { res, wake };
        res.on("close", () => {
          clearTimeout(timer);
          if (pendingPoll?.res === res) pendingPoll = undefined;
        });
        return;
      }
      case "sendMessage": {
        const n = ++sendCount;
        const chatId = String(body.chat_id);
        const text = String(body.text ?? "");
        const script = fake.onSend(body, n);
        if (script === "hang") {
          fake.sendAttempts.push({ chatId, text, outcome: "hang" });
          hung.add(res);
          res.on("close", () => hung.delete(res));
          return;
        }
        if (typeof script === "object") {
          fake.sendAttempts.push({ chatId, text, outcome: String(script.status) });
          return fail(res, script.status, script.description ?? (script.status === 429 ? `Too Many Requests: retry after ${script.retryAfter ?? 1}` : "Error"), script.retryAfter !== undefined ? { retry_after: script.retryAfter } : undefined);
        }
        if (text.length > 4096) {
          fake.sendAttempts.push({ chatId, text, outcome: "400" });
          return fail(res, 400, "Bad Request: message is too long");
        }
        if (!text.trim()) return fail(res, 400, "Bad Request: message text is empty");
        const messageId = nextMessage++;
        const replyTo = (body.reply_parameters as { message_id?: number } | undefined)?.message_id;
        fake.sendAttempts.push({ chatId, text, outcome: "ok" });
        fake.sent.push({ chatId, messageId, text, ...(replyTo ? { replyTo } : {}) });
        return ok(res, { message_id: messageId, date: Math.floor(Date.now() / 1000), chat: { id: Number(chatId), type: "supergroup" }, text });
      }
      case "sendDocument": {
        const n = ++sendCount;
        const chatId = String(body.chat_id);
        const caption = String(body.caption ?? "");
        const script = fake.onSend({ ...body, text: caption }, n);
        if (script === "hang") {
          fake.sendAttempts.push({ chatId, text: caption, outcome: "hang" });
          hung.add(res);
          res.on("close", () => hung.delete(res));
          return;
        }
        if (typeof script === "object") {
          fake.sendAttempts.push({ chatId, text: caption, outcome: String(script.status) });
          return fail(res, script.status, script.description ?? `Too Many Requests: retry after ${script.retryAfter ?? 1}`, script.retryAfter !== undefined ? { retry_after: script.retryAfter } : undefined);
        }
        if (!file) return fail(res, 400, "Bad Request: there is no document in the request");
        if (caption.length > 1024) {
          fake.sendAttempts.push({ chatId, text: caption, outcome: "400" });
          return fail(res, 400, "Bad Request: message caption is too long");
        }
        const messageId = nextMessage++;
        const replyTo = (body.reply_parameters as { message_id?: number } | undefined)?.message_id;
        fake.sendAttempts.push({ chatId, text: caption, outcome: "ok" });
        fake.sent.push({ chatId, messageId, text: caption, ...(replyTo ? { replyTo } : {}), document: file });
        return ok(res, { message_id: messageId, date: Math.floor(Date.now() / 1000), chat: { id: Number(chatId), type: "supergroup" }, caption, document: { file_name: file.name } });
      }
      case "editMessageText": {
        fake.edits.push({ chatId: String(body.chat_id), messageId: Number(body.message_id), text: String(body.text) });
        return ok(res, { message_id: Number(body.message_id), chat: { id: Number(body.chat_id) }, text: body.text });
      }
      case "sendChatAction":
        fake.chatActions.push({ chatId: String(body.chat_id), action: String(body.action) });
        return ok(res, true);
      case "setMessageReaction": {
        const r = (body.reaction as Array<{ emoji?: string }> | undefined)?.[0];
        fake.reactions.push({ chatId: String(body.chat_id), messageId: Number(body.message_id), emoji: String(r?.emoji ?? "") });
        return ok(res, true);
      }
      case "getChatAdministrators":
        return ok(res, (fake.admins.get(String(body.chat_id)) ?? []).map((id) => ({ status: "administrator", user: { id, is_bot: false, first_name: `admin ${id}` } })));
      default:
        return fail(res, 404, `Not Found: method ${method}`);
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const addr = server.address();
  fake.url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  return fake;
}
