import { createHash } from "node:crypto";
import type { Logger } from "../log.js";
import { CHAT_ID_PATTERN } from "../host/contract.js";
import type { TurnsModule } from "../turns/module.js";
import { PicortexError } from "../errors.js";
import type { CreateResult } from "../turns/chat-service.js";
import { usedTokens } from "../turns/domain.js";
import { activityParts, type TurnActivity } from "../turns/activity.js";
import type { TurnEvent } from "../turns/events.js";
import { cleanName, splitMessage, turnText, type QuotedMessage } from "./format.js";
import type { BridgeStore, LinkRow, OutboxRow, Platform } from "./store.js";
import type { BridgeApprovals } from "./approvals.js";

/** A platform's way out: send one chunk (resolving to the platform's message id), show typing. */
export interface Deliverer {
  readonly platform: Platform;
  /** Max characters of one message on this platform. */
  readonly maxMessage: number;
  /** Max characters of a file's caption, when the platform takes files (`send` of a row with `document`). */
  readonly maxCaption?: number;
  send(row: OutboxRow): Promise<string>;
  typing?(platformChatId: string): Promise<void>;
  /** Best-effort: marks the triggering message seen → working → done/failed (Telegram: a reaction). */
  mark?(platformChatId: string, messageId: string, state: MessageState): Promise<void>;
  /** Best-effort, not durable: provisioning progress and similar notices. */
  notice?(platformChatId: string, text: string, editOf?: string): Promise<string | undefined>;
}

export type MessageState = "seen" | "working" | "done" | "failed";

/** A failed delivery: `retryAfterMs` from the platform (429), `permanent` when retrying cannot help. */
export class DeliveryError extends PicortexError {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    readonly permanent = false,
  ) {
    super(permanent ? "failed" : "unavailable", permanent ? "delivery_failed" : "delivery_retry", message);
  }
}

export interface InboundMessage {
  platform: Platform;
  /** The platform's unique id of this update (Telegram update_id, webhook message id): the dedup key. */
  updateId: string;
  platformChatId: string;
  chatTitle: string | null;
  messageId: string | null;
  /** Platform-prefixed stable sender id ("tg:12345"). */
  senderId: string;
  senderName: string;
  text: string;
  kind: "message" | "edit" | "member" | "rename";
  addressed: boolean;
  command?: { name: string; args: string };
  /** Whether the sender may use admin commands (checked before ingest; async on the platform). */
  senderIsAdmin?: boolean;
}

export type IngestStatus = "duplicate" | "context" | "queued" | "command" | "ignored" | "paused" | "capped";

export interface IngestResult {
  status: IngestStatus;
  turnId?: string;
  chatId?: string;
}

export interface LinkPolicy {
  /** picortex chat id for a platform chat, or undefined when the chat is not allowed. */
  chatIdFor(platformChatId: string): string | undefined;
  defaultMode: "addressed" | "all";
}

const ADMIN_COMMANDS = new Set(["pause", "resume", "budget", "mode", "cap"]);
/**
 * Telegram's clients (and SMS gateways) split a long message into several, sent at once: a
 * message within this many characters of the platform's limit is taken as cut, and the same
 * sender's next message within SPLIT_WINDOW_MS continues it. Its turn waits SPLIT_WAIT_MS
 * for the rest before it may start.
 */
const SPLIT_SLACK = 256;
const SPLIT_WINDOW_MS = 5_000;
const SPLIT_WAIT_MS = 1_500;
const FINISHED = new Set(["done", "failed", "interrupted"]);

/**
 * Platform-independent bridge: inbound messages become turns of the linked chat (created on
 * first contact), finished turns' replies go through a durable outbox. Ingest is one SQLite
 * transaction (dedup row, context, turn, and the caller's offset), so an update is
 * acknowledged only once its turn is queued; the outbox marks a chunk sent only after the
 * platform confirmed it, so a restart resends exactly the unconfirmed chunks.
 */
