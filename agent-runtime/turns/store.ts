import { randomUUID } from "node:crypto";
import type { Db } from "../store/database.js";
import { migrate } from "../store/database.js";
import type { DiskHealth } from "../store/disk.js";
import { PicortexError } from "../errors.js";
import type { Chat, ChatStatus, Message, ProvisionEvent, Turn, TurnStatus } from "./domain.js";
import { TURNS_MIGRATIONS } from "./migrations.js";
import { parseActivity, serializeActivity, type TurnActivity } from "./activity.js";

export type { Chat, ChatStatus, Message, Turn, TurnStatus } from "./domain.js";

/** The rows as SQLite returns them; they never leave this file (mapped by `toChat`, `toTurn`, `toMessage`). */
interface ChatRow {
  id: string;
  status: ChatStatus;
  session_id: string;
  session_started: number;
  token_hash: string;
  budget_tokens: number | null;
  used_input_tokens: number;
  used_output_tokens: number;
  provision_log: string;
  provision_attempts: number;
  notice: string | null;
  error: string | null;
  archive_path: string | null;
  created_at: number;
  deleted_at: number | null;
}

interface TurnRow {
  seq: number;
  id: string;
  chat_id: string;
  text: string;
  sender: string | null;
  status: TurnStatus;
  attempts: number;
  retry_of_interrupted: number;
  reply: string | null;
  error_code: string | null;
  error: string | null;
  runner: string | null;
  pid: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
  activity: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

interface MessageRow {
  id: number;
  chat_id: string;
  turn_id: string;
  role: "user" | "assistant";
  sender: string | null;
  text: string;
  created_at: number;
}

function toChat(r: ChatRow): Chat {
  return {
    id: r.id,
    status: r.status,
    sessionId: r.session_id,
    sessionStarted: r.session_started === 1,
    tokenHash: r.token_hash,
    budgetTokens: r.budget_tokens,
    usedInputTokens: r.used_input_tokens,
    usedOutputTokens: r.used_output_tokens,
    provisionLog: JSON.parse(r.provision_log) as ProvisionEvent[],
    provisionAttempts: r.provision_attempts,
    notice: r.notice,
    error: r.error,
    archivePath: r.archive_path,
    createdAt: r.created_at,
    deletedAt: r.deleted_at,
  };
}

function toTurn(r: TurnRow): Turn {
  return {
    seq: r.seq,
    id: r.id,
    chatId: r.chat_id,
    text: r.text,
    sender: r.sender,
    status: r.status,
    attempts: r.attempts,
    retryOfInterrupted: r.retry_of_interrupted === 1,
    reply: r.reply,
    errorCode: r.error_code,
    error: r.error,
    runner: r.runner,
    pid: r.pid,
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    activity: r.activity === null ? null : parseActivity(r.activity),
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

function toMessage(r: MessageRow): Message {
  return { id: r.id, chatId: r.chat_id, turnId: r.turn_id, role: r.role, sender: r.sender, text: r.text, createdAt: r.created_at };
}

/** A row this store just wrote and must be able to read back (in the same transaction). */
function written<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`turns store: ${what} vanished within its own transaction`);
  return value;
}

/** Every SQL statement of the turns module; each state change is one transaction. */
export class TurnStore {
  /** Token usage that could not be written (disk full), added on the next write that can. */
  private readonly heldUsage = new Map<string, { input: number; output: number }>();

  constructor(
    private readonly db: Db,
    readonly disk?: DiskHealth,
  ) {
    migrate(db, "turns", TURNS_MIGRATIONS);
  }

  // ---- chats -------------------------------------------------------------

