import type { TurnsConfig } from "../../config/turns.js";
import type { Logger } from "../../log.js";
import type { ChatHost } from "../host/chat-host.js";
import { claudeTurnFlags, sessionMismatch, type TurnPolicy } from "./claude-args.js";
import { runColdTurn, type ProcessOutcome, type TurnHooks } from "./cold-runner.js";
import { TurnError } from "../errors.js";
import type { TurnEvents } from "../events.js";
import { budgetSpent, type Chat, type Turn } from "../domain.js";
import type { TurnStore } from "../store.js";
import type { WarmPool } from "./warm-pool.js";
import { ActivityRecorder } from "../activity.js";

/**
 * A retried turn may already be in the transcript (a killed turn keeps its user
 * message, and the next resume adds "No response requested."), so the retry says so
 * instead of silently repeating the message.
 */
export function retryPrompt(text: string): string {
  return (
    "[picortex: the runtime restarted while you were answering the next message, so this is a retry. " +
    "You may already have acted on it in part (run commands, changed files) before the restart: check the current state " +
    "before repeating any action. If it already appears above, answer it once now; do not answer it twice.]\n\n" +
    text
  );
}

/** How much of the history a new session is given when its transcript was lost. */
const RECAP_EXCHANGES = 10;
const RECAP_MAX_CHARS = 20_000;

/** A stored reply without the runtime's notice in front (what the model itself answered). */
function modelReply(chat: Chat, reply: string): string {
  return chat.notice && reply.startsWith(chat.notice + "\n\n") ? reply.slice(chat.notice.length + 2) : reply;
}

function tail(s: string, n = 400): string {
  const t = s.trim();
  return t.length > n ? "…" + t.slice(-n) : t;
}

/**
 * The queue runner: strictly ordered within a chat (one turn at a time, oldest first),
 * parallel across chats up to maxParallel. All state transitions are committed to
 * SQLite first, so a crash at any point leaves a state `recover()` understands.
 */
export class TurnEngine {
  private readonly busy = new Set<string>();
  private readonly running = new Map<string, Promise<void>>();
  private stopped = false;
  /** SIGTERM: no new turn starts; running ones may finish (see drain). */
  private draining = false;
  private pendingRecover = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** How often held work is tried again while the disk is full. */
  diskRetryMs = 2000;
  /** A chat's settings, unasked tools and approvals for its next process (claude-args.ts TurnPolicy). */
  policy: (chatId: string) => TurnPolicy = () => ({});

  constructor(
    private readonly store: TurnStore,
    private readonly host: ChatHost,
    private readonly config: TurnsConfig,
    private readonly events: TurnEvents,
    private readonly log: Logger,
    private readonly warm: WarmPool | undefined,
    /**
     * Throws a TurnError when no turn can run at all (e.g. no Anthropic key): the turn fails
     * at once with that message instead of starting Claude Code (and its MCP servers) only
     * for the gateway to refuse its first request.
     */
    private readonly preflight: () => void = () => {},
  ) {}

  /** After a crash: turns left `running` are retried once or reported as interrupted. */
  async recover(): Promise<void> {
    this.pendingRecover = false;
    for (const turn of this.store.runningTurns()) {
      // The old runtime's claude may still be running (its group was detached): stop it
      // before anything else touches that session.
      await this.host.reapAll(turn.chatId, turn.pid).catch(() => {});
      try {
        if (this.config.retryInterrupted && turn.attempts < 2) {
          this.store.requeueInterrupted(turn.id);
          this.log.warn("turn interrupted by a restart; retrying once", { turnId: turn.id, chatId: turn.chatId });
        } else {
          this.store.failTurn(turn.id, "interrupted", "The runtime stopped while this turn ran and it was not retried; send it again if needed.", "interrupted");
          this.log.warn("turn interrupted by a restart; reported", { turnId: turn.id, chatId: turn.chatId });
        }
      } catch (err) {
        // A full disk: the turn stays `running` (its chat waits) and recovery runs again later.
        if (!this.store.disk?.classify(err)) throw err;
        this.log.warn("disk full: recovering an interrupted turn waits for space", { turnId: turn.id });
        this.pendingRecover = true;
        this.retryLater();
        return;
      }
    }
  }