export class BridgeCore {
  private readonly deliverers = new Map<Platform, Deliverer>();
  private readonly policies = new Map<Platform, LinkPolicy>();
  private readonly lastSent = new Map<string, number>();
  private readonly typingTimers = new Map<string, NodeJS.Timeout>();
  private readonly provisioning = new Set<string>();
  /** Marks of one message go out in order (each waits for the previous). */
  private readonly marks = new Map<string, Promise<void>>();
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  /** Tool approvals decided in the chat (bridges/approvals.ts); set by the module. */
  approvals: BridgeApprovals | undefined;

  constructor(
    readonly store: BridgeStore,
    private readonly turns: Pick<TurnsModule, "chats" | "events">,
    private readonly log: Logger,
    private readonly opts: { budgetTokens?: number; memberBudgetTokens?: number; maxAttempts: number; minIntervalMs: (p: Platform) => number; portalUrl?: string },
  ) {}

  /** A platform's caption limit when it takes files; undefined when it does not. */
  maxCaption(platform: Platform): number | undefined {
    return this.deliverers.get(platform)?.maxCaption;
  }

  /** A platform's message limit (4096 when its bridge is not registered). */
  maxMessage(platform: Platform): number {
    return this.deliverers.get(platform)?.maxMessage ?? 4096;
  }

  register(d: Deliverer, policy: LinkPolicy): void {
    this.deliverers.set(d.platform, d);
    this.policies.set(d.platform, policy);
  }

  start(): void {
    this.unsubscribe = this.turns.events.subscribeAll((turnId, e) => this.onTurnEvent(turnId, e));
    // A chat a crash left `provisioning` is resumed by the turns module's provisioner; a link
    // committed just before a crash whose chat was not created yet gets its chat now.
    for (const link of this.store.listLinks()) {
      if (!this.turns.chats.find(link.chat_id)) this.ensureChat(link);

    }
    this.sweep();
    this.loop = this.deliveryLoop();
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    for (const t of this.typingTimers.values()) clearInterval(t);
    this.wakeUp?.();
    await this.loop;
  }

  // ---- inbound -------------------------------------------------------------

  /**
   * Records one inbound update and, when it addresses the agent (or the chat answers
   * everything), queues a turn carrying the context since the last one. `inTx` runs in the
   * same transaction (the Telegram offset), so a crash never acknowledges an unqueued update.
   */
  ingest(m: InboundMessage, inTx?: () => void): IngestResult {
    const policy = this.policies.get(m.platform);
    if (!policy) throw new Error(`no ${m.platform} bridge registered`);
    let provisionLink: LinkRow | undefined;
    let result: IngestResult;
    try {
      result = this.ingestTx(m, policy, (l) => (provisionLink = l), inTx);
    } catch (err) {
      this.approvals?.afterRollback();
      throw err;
    }
    // An approval decided in that transaction reaches its turn only now that it is committed.
    this.approvals?.afterCommit();
    const cut = result.status === "queued" && this.looksCut(m);
    if (provisionLink) this.ensureChat(provisionLink);
    if (result.status === "queued" && m.kind === "message" && m.messageId) this.mark(m.platform, m.platformChatId, m.messageId, "seen");
    if (result.status === "queued" && !cut) this.turns.chats.kick();
    // Probably the first part of a split message: its turn may start once the rest had time to arrive.
    else if (cut) setTimeout(() => this.turns.chats.kick(), SPLIT_WAIT_MS).unref();
    if (result.status === "command" || result.status === "paused" || result.status === "capped") this.wake();
    return result;
  }

