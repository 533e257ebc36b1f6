import type { Db } from "../store/database.js";
import { migrate } from "../store/database.js";
import { BRIDGES_MIGRATIONS } from "./migrations.js";

export type Platform = "telegram" | "webhook";

export interface LinkRow {
  platform: Platform;
  platform_chat_id: string;
  chat_id: string;
  title: string | null;
  mode: "addressed" | "all";
  paused: number;
  privacy_notice_sent: number;
  created_at: number;
  /** Tokens each member's messages may spend in this chat: NULL follows the config, 0 is no cap. */
  member_cap: number | null;
}

export interface InboundRow {
  platform: Platform;
  update_id: string;
  platform_chat_id: string;
  message_id: string | null;
  sender_id: string | null;
  sender_name: string | null;
  kind: string;
  text: string;
  status: string;
  turn_id: string | null;
  created_at: number;
}

export interface BridgeTurnRow {
  turn_id: string;
  platform: Platform;
  platform_chat_id: string;
  reply_to: string | null;
  sender_id: string | null;
  outboxed: number;
  created_at: number;
}

export interface OutboxRow {
  rowid: number;
  turn_id: string;
  chunk: number;
  chunks: number;
  platform: Platform;
  platform_chat_id: string;
  reply_to: string | null;
  text: string;
  status: "pending" | "sent" | "failed";
  platform_message_id: string | null;
  attempts: number;
  next_attempt_at: number;
  error: string | null;
  /** Set when the chunk is a file (a long reply): `text` is then its caption. */
  document: string | null;
}

export interface ApprovalRow {
  id: string;
  chat_id: string;
  session_id: string | null;
  platform: Platform;
  platform_chat_id: string;
  tool: string;
  subject: string;
  status: "pending" | "approved" | "denied" | "expired" | "withdrawn";
  scope: "once" | "session" | null;
  decided_by: string | null;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
}

/** Every SQL statement of the bridges module. Callers group them in `tx` where they must commit together. */
export class BridgeStore {
  constructor(readonly db: Db) {
    migrate(db, "bridges", BRIDGES_MIGRATIONS);
  }

  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  getState(key: string): string | undefined {
    return (this.db.prepare("SELECT value FROM bridge_state WHERE key = ?").get(key) as { value: string } | undefined)?.value;
  }

