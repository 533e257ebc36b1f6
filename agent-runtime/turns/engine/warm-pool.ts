import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import type { WarmConfig } from "../../config/turns.js";
import type { Logger } from "../../log.js";
import type { ChatHost } from "../host/chat-host.js";
import { streamJsonUserLine } from "./claude-args.js";
import type { ProcessOutcome, TurnHooks } from "./cold-runner.js";
import { treeRssMiB } from "./process-memory.js";
import { createStreamJsonReader, type TurnResult } from "./stream-json.js";
import { exited, terminateGroup } from "./terminate.js";

interface PendingTurn {
  hooks: TurnHooks;
  resolve(outcome: ProcessOutcome): void;
}

interface WarmProcess {
  chatId: string;
  /** The session flags it was started with; a later turn needs the same session. */
  sessionId: string;
  /** What else of its flags a turn depends on (approvals on or off): a change restarts it. */
  profile: string;
  child: ChildProcessWithoutNullStreams;
  lastUsed: number;
  pending?: PendingTurn;
  stderr: string;
  dead: boolean;
}

/**
 * Warm chats: one long-lived `claude -p --input-format stream-json` process per
 * recently active chat, fed that chat's turns one at a time (the engine guarantees a
 * chat never has two turns running). Bounded by max-warm, idle timeout and a memory
 * budget; evicting or losing a process only means the next turn starts cold with
 * `--resume`. The durable queue stays the source of truth.
 */
export class WarmPool {
  private readonly procs = new Map<string, WarmProcess>();
  /** Evicted processes still exiting (flushing their transcript), per chat. */
  private readonly exiting = new Map<string, Promise<void>>();
  private readonly idleTimer: NodeJS.Timeout;

  constructor(
    private readonly host: ChatHost,
    private readonly config: WarmConfig,
    private readonly graceMs: number,
    private readonly log: Logger,
  ) {
    this.idleTimer = setInterval(() => this.evictIdle(), Math.max(250, Math.min(30_000, (config.idleSeconds * 1000) / 4)));
    this.idleTimer.unref();
  }

  has(chatId: string): boolean {
    const p = this.procs.get(chatId);
    return !!p && !p.dead;
  }

  list(): Array<{ chatId: string; pid: number | undefined; idleMs: number; busy: boolean }> {
    return [...this.procs.values()].map((p) => ({ chatId: p.chatId, pid: p.child.pid, idleMs: Date.now() - p.lastUsed, busy: !!p.pending }));
  }

  totalRssMiB(): number {
    let sum = 0;
    for (const p of this.procs.values()) if (p.child.pid && !p.dead) sum += treeRssMiB(p.child.pid);
    return sum;
  }

  private spawnWarm(chatId: string, sessionId: string, flags: string[], profile: string): WarmProcess {
    const spec = this.host.spawnSpec(chatId);
    const child = spawn(spec.command, [...spec.args, ...flags], { cwd: spec.cwd, env: spec.env, detached: true, stdio: ["pipe", "pipe", "pipe"] });
    const proc: WarmProcess = { chatId, sessionId, profile, child, lastUsed: Date.now(), stderr: "", dead: false };
    let result: TurnResult | undefined;
    const reader = createStreamJsonReader({
      onInit: () => proc.pending?.hooks.onInit?.(),
      onText: (t) => proc.pending?.hooks.onText?.(t),
      onToolUse: (u) => proc.pending?.hooks.onToolUse?.(u),
      onResult: (r) => {
        result = r;
        const pending = proc.pending;
        proc.pending = undefined;
        proc.lastUsed = Date.now();
        pending?.resolve({ result: r, code: null, signal: null, stderr: proc.stderr, timedOut: false, reaped: true });
        result = undefined;
      },
    });
    child.stdout.on("data", (c: Buffer) => reader.feed(c));
    child.stderr.on("data", (c: Buffer) => {
      proc.stderr = (proc.stderr + c.toString()).slice(-16_384);
    });
    child.stdin.on("error", () => {});
    child.once("error", () => {});
    child.once("close", (code, signal) => {
      proc.dead = true;
      reader.end();
      if (this.procs.get(chatId) === proc) this.procs.delete(chatId);
      const pending = proc.pending;
      proc.pending = undefined;
      // Died mid-turn: the engine reports it; the next turn starts cold with --resume.
      pending?.resolve({ result, code, signal, stderr: proc.stderr, timedOut: false, reaped: true });
    });
    this.procs.set(chatId, proc);
    return proc;
  }