  private ingestTx(m: InboundMessage, policy: LinkPolicy, setProvision: (l: LinkRow) => void, inTx?: () => void): IngestResult {
    let provisionLink: LinkRow | undefined;
    const result = this.store.tx((): IngestResult => {
      inTx?.();
      if (this.store.hasInbound(m.platform, m.updateId)) return { status: "duplicate" };
      let link = this.store.getLink(m.platform, m.platformChatId);
      if (!link) {
        const chatId = policy.chatIdFor(m.platformChatId);
        if (!chatId || !CHAT_ID_PATTERN.test(chatId)) {
          this.record(m, "ignored", null);
          return { status: "ignored" };
        }
        this.store.insertLink({ platform: m.platform, platform_chat_id: m.platformChatId, chat_id: chatId, title: m.chatTitle, mode: policy.defaultMode });
        link = this.store.getLink(m.platform, m.platformChatId)!;
      } else if (m.chatTitle && m.chatTitle !== link.title) {
        this.store.updateLink(m.platform, m.platformChatId, { title: m.chatTitle });
      }
      const chat = this.turns.chats.find(link.chat_id);
      if (!chat || chat.status === "deleted" || chat.status === "failed") provisionLink = link;

      if (m.command?.name === "whoami") {
        this.record(m, "command", null);
        const bare = m.senderId.replace(/^[a-z]+:/, "");
        this.reply(
          `c_${m.platform}_${m.updateId}`,
          m,
          `${cleanName(m.senderName, 32)}: your id is ${m.senderId} (in bridges.${m.platform}.approvers write ${m.platform === "telegram" ? bare : JSON.stringify(bare)}). This chat is ${m.platformChatId}, linked to picortex chat ${link.chat_id}.`,
        );
        return { status: "command", chatId: link.chat_id };
      }
      if (m.command && (m.command.name === "approve" || m.command.name === "deny")) {
        this.record(m, "command", null);
        const text = this.approvals ? this.approvals.command(link, m.senderId, m.command.name, m.command.args) : "Tool approvals are not set up in this runtime.";
        this.reply(`c_${m.platform}_${m.updateId}`, m, text);
        return { status: "command", chatId: link.chat_id };
      }
      if (m.command && ADMIN_COMMANDS.has(m.command.name)) {
        this.record(m, "command", null);
        this.reply(`c_${m.platform}_${m.updateId}`, m, this.runCommand(link, m));
        return { status: "command", chatId: link.chat_id };
      }
      if (m.kind === "message" && !m.command && !m.addressed) {
        const joined = this.joinContinuation(link, m);
        if (joined) return joined;
      }
      if (m.kind === "edit" && m.messageId && m.text.trim()) {
        const edited = this.applyEdit(link, m);
        if (edited) return edited;
      }
      const answer = m.kind === "message" && (m.addressed || link.mode === "all");
      if (!answer || link.paused) {
        this.record(m, "context", null);
        if (answer && link.paused && m.addressed) {
          this.reply(`p_${m.platform}_${m.updateId}`, m, "The agent of this chat is paused; a group admin can /resume it. Your message is kept as context.");
          return { status: "paused", chatId: link.chat_id };
        }
        return { status: "context", chatId: link.chat_id };
      }
      // A member over their share of the chat's budget is not answered; the message stays context.
      const cap = this.memberCap(link);
      const spent = cap ? this.memberUsage(link.chat_id, m.senderId) : 0;
      // A turn's usage is known only when it ends: while capped, a member has one turn at a
      // time, so a burst of messages cannot queue past the cap. The rest stays context.
      if (cap && spent < cap && this.turns.chats.unfinishedBySender(link.chat_id, m.senderId.slice(0, 64)) > 0) {
        this.record(m, "context", null);
        this.reply(`m_${m.platform}_${m.updateId}`, m, `${cleanName(m.senderName, 32)}: I am still answering your previous message (this chat caps each member's share); this one is kept as context for the next turn.`);
        return { status: "capped", chatId: link.chat_id };
      }
      if (cap && spent >= cap) {
        this.record(m, "context", null);
        this.reply(
          `m_${m.platform}_${m.updateId}`,
          m,
          `${cleanName(m.senderName, 32)} has used ${spent} tokens, reaching the ${cap} each member may spend in this chat (a turn's cost is known when it ends), so I am not answering; your message is kept as context. A group admin can raise the cap with /cap <tokens> or lift it with /cap off.`,
        );
        return { status: "capped", chatId: link.chat_id };
      }
      const context = this.store.pendingContext(m.platform, m.platformChatId);
      const quoted: QuotedMessage[] = context.map((c) => ({ senderId: c.sender_id ?? "?", senderName: c.sender_name ?? "?", text: c.text, kind: c.kind }));
      quoted.push({ senderId: m.senderId, senderName: m.senderName, text: m.text, addressed: true });
      const text = turnText(m.platform, link.title, quoted);
      const turn = this.turns.chats.enqueue(link.chat_id, text, m.senderId.slice(0, 64));
      this.store.assignContext(m.platform, m.platformChatId, turn.id);
      this.record(m, "queued", turn.id);
      this.store.insertBridgeTurn({ turn_id: turn.id, platform: m.platform, platform_chat_id: m.platformChatId, reply_to: m.messageId, sender_id: m.senderId });
      return { status: "queued", turnId: turn.id, chatId: link.chat_id };
    });
    if (provisionLink) setProvision(provisionLink);
    return result;
  }