  /** While the disk is full, tries held work again every few seconds (no restart needed). */
  private retryLater(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void (async () => {
        try {
          if (!this.store.flushHeldUsage()) return this.retryLater();
          if (this.pendingRecover) await this.recover();
          if (!this.pendingRecover) this.kick();
        } catch (err) {
          this.log.error("retrying held work failed", { error: String(err) });
          this.retryLater();
        }
      })();
    }, this.diskRetryMs);
    this.retryTimer.unref?.();
  }

  /**
   * Commits a turn's final state. While the disk is full the result is held in memory and
   * the write retried, so a finished turn is never lost or failed for lack of space;
   * false when the engine stopped first (the turn stays `running` and the next start retries it).
   */
  private async persist(turnId: string, write: () => void): Promise<boolean> {
    for (let warned = false; ; ) {
      try {
        write();
        this.store.disk?.ok();
        this.store.flushHeldUsage(); // usage the gateway could not write meanwhile
        return true;
      } catch (err) {
        if (!this.store.disk?.classify(err)) throw err;
        if (!warned) this.log.warn("disk full: holding a finished turn until it can be saved", { turnId });
        warned = true;
      }
      if (this.stopped) return false;
      await new Promise((r) => setTimeout(r, this.diskRetryMs));
    }
  }

  /** Runs a write whose loss is harmless (a pid, a hint); a full disk only logs. */
  private bestEffort(what: string, write: () => void): void {
    try {
      write();
    } catch (err) {
      if (!this.store.disk?.classify(err)) throw err;
      this.log.warn(`disk full: could not record ${what}`);
    }
  }

  kick(): void {
    if (this.stopped || this.draining) return;
    while (this.running.size < this.config.maxParallel) {
      const turn = this.store.nextRunnable(this.busy);
      if (!turn) return;
      this.busy.add(turn.chatId);
      const run = this.run(turn).finally(() => {
        this.busy.delete(turn.chatId);
        this.running.delete(turn.id);
        this.kick();
      });
      this.running.set(turn.id, run);
    }
  }

  /** Resolves when nothing is queued or running (tests, bench). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.race(this.running.values());
  }

  private async run(turn: Turn): Promise<void> {
    try {
      await this.runTurn(turn);
    } catch (err) {
      // Nothing here may reject: an unhandled rejection would take the whole runtime down.
      if (this.store.disk?.classify(err)) {
        this.log.warn("disk full: turn waits for space", { turnId: turn.id, chatId: turn.chatId });
        this.retryLater();
      } else this.log.error("turn runner failed", { turnId: turn.id, chatId: turn.chatId, error: String((err as Error)?.stack ?? err) });
    }
  }

  private async runTurn(turn: Turn): Promise<void> {
    const useWarm = !!this.warm && ((this.config.warm.enabled && this.config.warm.maxWarm > 0 && this.warm.admits(turn.chatId)) || this.warm.has(turn.chatId));
    this.store.markRunning(turn.id, useWarm ? "warm" : "cold"); // a full disk leaves it queued
    this.events.emit(turn.id, { type: "status", status: "running", attempt: turn.attempts + 1, runner: useWarm ? "warm" : "cold" });
    // A turn finished elsewhere meanwhile (its chat was deleted) keeps that outcome.
    const stillRunning = () => this.store.getTurn(turn.id)?.status === "running";
    // What the turn did (files changed, commands run), saved with its outcome, failed or not.
    const activity = new ActivityRecorder();
    try {
      this.preflight();
      const { reply, usage } = await this.execute(turn, useWarm, activity);
      if (this.stopped) return; // leave it `running`: the next start retries it
      if (!stillRunning()) return;
      const done = activity.summary();
      if (!(await this.persist(turn.id, () => this.store.finishTurn(turn.id, reply, usage, done)))) return;
      this.events.emit(turn.id, { type: "done", status: "done", reply });
    } catch (err) {
      if (this.stopped || !stillRunning()) return;
      const e = err instanceof TurnError ? err : new TurnError("claude_failed", String((err as Error)?.message ?? err), { cause: err });
      const did = activity.summary();
      if (!(await this.persist(turn.id, () => this.store.failTurn(turn.id, e.code, e.message, "failed", did)))) return;
      this.log.warn("turn failed", { turnId: turn.id, chatId: turn.chatId, code: e.code });
      this.events.emit(turn.id, { type: "done", status: "failed", error: { code: e.code, message: e.message } });
    }
  }

  /**
   * A warm process writes its transcript 50-300 ms after it reports a result, so one
   * killed in that window (OOM, crash) loses the last exchange from Claude's memory.
   * Waiting for the write would add ~100 ms to every warm turn; instead, when the chat
   * has no live process, the next turn checks (local mode: the runtime can read the
   * transcript) and, if the previous reply is missing, recaps it from the durable history.
   */
  private lostExchangeRecap(turn: Turn): string {
    if (!this.host.transcriptHas || this.warm?.has(turn.chatId)) return "";
    const chat = this.store.getChat(turn.chatId);
    const prev = this.store.previousDoneTurn(turn.chatId, turn.seq);
    if (!chat || !prev?.reply || !chat.sessionStarted) return "";
    if (this.host.transcriptHas(chat.id, chat.sessionId, modelReply(chat, prev.reply).slice(0, 200))) return "";
    this.log.warn("previous exchange missing from the transcript; recapping it", { chatId: chat.id, turnId: prev.id });
    return (
      "[picortex: your process stopped before it saved the last exchange. For context, the previous message was:\n" +
      `${prev.text}\n-- and you answered:\n${modelReply(chat, prev.reply)}\n-- end of recap]\n\n`
    );
  }

  /** Starts a new Claude session for a chat whose transcript is unusable; returns the notice for the user. */
  private replaceSession(chat: Chat, turn: Turn, why: string): string {
    const kept = this.store.recentExchanges(chat.id, turn.seq, RECAP_EXCHANGES).length;
    const notice =
      `[picortex: this chat's Claude transcript was damaged (${why}), so Claude continues in a new session ` +
      `with a recap of the last ${kept} exchange${kept === 1 ? "" : "s"} from picortex's history; ` +
      `anything else from before (tool results, files it read) is forgotten. The old transcript is kept for inspection.]`;
    this.store.replaceSession(chat.id, notice);
    this.log.warn("chat transcript damaged; continuing in a new session with a recap", { chatId: chat.id, oldSession: chat.sessionId, why });
    return notice;
  }

  /** The recent conversation from the durable history, for a new session (bounded). */
  private historyRecap(turn: Turn): string {
    const turns = this.store.recentExchanges(turn.chatId, turn.seq, RECAP_EXCHANGES);
    if (turns.length === 0) return "";
    let body = "";
    for (const t of turns.reverse()) {
      const piece = `user: ${t.text}\nyou: ${t.reply ?? ""}\n\n`.replace(/^(user: [^]*?\nyou: )\[picortex: this chat's Claude transcript was damaged[^\]]*\]\n\n/, "$1");
      if (body.length + piece.length > RECAP_MAX_CHARS) break;
      body = piece + body;
    }
    return `[picortex: your earlier transcript of this chat was lost. The recent conversation, for context:\n\n${body}-- end of recap]\n\n`;
  }

  private checkBudget(chat: Chat): void {
    const spent = budgetSpent(chat);
    if (spent) {
      throw new TurnError(
        "budget_exceeded",
        `Chat ${chat.id} has used ${spent.used} of its ${spent.budget}-token budget; raise it with \`picortex chat budget ${chat.id} <tokens>\` to continue.`,
      );
    }
  }

  private async execute(turn: Turn, useWarm: boolean, activity: ActivityRecorder): Promise<{ reply: string; usage: { input: number; output: number } }> {
    // Never start a process on this session while an evicted one is still flushing it.
    await this.warm?.settled(turn.chatId);
    const base = turn.retryOfInterrupted ? retryPrompt(turn.text) : turn.text;
    let prompt = this.lostExchangeRecap(turn) + base;
    let notice: string | undefined;
    // A transcript Claude cannot read makes it forget the chat (or refuse it): start a new
    // session with a recap from the runtime's own history, and tell the user.
    // A live warm process holds the conversation in memory and may not have written its
    // transcript yet (it does so after the result, later under load): the file on disk only
    // speaks for a chat with no process.
    const startChat = this.warm?.has(turn.chatId) ? undefined : this.store.getChat(turn.chatId);
    let damage = startChat ? this.host.transcriptDamage?.(startChat.id, startChat.sessionId) : undefined;
    if (startChat && !damage && startChat.sessionStarted && this.host.transcriptExists(startChat.id, startChat.sessionId) === false && this.store.previousDoneTurn(startChat.id, turn.seq)) {
      damage = "the transcript file is missing";
    }
    if (startChat && damage) {
      notice = this.replaceSession(startChat, turn, `${damage}`);
      prompt = this.historyRecap(turn) + base;
    }
    let streamed = "";
    const hooks: TurnHooks = {
      onSpawn: (pid) => this.bestEffort("a turn's pid", () => this.store.setPid(turn.id, pid)),
      onInit: () => {
        const chat = this.store.getChat(turn.chatId);
        if (chat && !chat.sessionStarted) this.bestEffort("a started session", () => this.store.markSessionStarted(turn.chatId, true));
      },
      onText: (text) => {
        streamed += text;
        this.events.emit(turn.id, { type: "text", text });
      },
      onToolUse: (use) => activity.add(use),
    };
    // At most one switch of session flag (the CLI tells us which one was right), and one
    // new session when the CLI cannot find a conversation it had.
    let replaced = !!notice;
    for (let attempt = 0; attempt < 3; attempt++) {
      const chat = this.store.getChat(turn.chatId);
      if (!chat || chat.status !== "ready") throw new TurnError("chat_not_ready", `Chat ${turn.chatId} is not ready (${chat?.status ?? "missing"}).`);
      this.checkBudget(chat);
      const resume = this.host.transcriptExists(chat.id, chat.sessionId) ?? chat.sessionStarted;
      const session = { sessionId: chat.sessionId, resume };
      const timeoutMs = this.config.turnTimeoutSeconds * 1000;
      const graceMs = this.config.killGraceSeconds * 1000;
      let outcome: ProcessOutcome;
      const policy = this.policy(chat.id);
      if (useWarm) {
        // A warm process keeps the flags it started with: a changed policy starts a new one.
        outcome = await this.warm!.runTurn(chat.id, chat.sessionId, () => claudeTurnFlags(this.config, session, true, policy), prompt, timeoutMs, hooks, JSON.stringify(policy));
      } else {
        outcome = await runColdTurn({ host: this.host, chatId: chat.id, flags: claudeTurnFlags(this.config, session, false, policy), prompt, timeoutMs, graceMs }, hooks);
      }
      if (outcome.timedOut) {
        throw new TurnError(
          outcome.reaped ? "timeout" : "unreapable",
          outcome.reaped
            ? `claude did not finish within ${this.config.turnTimeoutSeconds} s; its process group was killed. The chat keeps working; send the turn again or raise turns.turnTimeoutSeconds.`
            : `claude did not finish within ${this.config.turnTimeoutSeconds} s and could not be killed; check the host for stuck processes of pc-${chat.id}.`,
        );
      }
      const result = outcome.result;
      activity.deny(result?.deniedToolUseIds ?? []);
      const mismatch = sessionMismatch(outcome.stderr, result?.text ?? "");
      if ((!result || result.isError) && mismatch === "not_found" && resume && !replaced) {
        // Resumed a session whose transcript exists (or existed) and Claude found no conversation: it is lost.
        notice = this.replaceSession(chat, turn, "Claude could not find its conversation (the transcript is missing or unreadable)");
        prompt = this.historyRecap(turn) + base;
        replaced = true;
        if (useWarm) await this.warm!.evict(chat.id, "transcript lost");
        continue;
      }
      if ((!result || result.isError) && mismatch && attempt === 0) {
        this.bestEffort("the session flag", () => this.store.markSessionStarted(chat.id, mismatch === "in_use"));
        if (useWarm) await this.warm!.evict(chat.id, "session flag mismatch");
        continue;
      }
      if (!result) {
        throw new TurnError(
          useWarm ? "claude_exited" : "claude_failed",
          `claude exited (${outcome.signal ?? `code ${outcome.code}`}) without a result${outcome.stderr.trim() ? `: ${tail(outcome.stderr)}` : ""}.`,
        );
      }
      if (result.isError || (outcome.code !== null && outcome.code !== 0)) {
        const budget = /budget/i.test(result.text) ? "budget_exceeded" : "claude_failed";
        // The CLI marks an API error (no key, 4xx) as subtype "success" with is_error set: name
        // the subtype only when it says something (error_max_turns, error_during_execution…).
        const detail = [result.subtype && result.subtype !== "success" ? result.subtype : "", outcome.code ? `exit ${outcome.code}` : ""].filter(Boolean).join(", ");
        throw new TurnError(budget, `claude reported an error${detail ? ` (${detail})` : ""}: ${tail(result.text || outcome.stderr)}`);
      }
      const reply = result.text || streamed;
      return { reply: notice ? `${notice}\n\n${reply}` : reply, usage: result.usage };
    }
    throw new TurnError("claude_failed", "claude rejected both --session-id and --resume for this chat's session.");
  }

  /**
   * A clean stop (SIGTERM): starts no new turn and waits up to `graceMs` for the running
   * ones to finish. Resolves with how many were still running when the grace ran out.
   */
  async drain(graceMs: number): Promise<number> {
    this.draining = true;
    if (this.running.size > 0) {
      this.log.info("stopping: letting running turns finish", { running: this.running.size, graceSeconds: graceMs / 1000 });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.idle(), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    return this.running.size;
  }

  /**
   * Stops scheduling; running turns' processes are killed. After a clean stop (drain)
   * they are queued again without counting the attempt; otherwise they stay `running`
   * for the next start's crash recovery.
   */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.draining) {
      for (const turn of this.store.runningTurns()) {
        await this.host.reapAll(turn.chatId, turn.pid).catch(() => {});
        try {
          this.store.requeueAfterStop(turn.id);
          this.log.warn("stopping: a turn did not finish within the grace period; it runs again (as a retry) after the restart", { turnId: turn.id });
        } catch (err) {
          this.log.warn("stopping: could not requeue a turn; crash recovery will retry it", { turnId: turn.id, error: String(err) });
        }
      }
    }
    for (const turn of this.store.runningTurns()) await this.host.reapAll(turn.chatId, turn.pid).catch(() => {});
    await this.warm?.close();
  }
}