  /**
   * Creates (or re-creates a deleted or failed) chat in `provisioning`; history of a deleted
   * chat is kept. A chat that exists otherwise is a `conflict` (code "conflict").
   */
  createChat(id: string, tokenHash: string, budgetTokens: number | null): Chat {
    const now = Date.now();
    return this.db.transaction((): Chat => {
      const existing = this.getChat(id);
      if (existing && existing.status !== "deleted" && existing.status !== "failed") {
        throw new PicortexError("conflict", "conflict", `Chat ${id} already exists; delete it first or pick another id.`);
      }
      if (existing) {
        this.db
          .prepare(
            `UPDATE turn_chats SET status='provisioning', session_id=?, session_started=0, token_hash=?, budget_tokens=?,
             used_input_tokens=0, used_output_tokens=0, provision_log='[]', provision_attempts=0, error=NULL, archive_path=NULL, created_at=?, deleted_at=NULL WHERE id=?`,
          )
          .run(randomUUID(), tokenHash, budgetTokens, now, id);
      } else {
        this.db
          .prepare(
            `INSERT INTO turn_chats (id, status, session_id, token_hash, budget_tokens, created_at) VALUES (?, 'provisioning', ?, ?, ?, ?)`,
          )
          .run(id, randomUUID(), tokenHash, budgetTokens, now);
      }
      return written(this.getChat(id), `chat ${id}`);
    })();
  }

  getChat(id: string): Chat | undefined {
    const row = this.db.prepare("SELECT * FROM turn_chats WHERE id = ?").get(id) as ChatRow | undefined;
    return row && toChat(row);
  }

  listChats(includeDeleted = false): Chat[] {
    return (this.db
      .prepare(`SELECT * FROM turn_chats ${includeDeleted ? "" : "WHERE status != 'deleted'"} ORDER BY created_at, id`)
      .all() as ChatRow[]).map(toChat);
  }

  chatByTokenHash(tokenHash: string): Chat | undefined {
    const row = this.db.prepare("SELECT * FROM turn_chats WHERE token_hash = ? AND status = 'ready'").get(tokenHash) as ChatRow | undefined;
    return row && toChat(row);
  }

  setChatStatus(id: string, status: ChatStatus, error: string | null = null): void {
    this.db.prepare("UPDATE turn_chats SET status = ?, error = ? WHERE id = ?").run(status, error, id);
  }

  appendProvisionLog(id: string, event: unknown): void {
    const chat = this.getChat(id);
    if (!chat) return;
    const log: unknown[] = [...chat.provisionLog, event];
    this.db.prepare("UPDATE turn_chats SET provision_log = ? WHERE id = ?").run(JSON.stringify(log), id);
  }

  /**
   * Starts a provisioning attempt: counts it and sets the token the chat's files will
   * hold, committed before anything touches the host. Returns the attempt number.
   */
  beginProvisionAttempt(id: string, tokenHash: string): number {
    return this.db.transaction(() => {
      this.db.prepare("UPDATE turn_chats SET provision_attempts = provision_attempts + 1, token_hash = ? WHERE id = ? AND status = 'provisioning'").run(tokenHash, id);
      return this.getChat(id)?.provisionAttempts ?? 0;
    })();
  }

  provisioningChats(): Chat[] {
    return (this.db.prepare("SELECT * FROM turn_chats WHERE status = 'provisioning' ORDER BY created_at, id").all() as ChatRow[]).map(toChat);
  }

  /** Gives the chat a new Claude session (its transcript was damaged or lost), with a notice for the user. */
  replaceSession(id: string, notice: string): string {
    const sessionId = randomUUID();
    this.db.prepare("UPDATE turn_chats SET session_id = ?, session_started = 0, notice = ? WHERE id = ?").run(sessionId, notice, id);
    return sessionId;
  }

  /** The last `limit` answered exchanges before `beforeSeq`, oldest first. */
  recentExchanges(chatId: string, beforeSeq: number, limit: number): Turn[] {
    return (
      this.db.prepare("SELECT * FROM turn_turns WHERE chat_id = ? AND seq < ? AND status = 'done' ORDER BY seq DESC LIMIT ?").all(chatId, beforeSeq, limit) as TurnRow[]
    )
      .map(toTurn)
      .reverse();
  }