  /**
   * An edit of a message not yet given to a running turn replaces it (in the queued turn's
   * text, or in the pending context); after its turn started, the edit is kept as a marked
   * follow-up (`"event":"edit"` context). Never re-runs anything.
   */
  private applyEdit(link: LinkRow, m: InboundMessage): IngestResult | undefined {
    const original = this.store.findMessage(m.platform, m.platformChatId, m.messageId!);
    if (!original || original.text === m.text) {
      if (original) {
        this.record(m, "ignored", null); // metadata-only edit
        return { status: "ignored", chatId: link.chat_id };
      }
      return undefined;
    }
    if (original.turn_id === null && original.status === "context") {
      this.store.setInboundText(m.platform, original.update_id, m.text);
      this.record(m, "ignored", null);
      return { status: "context", chatId: link.chat_id };
    }
    if (original.turn_id) {
      const carried = this.store.turnMessages(original.turn_id);
      const quoted: QuotedMessage[] = carried.map((c) => ({
        senderId: c.sender_id ?? "?",
        senderName: c.sender_name ?? "?",
        text: c.update_id === original.update_id ? m.text : c.text,
        kind: c.kind,
        addressed: c.status === "queued",
      }));
      if (this.turns.chats.editQueuedTurn(original.turn_id, turnText(m.platform, link.title, quoted))) {
        this.store.setInboundText(m.platform, original.update_id, m.text);
        this.record(m, "ignored", original.turn_id);
        return { status: "queued", chatId: link.chat_id, turnId: original.turn_id };
      }
    }
    return undefined; // its turn started: recorded below as an edit (context for the next turn)
  }

  /** The chat's per-member cap in tokens, or undefined for none (the link's own, else the config's). */
  private memberCap(link: LinkRow): number | undefined {
    const cap = link.member_cap ?? this.opts.memberBudgetTokens;
    return cap ? cap : undefined;
  }

  /** Tokens the turns a member triggered in a chat have used (the sender id the turn carries). */
  private memberUsage(chatId: string, senderId: string): number {
    const sender = senderId.slice(0, 64);
    return this.turns.chats.usageBySender(chatId).find((r) => r.sender === sender)?.tokens ?? 0;
  }

  private looksCut(m: { platform: Platform; text: string }): boolean {
    const d = this.deliverers.get(m.platform);
    return !!d && m.text.length >= d.maxMessage - SPLIT_SLACK;
  }