  /**
   * Runs one turn on the chat's warm process, starting it (with `flags`) if needed.
   * Returns the same outcome shape as a cold turn.
   */
  async runTurn(
    chatId: string,
    sessionId: string,
    flags: () => string[],
    prompt: string,
    timeoutMs: number,
    hooks: TurnHooks,
    profile = "",
  ): Promise<ProcessOutcome & { started: boolean }> {
    let proc = this.procs.get(chatId);
    if (proc && (proc.dead || proc.sessionId !== sessionId || proc.profile !== profile)) {
      await this.evict(chatId, proc.profile !== profile ? "permission settings changed" : "session changed");
      proc = undefined;
    }
    const started = !proc;
    if (!proc) {
      await this.makeRoom(1);
      proc = this.spawnWarm(chatId, sessionId, flags(), profile);
      if (proc.child.pid) hooks.onSpawn?.(proc.child.pid);
    } else if (proc.child.pid) hooks.onSpawn?.(proc.child.pid);
    const p = proc;
    p.lastUsed = Date.now();
    const outcome = await new Promise<ProcessOutcome>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      p.pending = {
        hooks,
        resolve: (o) => {
          if (timer) clearTimeout(timer);
          resolve(o);
        },
      };
      timer = setTimeout(() => {
        const pending = p.pending;
        p.pending = undefined;
        this.procs.delete(chatId);
        void terminateGroup(p.child, this.graceMs, () => this.host.reapAll(chatId, p.child.pid)).then((reaped) =>
          pending?.resolve({ result: undefined, code: null, signal: null, stderr: p.stderr, timedOut: true, reaped }),
        );
      }, timeoutMs);
      p.child.stdin.write(streamJsonUserLine(prompt));
    });
    if (!outcome.result && !outcome.timedOut) this.procs.delete(chatId);
    await this.enforceBudget(chatId);
    return { ...outcome, started };
  }

  /**
   * Whether a turn of this chat should run warm: it already is, there is room, or the
   * least recently used idle process has been idle at least minIdleToEvictSeconds.
   * A chat that is warm MUST run warm (never two processes on one session).
   */
  admits(chatId: string): boolean {
    if (this.has(chatId)) return true;
    const live = [...this.procs.values()].filter((p) => !p.dead).length;
    if (live < this.config.maxWarm) return true;
    const victim = this.lruIdle();
    return !!victim && Date.now() - victim.lastUsed >= this.config.minIdleToEvictSeconds * 1000;
  }

  /** Evicts least recently used idle processes until `incoming` more fit under max-warm. */
  private async makeRoom(incoming: number): Promise<void> {
    while (this.procs.size + incoming > this.config.maxWarm) {
      const victim = this.lruIdle();
      if (!victim) return; // all busy: over the limit briefly rather than block a turn
      // Not awaited: the victim leaves the pool now and exits in the background, so the
      // turn that needs the slot does not wait for another chat's process to wind down.
      void this.evict(victim.chatId, "max-warm reached");
    }
  }

  private async enforceBudget(justUsed: string): Promise<void> {
    await this.makeRoom(0);
    let rss = this.totalRssMiB();
    while (rss > this.config.memoryBudgetMiB) {
      const victim = this.lruIdle(justUsed) ?? this.lruIdle();
      if (!victim) return;
      void this.evict(victim.chatId, `memory budget ${this.config.memoryBudgetMiB} MiB exceeded (${Math.round(rss)} MiB)`);
      rss = this.totalRssMiB();
    }
  }

  private lruIdle(except?: string): WarmProcess | undefined {
    return [...this.procs.values()].filter((p) => !p.pending && !p.dead && p.chatId !== except).sort((a, b) => a.lastUsed - b.lastUsed)[0];
  }

  private evictIdle(): void {
    const now = Date.now();
    for (const p of this.procs.values()) {
      if (!p.pending && now - p.lastUsed > this.config.idleSeconds * 1000) void this.evict(p.chatId, "idle");
    }
  }

  /** Stops a chat's warm process: close stdin (it exits on its own), then the group. */
  async evict(chatId: string, reason: string): Promise<void> {
    const p = this.procs.get(chatId);
    if (!p) return this.settled(chatId);
    this.procs.delete(chatId);
    this.log.info("warm process stopped", { chatId, reason });
    p.child.stdin.end();
    const done = (async () => {
      if (!(await exited(p.child, 2000))) await terminateGroup(p.child, this.graceMs, () => this.host.reapAll(chatId, p.child.pid));
    })();
    this.exiting.set(chatId, done);
    await done;
    if (this.exiting.get(chatId) === done) this.exiting.delete(chatId);
  }

  /**
   * Resolves once no evicted process of this chat is still exiting. The engine awaits
   * it before starting any process on the chat's session: an exiting process may still
   * be writing the transcript the next one reads (never two processes on one session).
   */
  async settled(chatId: string): Promise<void> {
    await this.exiting.get(chatId);
  }

  async close(): Promise<void> {
    clearInterval(this.idleTimer);
    await Promise.all([...this.procs.keys()].map((id) => this.evict(id, "runtime stopping")));
  }
}