  markSessionStarted(id: string, started: boolean): void {
    this.db.prepare("UPDATE turn_chats SET session_started = ? WHERE id = ?").run(started ? 1 : 0, id);
  }

  /**
   * Adds a chat's token usage. The answer it was metered from has already been streamed,
   * so a full disk must not lose it or fail anything: it is held in memory and added by
   * the next call that can write (or `flushHeldUsage`). Returns false while held.
   */
  addUsage(id: string, input: number, output: number): boolean {
    const held = this.heldUsage.get(id);
    const total = { input: input + (held?.input ?? 0), output: output + (held?.output ?? 0) };
    try {
      // A principal that is not a chat (the portal agent, `@agent`) has its own row.
      this.db
        .prepare(
          id.startsWith("@")
            ? `INSERT INTO turn_principal_usage (principal, used_input_tokens, used_output_tokens) VALUES (@id, @input, @output)
               ON CONFLICT(principal) DO UPDATE SET used_input_tokens = used_input_tokens + @input, used_output_tokens = used_output_tokens + @output`
            : "UPDATE turn_chats SET used_input_tokens = used_input_tokens + @input, used_output_tokens = used_output_tokens + @output WHERE id = @id",
        )
        .run({ ...total, id });
    } catch (err) {
      if (!this.disk?.classify(err)) throw err;
      this.heldUsage.set(id, total);
      return false;
    }
    this.heldUsage.delete(id);
    this.disk?.ok();
    return true;
  }

  /** Tokens a principal other than a chat (the portal agent, `@agent`) has used through the gateway. */
  principalUsage(principal: string): { input: number; output: number } {
    const row = this.db.prepare("SELECT used_input_tokens AS input, used_output_tokens AS output FROM turn_principal_usage WHERE principal = ?").get(principal) as
      | { input: number; output: number }
      | undefined;
    return row ?? { input: 0, output: 0 };
  }

  /** Writes usage held back by a full disk; true when nothing is held any more. */
  flushHeldUsage(): boolean {
    for (const id of [...this.heldUsage.keys()]) if (!this.addUsage(id, 0, 0)) return false;
    return true;
  }

  get heldUsageCount(): number {
    return this.heldUsage.size;
  }

  /** Sets (or with null removes) a chat's budget; returns the chat as it is now, undefined when there is none. */
  setBudget(id: string, budget: number | null): Chat | undefined {
    return this.db.transaction(() => {
      this.db.prepare("UPDATE turn_chats SET budget_tokens = ? WHERE id = ?").run(budget, id);
      return this.getChat(id);
    })();
  }

  /** Marks the chat deleted; its queued turns fail (they can never run). Purge drops history too. */
  markDeleted(id: string, archivePath: string | null, purge: boolean): void {
    this.db.transaction(() => {
      this.db
        .prepare("UPDATE turn_chats SET status='deleted', deleted_at=?, archive_path=?, token_hash=? WHERE id=?")
        .run(Date.now(), archivePath, `deleted:${id}:${Date.now()}`, id);
      this.db
        .prepare(
          "UPDATE turn_turns SET status='failed', error_code='chat_deleted', error='The chat was deleted before this turn ran.', finished_at=? WHERE chat_id=? AND status IN ('queued','running')",
        )
        .run(Date.now(), id);
      if (purge) {
        this.db.prepare("DELETE FROM turn_messages WHERE chat_id = ?").run(id);
        this.db.prepare("DELETE FROM turn_turns WHERE chat_id = ?").run(id);
        this.db.prepare("DELETE FROM turn_chats WHERE id = ?").run(id);
      }
    })();
  }

  // ---- turns -------------------------------------------------------------

  // ---- idempotency keys ----------------------------------------------------

  /** The result recorded for an idempotency key, if any. */
  idempotent(scope: string, key: string): { requestHash: string; resultId: string } | undefined {
    const row = this.db.prepare("SELECT request_hash, result_id FROM turn_idempotency WHERE scope = ? AND key = ?").get(scope, key) as
      | { request_hash: string; result_id: string }
      | undefined;
    return row && { requestHash: row.request_hash, resultId: row.result_id };
  }