  /**
   * The rest of a message the client split (same sender, right after a part cut at the
   * platform's limit): joined to that part, in the pending context or in its still-queued
   * turn, instead of becoming context for the next turn. Recorded as `joined`.
   */
  private joinContinuation(link: LinkRow, m: InboundMessage): IngestResult | undefined {
    // The part before this one: the message itself, or its latest joined part (a message cut in
    // three or more). Its own text says whether it was cut; the message it belongs to is the head.
    const last = this.store.lastInbound(m.platform, m.platformChatId);
    if (!last || last.kind !== "message" || last.sender_id !== m.senderId || !this.looksCut({ platform: m.platform, text: last.text })) return undefined;
    if (Date.now() - last.created_at > SPLIT_WINDOW_MS) return undefined;
    const prev = last.status === "joined" ? this.store.splitHead(m.platform, m.platformChatId, m.senderId) : last;
    if (!prev) return undefined;
    const text = prev.text + m.text;
    if (prev.status === "context" && prev.turn_id === null) {
      this.store.setInboundText(m.platform, prev.update_id, text);
      this.record(m, "joined", null);
      return { status: "context", chatId: link.chat_id };
    }
    if (prev.status !== "queued" || !prev.turn_id) return undefined;
    const quoted: QuotedMessage[] = this.store.turnMessages(prev.turn_id).map((c) => ({
      senderId: c.sender_id ?? "?",
      senderName: c.sender_name ?? "?",
      text: c.update_id === prev.update_id ? text : c.text,
      kind: c.kind,
      addressed: c.status === "queued",
    }));
    if (!this.turns.chats.editQueuedTurn(prev.turn_id, turnText(m.platform, link.title, quoted))) return undefined; // it started
    this.store.setInboundText(m.platform, prev.update_id, text);
    this.record(m, "joined", null);
    return { status: "queued", chatId: link.chat_id, turnId: prev.turn_id };
  }

  private record(m: InboundMessage, status: string, turnId: string | null): void {
    this.store.insertInbound({
      platform: m.platform,
      update_id: m.updateId,
      platform_chat_id: m.platformChatId,
      message_id: m.messageId,
      sender_id: m.senderId,
      sender_name: m.senderName,
      kind: m.kind,
      text: m.text,
      status,
      turn_id: turnId,
    });
  }

  /** A reply that is not a turn's (commands, notices): durable like any other, keyed by the update. */
  private reply(key: string, m: InboundMessage, text: string): void {
    const d = this.deliverers.get(m.platform)!;
    this.store.enqueueReply(key, m.platform, m.platformChatId, m.messageId, splitMessage(text, d.maxMessage));
  }