  setState(key: string, value: string): void {
    this.db.prepare("INSERT INTO bridge_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  getLink(platform: Platform, platformChatId: string): LinkRow | undefined {
    return this.db.prepare("SELECT * FROM bridge_links WHERE platform = ? AND platform_chat_id = ?").get(platform, platformChatId) as LinkRow | undefined;
  }

  listLinks(): LinkRow[] {
    return this.db.prepare("SELECT * FROM bridge_links ORDER BY created_at").all() as LinkRow[];
  }

  insertLink(l: Omit<LinkRow, "paused" | "privacy_notice_sent" | "created_at" | "member_cap">): void {
    this.db
      .prepare("INSERT INTO bridge_links (platform, platform_chat_id, chat_id, title, mode, created_at) VALUES (?, ?, ?, ?, ?, ?)")
      .run(l.platform, l.platform_chat_id, l.chat_id, l.title, l.mode, Date.now());
  }

  updateLink(platform: Platform, platformChatId: string, set: Partial<Pick<LinkRow, "title" | "mode" | "paused" | "privacy_notice_sent" | "member_cap">>): void {
    for (const [k, v] of Object.entries(set)) {
      if (!["title", "mode", "paused", "privacy_notice_sent", "member_cap"].includes(k)) throw new Error(`not a link column: ${k}`);
      this.db.prepare(`UPDATE bridge_links SET ${k} = ? WHERE platform = ? AND platform_chat_id = ?`).run(v, platform, platformChatId);
    }
  }

  /** A group upgraded to a supergroup keeps its chat: the link moves to the new id. */
  moveLink(platform: Platform, from: string, to: string): void {
    // Config keys (approvers, chatMap) may still name the old id: it is remembered for them.
    if (from !== to) this.setState(`moved.${platform}.${to}`, from);
    this.db.prepare("UPDATE bridge_links SET platform_chat_id = ? WHERE platform = ? AND platform_chat_id = ?").run(to, platform, from);
    this.db.prepare("UPDATE bridge_inbound SET platform_chat_id = ? WHERE platform = ? AND platform_chat_id = ?").run(to, platform, from);
    this.db.prepare("UPDATE bridge_outbox SET platform_chat_id = ? WHERE platform = ? AND platform_chat_id = ? AND status = 'pending'").run(to, platform, from);
    // Requests still waiting are decided in the group under its new id.
    this.db.prepare("UPDATE bridge_approvals SET platform_chat_id = ? WHERE platform = ? AND platform_chat_id = ? AND status = 'pending'").run(to, platform, from);
  }

  /** The ids a platform chat had before it moved (a group upgraded to a supergroup), newest first. */
  formerIds(platform: Platform, platformChatId: string): string[] {
    const ids: string[] = [];
    for (let id = this.getState(`moved.${platform}.${platformChatId}`); id !== undefined && !ids.includes(id) && ids.length < 10; id = this.getState(`moved.${platform}.${id}`)) ids.push(id);
    return ids;
  }

  hasInbound(platform: Platform, updateId: string): boolean {
    return !!this.db.prepare("SELECT 1 FROM bridge_inbound WHERE platform = ? AND update_id = ?").get(platform, updateId);
  }

  insertInbound(r: Omit<InboundRow, "created_at">): void {
    this.db
      .prepare(
        `INSERT INTO bridge_inbound (platform, update_id, platform_chat_id, message_id, sender_id, sender_name, kind, text, status, turn_id, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(r.platform, r.update_id, r.platform_chat_id, r.message_id, r.sender_id, r.sender_name, r.kind, r.text, r.status, r.turn_id, Date.now());
  }

  /** Context not yet given to a turn, oldest first. */
  pendingContext(platform: Platform, platformChatId: string, limit = 50): InboundRow[] {
    return this.db
      .prepare(
        `SELECT * FROM (SELECT rowid AS r, * FROM bridge_inbound WHERE platform = ? AND platform_chat_id = ? AND status = 'context' AND turn_id IS NULL ORDER BY rowid DESC LIMIT ?) ORDER BY r`,
      )
      .all(platform, platformChatId, limit) as InboundRow[];
  }

  assignContext(platform: Platform, platformChatId: string, turnId: string): void {
    this.db
      .prepare("UPDATE bridge_inbound SET turn_id = ? WHERE platform = ? AND platform_chat_id = ? AND status = 'context' AND turn_id IS NULL")
      .run(turnId, platform, platformChatId);
  }

  /** The recorded message (not edit) with this platform message id. */
  findMessage(platform: Platform, platformChatId: string, messageId: string): InboundRow | undefined {
    return this.db
      .prepare("SELECT * FROM bridge_inbound WHERE platform = ? AND platform_chat_id = ? AND message_id = ? AND kind = 'message' ORDER BY rowid DESC LIMIT 1")
      .get(platform, platformChatId, messageId) as InboundRow | undefined;
  }

  /** The latest display name a sender used in a platform chat. */
  senderName(platform: Platform, platformChatId: string, senderId: string): string | undefined {
    return (
      this.db
        .prepare("SELECT sender_name FROM bridge_inbound WHERE platform = ? AND platform_chat_id = ? AND sender_id = ? ORDER BY rowid DESC LIMIT 1")
        .get(platform, platformChatId, senderId) as { sender_name: string } | undefined
    )?.sender_name;
  }

  /** The newest update recorded in a platform chat (any kind). */
  lastInbound(platform: Platform, platformChatId: string): InboundRow | undefined {
    return this.db.prepare("SELECT * FROM bridge_inbound WHERE platform = ? AND platform_chat_id = ? ORDER BY rowid DESC LIMIT 1").get(platform, platformChatId) as
      | InboundRow
      | undefined;
  }

  /** The newest message of a sender in a platform chat that is no joined part: the head of a split message. */
  splitHead(platform: Platform, platformChatId: string, senderId: string): InboundRow | undefined {
    return this.db
      .prepare("SELECT * FROM bridge_inbound WHERE platform = ? AND platform_chat_id = ? AND sender_id = ? AND kind = 'message' AND status <> 'joined' ORDER BY rowid DESC LIMIT 1")
      .get(platform, platformChatId, senderId) as InboundRow | undefined;
  }

  setInboundText(platform: Platform, updateId: string, text: string): void {
    this.db.prepare("UPDATE bridge_inbound SET text = ? WHERE platform = ? AND update_id = ?").run(text, platform, updateId);
  }

  /** Every message a turn carried (its context and its trigger), oldest first. */
  turnMessages(turnId: string): InboundRow[] {
    return this.db.prepare("SELECT * FROM bridge_inbound WHERE turn_id = ? ORDER BY rowid").all(turnId) as InboundRow[];
  }

  insertBridgeTurn(r: Omit<BridgeTurnRow, "outboxed" | "created_at">): void {
    this.db
      .prepare("INSERT INTO bridge_turns (turn_id, platform, platform_chat_id, reply_to, sender_id, created_at) VALUES (?, ?, ?, ?, ?, ?)")
      .run(r.turn_id, r.platform, r.platform_chat_id, r.reply_to, r.sender_id, Date.now());
  }

  getBridgeTurn(turnId: string): BridgeTurnRow | undefined {
    return this.db.prepare("SELECT * FROM bridge_turns WHERE turn_id = ?").get(turnId) as BridgeTurnRow | undefined;
  }

  unoutboxedTurns(): BridgeTurnRow[] {
    return this.db.prepare("SELECT * FROM bridge_turns WHERE outboxed = 0 ORDER BY created_at").all() as BridgeTurnRow[];
  }

  /** Puts a reply's chunks in the outbox once (keyed by turn id and chunk), in one transaction. */
  enqueueReply(key: string, platform: Platform, platformChatId: string, replyTo: string | null, chunks: Array<string | { caption: string; document: string }>): void {
    this.tx(() => {
      const ins = this.db.prepare(
        `INSERT INTO bridge_outbox (turn_id, chunk, chunks, platform, platform_chat_id, reply_to, text, document, status, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT(turn_id, chunk) DO NOTHING`,
      );
      chunks.forEach((c, i) =>
        ins.run(key, i, chunks.length, platform, platformChatId, i === 0 ? replyTo : null, typeof c === "string" ? c : c.caption, typeof c === "string" ? null : c.document, Date.now()),
      );
      this.db.prepare("UPDATE bridge_turns SET outboxed = 1 WHERE turn_id = ?").run(key);
    });
  }

  /**
   * Chunks ready to send: pending, due, and the first pending chunk of their platform chat
   * (replies reach a chat in order, chunk after chunk).
   */
  dueChunks(now: number): OutboxRow[] {
    return this.db
      .prepare(
        `SELECT o.rowid AS rowid, o.* FROM bridge_outbox o
         WHERE o.status = 'pending' AND o.next_attempt_at <= ?
           AND NOT EXISTS (SELECT 1 FROM bridge_outbox p WHERE p.platform = o.platform AND p.platform_chat_id = o.platform_chat_id
                           AND p.status = 'pending' AND p.rowid < o.rowid)
         ORDER BY o.rowid LIMIT 32`,
      )
      .all(now) as OutboxRow[];
  }

  nextDueAt(): number | undefined {
    return (this.db.prepare("SELECT MIN(next_attempt_at) AS t FROM bridge_outbox WHERE status = 'pending'").get() as { t: number | null }).t ?? undefined;
  }

  markSent(turnId: string, chunk: number, platformMessageId: string): void {
    this.db
      .prepare("UPDATE bridge_outbox SET status = 'sent', platform_message_id = ?, sent_at = ?, error = NULL WHERE turn_id = ? AND chunk = ?")
      .run(platformMessageId, Date.now(), turnId, chunk);
  }

  deferChat(platform: Platform, platformChatId: string, until: number): void {
    this.db
      .prepare("UPDATE bridge_outbox SET next_attempt_at = MAX(next_attempt_at, ?) WHERE platform = ? AND platform_chat_id = ? AND status = 'pending'")
      .run(until, platform, platformChatId);
  }

  failAttempt(turnId: string, chunk: number, error: string, nextAt: number, give_up: boolean): void {
    this.db
      .prepare("UPDATE bridge_outbox SET attempts = attempts + 1, error = ?, next_attempt_at = ?, status = ? WHERE turn_id = ? AND chunk = ?")
      .run(error.slice(0, 500), nextAt, give_up ? "failed" : "pending", turnId, chunk);
  }

  outbox(turnId?: string): OutboxRow[] {
    return (turnId
      ? this.db.prepare("SELECT rowid AS rowid, * FROM bridge_outbox WHERE turn_id = ? ORDER BY chunk").all(turnId)
      : this.db.prepare("SELECT rowid AS rowid, * FROM bridge_outbox ORDER BY rowid").all()) as OutboxRow[];
  }

  // ---- approvals -----------------------------------------------------------

  linksOfChat(chatId: string): LinkRow[] {
    return this.db.prepare("SELECT * FROM bridge_links WHERE chat_id = ? ORDER BY created_at, platform, platform_chat_id").all(chatId) as LinkRow[];
  }

  insertApproval(r: Omit<ApprovalRow, "status" | "scope" | "decided_by" | "decided_at">): void {
    this.db
      .prepare(
        "INSERT INTO bridge_approvals (id, chat_id, session_id, platform, platform_chat_id, tool, subject, status, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
      )
      .run(r.id, r.chat_id, r.session_id, r.platform, r.platform_chat_id, r.tool, r.subject, r.created_at, r.expires_at);
  }

  getApproval(id: string): ApprovalRow | undefined {
    return this.db.prepare("SELECT * FROM bridge_approvals WHERE id = ?").get(id) as ApprovalRow | undefined;
  }

  /** Moves a pending approval to its outcome; false when it was no longer pending (decided once only). */
  settleApproval(id: string, status: Exclude<ApprovalRow["status"], "pending">, scope: ApprovalRow["scope"], decidedBy: string | null): boolean {
    return (
      this.db
        .prepare("UPDATE bridge_approvals SET status = ?, scope = ?, decided_by = ?, decided_at = ? WHERE id = ? AND status = 'pending'")
        .run(status, scope, decidedBy, Date.now(), id).changes === 1
    );
  }

  pendingApprovals(): ApprovalRow[] {
    return this.db.prepare("SELECT * FROM bridge_approvals WHERE status = 'pending' ORDER BY created_at").all() as ApprovalRow[];
  }

  /** Drops requests settled before `before` (the audit window), and grants of sessions whose requests are gone. */
  pruneApprovals(before: number): void {
    this.db.prepare("DELETE FROM bridge_approvals WHERE status <> 'pending' AND created_at < ?").run(before);
    this.db.prepare("DELETE FROM bridge_approval_grants WHERE created_at < ?").run(before);
  }

  addGrant(g: { chat_id: string; session_id: string; tool: string; subject: string; granted_by: string; approval_id: string }): void {
    this.db
      .prepare(
        "INSERT OR IGNORE INTO bridge_approval_grants (chat_id, session_id, tool, subject, granted_by, approval_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      )
      .run(g.chat_id, g.session_id, g.tool, g.subject, g.granted_by, g.approval_id, Date.now());
  }

  hasGrant(chatId: string, sessionId: string, tool: string, subject: string): boolean {
    return !!this.db.prepare("SELECT 1 FROM bridge_approval_grants WHERE chat_id = ? AND session_id = ? AND tool = ? AND subject = ?").get(chatId, sessionId, tool, subject);
  }
}