  recordIdempotency(scope: string, key: string, requestHash: string, resultId: string): void {
    this.db.prepare("INSERT INTO turn_idempotency (key, scope, request_hash, result_id, created_at) VALUES (?, ?, ?, ?, ?)").run(key, scope, requestHash, resultId, Date.now());
  }

  /** Forgets keys older than `maxAgeMs` (a client resends within minutes, not weeks). */
  pruneIdempotency(maxAgeMs: number): number {
    return this.db.prepare("DELETE FROM turn_idempotency WHERE created_at < ?").run(Date.now() - maxAgeMs).changes;
  }

  /** Runs `fn` in one transaction (an idempotency check and the write it guards). */
  atomically<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /**
   * Accepts a turn: the row (and the user message, and its idempotency key) are
   * committed together before the API answers.
   */
  enqueueTurn(chatId: string, text: string, sender: string | null, idempotency?: { key: string; requestHash: string }): Turn {
    const id = `t_${randomUUID().replace(/-/g, "").slice(0, 20)}`;
    const now = Date.now();
    return this.db.transaction((): Turn => {
      if (idempotency) this.recordIdempotency(`turn:${chatId}`, idempotency.key, idempotency.requestHash, id);
      this.db
        .prepare("INSERT INTO turn_turns (id, chat_id, text, sender, status, created_at) VALUES (?, ?, ?, ?, 'queued', ?)")
        .run(id, chatId, text, sender, now);
      this.db
        .prepare("INSERT INTO turn_messages (chat_id, turn_id, role, sender, text, created_at) VALUES (?, ?, 'user', ?, ?, ?)")
        .run(chatId, id, sender, text, now);
      return written(this.getTurn(id), `turn ${id}`);
    })();
  }

  getTurn(id: string): Turn | undefined {
    const row = this.db.prepare("SELECT * FROM turn_turns WHERE id = ?").get(id) as TurnRow | undefined;
    return row && toTurn(row);
  }

  listTurns(chatId: string, limit = 100): Turn[] {
    return (this.db
      .prepare("SELECT * FROM (SELECT * FROM turn_turns WHERE chat_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq")
      .all(chatId, limit) as TurnRow[]).map(toTurn);
  }

  listMessages(chatId: string, limit = 200): Message[] {
    return (this.db
      .prepare("SELECT * FROM (SELECT * FROM turn_messages WHERE chat_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id")
      .all(chatId, limit) as MessageRow[]).map(toMessage);
  }

  /**
   * The next runnable turn: the oldest queued turn of a ready chat that has nothing
   * running. Older turns of a chat always come first, which is what orders a chat.
   */
  nextRunnable(busyChats: ReadonlySet<string>): Turn | undefined {
    const rows = this.db
      .prepare(
        `SELECT t.* FROM turn_turns t JOIN turn_chats c ON c.id = t.chat_id
         WHERE t.status = 'queued' AND c.status = 'ready'
           AND t.seq = (SELECT MIN(seq) FROM turn_turns WHERE chat_id = t.chat_id AND status IN ('queued','running'))
         ORDER BY t.seq LIMIT 64`,
      )
      .all() as TurnRow[];
    const row = rows.find((r) => !busyChats.has(r.chat_id));
    return row && toTurn(row);
  }

  previousDoneTurn(chatId: string, beforeSeq: number): Turn | undefined {
    const row = this.db
      .prepare("SELECT * FROM turn_turns WHERE chat_id = ? AND seq < ? AND status = 'done' ORDER BY seq DESC LIMIT 1")
      .get(chatId, beforeSeq) as TurnRow | undefined;
    return row && toTurn(row);
  }

  markRunning(id: string, runner: string): void {
    this.db
      .prepare("UPDATE turn_turns SET status='running', attempts = attempts + 1, runner = ?, started_at = ? WHERE id = ?")
      .run(runner, Date.now(), id);
  }