  private runCommand(link: LinkRow, m: InboundMessage): string {
    const cmd = m.command!;
    const chat = this.turns.chats.find(link.chat_id);
    const used = chat ? usedTokens(chat) : 0;
    const budgetLine = () => {
      const c = this.turns.chats.find(link.chat_id);
      const u = c ? usedTokens(c) : 0;
      const head = c?.budgetTokens ? `Budget: ${u} of ${c.budgetTokens} tokens used.` : `Budget: ${u} tokens used, no limit set.`;
      // Usage attributed to the member whose message triggered each turn.
      const members = c
        ? this.turns.chats
            .usageBySender(c.id)
            .slice(0, 10)
            .map((r) => `${cleanName(this.store.senderName(link.platform, link.platform_chat_id, r.sender) ?? r.sender, 32)}: ${r.tokens} tokens, ${r.turns} turn${r.turns === 1 ? "" : "s"}`)
        : [];
      const cap = this.memberCap(this.store.getLink(link.platform, link.platform_chat_id) ?? link);
      const capLine = cap ? `\nEach member may spend ${cap} tokens here (/cap).` : "";
      return (members.length ? `${head}\nBy member:\n${members.join("\n")}` : head) + capLine;
    };
    if (cmd.name === "budget" && !cmd.args) return budgetLine();
    if (cmd.name === "cap" && !cmd.args) {
      const cap = this.memberCap(link);
      return cap ? `Each member may spend ${cap} tokens in this chat. An admin changes it with /cap <tokens> or lifts it with /cap off.` : "No per-member cap in this chat. An admin sets one with /cap <tokens>.";
    }
    if (!m.senderIsAdmin) return `Only a group admin can use /${cmd.name} here.`;
    switch (cmd.name) {
      case "pause":
        this.store.updateLink(link.platform, link.platform_chat_id, { paused: 1 });
        return "Paused: I keep reading, but answer nothing until an admin sends /resume.";
      case "resume":
        this.store.updateLink(link.platform, link.platform_chat_id, { paused: 0 });
        return "Resumed.";
      case "mode": {
        if (cmd.args !== "all" && cmd.args !== "addressed") return `Reply mode is ${link.mode}. Use /mode addressed (answer mentions, replies and commands) or /mode all.`;
        this.store.updateLink(link.platform, link.platform_chat_id, { mode: cmd.args });
        return `Reply mode is now ${cmd.args}.`;
      }
      case "budget": {
        const mm = /^(\+)?(\d{1,12})$/.exec(cmd.args);
        if (!mm || !chat) return "Use /budget to see the budget, /budget <tokens> to set it, or /budget +<tokens> to extend it.";
        const n = Number(mm[2]);
        const next = mm[1] ? (chat.budgetTokens ?? used) + n : n;
        if (next < 1) return "A budget must be at least 1 token.";
        this.turns.chats.setBudget(chat.id, next);
        return budgetLine();
      }
      case "cap": {
        if (cmd.args === "off") {
          this.store.updateLink(link.platform, link.platform_chat_id, { member_cap: 0 });
          return "No per-member cap in this chat now.";
        }
        const mm = /^(\d{1,12})$/.exec(cmd.args);
        if (!mm || Number(mm[1]) < 1) return "Use /cap to see the per-member cap, /cap <tokens> to set it, or /cap off to lift it.";
        this.store.updateLink(link.platform, link.platform_chat_id, { member_cap: Number(mm[1]) });
        return `Each member may now spend ${Number(mm[1])} tokens in this chat.`;
      }
    }
    return `Unknown command /${cmd.name}.`;
  }

  /** Creates (or re-creates) the linked chat and provisions it, telling the platform chat how it goes. */
  private ensureChat(link: LinkRow): void {
    if (this.provisioning.has(link.chat_id)) return;
    let created: CreateResult;
    try {
      created = this.turns.chats.create(link.chat_id, this.opts.budgetTokens);
    } catch (err) {
      if (err instanceof PicortexError && err.category === "conflict") return; // it exists (and is not deleted or failed)
      throw err;
    }
    if (created.replayed) return;
    this.provisioning.add(link.chat_id);
    const d = this.deliverers.get(link.platform);
    let noticeId: Promise<string | undefined> = d?.notice
      ? d.notice(link.platform_chat_id, "Setting up this chat's agent (first contact)…").catch(() => undefined)
      : Promise.resolve(undefined);
    void created
      .provision((e) => {
        if (!d?.notice) return;
        noticeId = noticeId.then((id) => d.notice!(link.platform_chat_id, `Setting up this chat's agent: ${e.message} (${Math.round(e.progress * 100)}%)`, id).then((x) => x ?? id).catch(() => id));
      })
      .then(async (chat) => {
        this.provisioning.delete(link.chat_id);
        if (chat.status === "ready") {
          await noticeId.then((id) => d?.notice?.(link.platform_chat_id, "This chat's agent is ready.", id)).catch(() => {});
          return;
        }
        // Its queued turns can never run: fail them, so each gets an answer in the chat.
        this.turns.chats.failQueuedTurns(chat.id, "provision_failed", `Setting up this chat failed: ${chat.error}`);
        this.sweep();
      });
  }

  // ---- outbound ------------------------------------------------------------

  private mark(platform: Platform, platformChatId: string, messageId: string, state: MessageState): void {
    const d = this.deliverers.get(platform);
    if (!d?.mark) return;
    const key = `${platform}:${platformChatId}:${messageId}`;
    const next = (this.marks.get(key) ?? Promise.resolve())
      .then(() => d.mark!(platformChatId, messageId, state))
      .catch(() => {});
    this.marks.set(key, next);
    void next.then(() => {
      if (this.marks.get(key) === next) this.marks.delete(key);
    });
  }

  private onTurnEvent(turnId: string, e: TurnEvent): void {
    if (e.type === "status" && e.status === "running") {
      const bt = this.store.getBridgeTurn(turnId);
      if (bt?.reply_to) this.mark(bt.platform, bt.platform_chat_id, bt.reply_to, "working");
      const d = bt && this.deliverers.get(bt.platform);
      if (!bt || !d?.typing) return;
      const tick = () => void d.typing!(bt.platform_chat_id).catch(() => {});
      tick();
      // Telegram's typing indicator lasts about 5 s: renew it while the turn runs.
      this.typingTimers.set(turnId, setInterval(tick, 4000));
    } else if (e.type === "done") {
      const t = this.typingTimers.get(turnId);
      if (t) clearInterval(t);
      this.typingTimers.delete(turnId);
      this.outboxTurn(turnId);
    }
  }

  /** Finished bridge turns whose reply is not in the outbox yet (after a restart, or a missed event). */
  sweep(): void {
    for (const bt of this.store.unoutboxedTurns()) this.outboxTurn(bt.turn_id);
  }

  private outboxTurn(turnId: string): void {
    const bt = this.store.getBridgeTurn(turnId);
    if (!bt || bt.outboxed) return;
    const turn = this.turns.chats.turn(turnId);
    if (!turn || !FINISHED.has(turn.status)) return;
    const d = this.deliverers.get(bt.platform);
    const text = turn.status === "done" ? turn.reply || "(empty reply)" : `⚠️ This turn ${turn.status === "interrupted" ? "was interrupted" : "failed"}: ${turn.error ?? turn.errorCode ?? "unknown error"}`;
    this.store.enqueueReply(turnId, bt.platform, bt.platform_chat_id, bt.reply_to, replyChunks(text, receipt(turn, chatViewLink(this.opts.portalUrl, turn.chatId)), d?.maxMessage ?? 4096, d?.maxCaption));
    if (bt.reply_to) this.mark(bt.platform, bt.platform_chat_id, bt.reply_to, turn.status === "done" ? "done" : "failed");
    this.wake();
  }

  wake(): void {
    this.wakeUp?.();
  }

  /** Resolves when nothing is pending (tests). */
  async drained(timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.store.outbox().some((r) => r.status === "pending") || this.store.unoutboxedTurns().length) {
      if (Date.now() > until) throw new Error("bridge outbox not drained");
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async deliveryLoop(): Promise<void> {
    while (!this.stopped) {
      let worked = false;
      try {
        worked = await this.deliverDue();
      } catch (err) {
        this.log.error("bridge delivery loop", { error: String((err as Error).message) });
      }
      if (this.stopped) return;
      if (worked) continue;
      const next = this.store.nextDueAt();
      const wait = next === undefined ? 1000 : Math.max(10, Math.min(1000, next - Date.now()));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        this.wakeUp = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wakeUp = undefined;
      this.sweep();
    }
  }

  private async deliverDue(): Promise<boolean> {
    const now = Date.now();
    let worked = false;
    for (const row of this.store.dueChunks(now)) {
      if (this.stopped) return worked;
      const d = this.deliverers.get(row.platform);
      if (!d) continue;
      const key = `${row.platform}:${row.platform_chat_id}`;
      const spacing = this.opts.minIntervalMs(row.platform) - (Date.now() - (this.lastSent.get(key) ?? 0));
      if (spacing > 0) {
        this.store.deferChat(row.platform, row.platform_chat_id, Date.now() + spacing);
        continue;
      }
      worked = true;
      try {
        const id = await d.send(row);
        this.lastSent.set(key, Date.now());
        this.store.markSent(row.turn_id, row.chunk, id);
      } catch (err) {
        if (this.stopped) return worked;
        const e = err instanceof DeliveryError ? err : new DeliveryError(String((err as Error)?.message ?? err));
        if (e.retryAfterMs !== undefined) {
          // Rate limited: the whole chat waits, and the attempt does not count.
          this.log.warn("bridge rate limited", { platform: row.platform, retryAfterMs: e.retryAfterMs });
          this.store.deferChat(row.platform, row.platform_chat_id, Date.now() + e.retryAfterMs);
          continue;
        }
        const giveUp = e.permanent || row.attempts + 1 >= this.opts.maxAttempts;
        const backoff = Math.min(60_000, 500 * 2 ** row.attempts);
        this.store.failAttempt(row.turn_id, row.chunk, e.message, Date.now() + backoff, giveUp);
        this.log.warn(giveUp ? "bridge delivery failed; giving up on this chunk" : "bridge delivery failed; will retry", {
          platform: row.platform,
          turnId: row.turn_id,
          chunk: row.chunk,
          error: e.message,
        });
      }
    }
    return worked;
  }
}

/** Stable short hash (dedup keys). */
export function shortHash(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 24);
}