  setPid(id: string, pid: number | null): void {
    this.db.prepare("UPDATE turn_turns SET pid = ? WHERE id = ?").run(pid, id);
  }

  /** A turn's answer, usage and activity, with the assistant message: one transaction. */
  finishTurn(id: string, reply: string, usage: { input: number; output: number }, activity: TurnActivity | null = null): void {
    const now = Date.now();
    this.db.transaction(() => {
      const turn = this.getTurn(id);
      if (!turn) throw new Error(`turns store: no turn ${id} to finish`);
      this.db
        .prepare(
          "UPDATE turn_turns SET status='done', reply=?, error_code=NULL, error=NULL, input_tokens=?, output_tokens=?, activity=?, finished_at=?, pid=NULL WHERE id=?",
        )
        .run(reply, usage.input, usage.output, serializeActivity(activity), now, id);
      this.db
        .prepare("INSERT INTO turn_messages (chat_id, turn_id, role, sender, text, created_at) VALUES (?, ?, 'assistant', NULL, ?, ?)")
        .run(turn.chatId, id, reply, now);
    })();
  }

  /** A turn's failure; `activity` is what it did before it failed (a timed-out turn may have run commands). */
  failTurn(id: string, code: string, message: string, status: "failed" | "interrupted" = "failed", activity: TurnActivity | null = null): void {
    this.db
      .prepare("UPDATE turn_turns SET status=?, error_code=?, error=?, activity=?, finished_at=?, pid=NULL WHERE id=?")
      .run(status, code, message, serializeActivity(activity), Date.now(), id);
  }

  /** After a crash: turns left `running`. */
  runningTurns(): Turn[] {
    return (this.db.prepare("SELECT * FROM turn_turns WHERE status = 'running' ORDER BY seq").all() as TurnRow[]).map(toTurn);
  }

  unfinishedBySender(chatId: string, sender: string): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM turn_turns WHERE chat_id = ? AND sender = ? AND status IN ('queued', 'running')").get(chatId, sender) as { n: number }).n;
  }

  /** Tokens used per sender of a chat's turns (the member whose message triggered each turn), most first. */
  usageBySender(chatId: string): Array<{ sender: string; tokens: number; turns: number }> {
    return this.db
      .prepare(
        `SELECT sender, SUM(COALESCE(input_tokens,0) + COALESCE(output_tokens,0)) AS tokens, COUNT(*) AS turns
         FROM turn_turns WHERE chat_id = ? AND sender IS NOT NULL GROUP BY sender ORDER BY tokens DESC, sender`,
      )
      .all(chatId) as Array<{ sender: string; tokens: number; turns: number }>;
  }

  /**
   * A turn stopped by a clean shutdown (its grace period ran out): queued again as a
   * retry, and the attempt it was on is not counted (a deploy is not a failure).
   */
  requeueAfterStop(id: string): void {
    this.db
      .prepare("UPDATE turn_turns SET status='queued', retry_of_interrupted=1, attempts = MAX(attempts - 1, 0), pid=NULL WHERE id=? AND status='running'")
      .run(id);
  }

  /**
   * Replaces the text of a turn that has not started (a bridge message edited before its turn
   * ran). False when it already started: the edit then becomes a follow-up.
   */
  replaceQueuedText(id: string, text: string): boolean {
    return this.db.transaction(() => {
      const r = this.db.prepare("UPDATE turn_turns SET text = ? WHERE id = ? AND status = 'queued' AND attempts = 0 AND retry_of_interrupted = 0").run(text, id);
      if (r.changes === 0) return false;
      this.db.prepare("UPDATE turn_messages SET text = ? WHERE turn_id = ? AND role = 'user'").run(text, id);
      return true;
    })();
  }

  requeueInterrupted(id: string): void {
    this.db.prepare("UPDATE turn_turns SET status='queued', retry_of_interrupted=1, pid=NULL WHERE id=?").run(id);
  }
}