/** Replies longer than this many messages go as one file with a preview, not a stream of chunks. */
const DOCUMENT_AFTER_MESSAGES = 2;

/**
 * One compact line closing every turn's reply: what the turn did (files changed, commands run;
 * left out when none), then tokens and time (what the chat paid for it), e.g.
 * `— 2 files (src/a.ts, b.md), 3 commands, 1,234 tokens, 4.2 s`. File names are data: cleaned
 * of control characters, at most three named, so the receipt is always one line.
 */
export function receipt(turn: {
  inputTokens: number | null;
  outputTokens: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  activity?: TurnActivity | null;
}, link?: string): string {
  const tokens = (turn.inputTokens ?? 0) + (turn.outputTokens ?? 0);
  const secs = turn.startedAt && turn.finishedAt ? Math.max(0, (turn.finishedAt - turn.startedAt) / 1000) : undefined;
  const parts = [...activityParts(turn.activity), `${tokens.toLocaleString("en-US")} tokens`];
  if (secs !== undefined) parts.push(`${secs < 10 ? secs.toFixed(1) : Math.round(secs)} s`);
  return `— ${parts.join(", ")}${link ? ` · ${link}` : ""}`;
}

/** The chat's page in the portal's chat view (bridges.portalUrl), for the receipt; none when unset. */
export function chatViewLink(portalUrl: string | undefined, chatId: string): string | undefined {
  if (!portalUrl) return undefined;
  return `${portalUrl.replace(/\/+$/, "")}/portal/chats/#/chat/${encodeURIComponent(chatId)}`;
}

/**
 * The outbox chunks of a reply: split at the platform's limit, the receipt on the last one; a
 * reply over DOCUMENT_AFTER_MESSAGES messages goes as a file (on platforms that take files)
 * whose caption is a preview, so a long diff is one attachment instead of chunk spam.
 */
export function replyChunks(text: string, receiptLine: string, maxMessage: number, maxCaption?: number): Array<string | { caption: string; document: string }> {
  const full = `${text}\n\n${receiptLine}`;
  if (!maxCaption || full.length <= maxMessage * DOCUMENT_AFTER_MESSAGES) return splitMessage(full, maxMessage);
  const tail = `\n… the whole reply (${text.length.toLocaleString("en-US")} characters) is attached.\n${receiptLine}`;
  let preview = text.slice(0, Math.max(0, maxCaption - tail.length));
  // Never end on half of a surrogate pair (an emoji cut in two).
  if (/[\uD800-\uDBFF]$/.test(preview)) preview = preview.slice(0, -1);
  const cut = preview.lastIndexOf("\n");
  if (cut > preview.length / 2) preview = preview.slice(0, cut);
  return [{ caption: preview + tail, document: text }];
}
