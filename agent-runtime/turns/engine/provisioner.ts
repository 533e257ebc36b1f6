import { generateToken, hashToken } from "../../http/auth.js";
import { PicortexError } from "../../errors.js";
import type { Logger } from "../../log.js";
import type { ChatHost, ProvisionEvent } from "../host/chat-host.js";
import type { Chat, TurnStore } from "../store.js";

/** Attempts (first run plus resumes after restarts) before a chat is marked failed. */
export const MAX_PROVISION_ATTEMPTS = 3;

/**
 * Provisions chats: at most `limit` at once (each runs a `claude` process), the rest
 * wait in arrival order with a `queued` progress event. Every attempt is recorded
 * before it touches the host and each progress step is logged durably, so a chat a
 * crash left `provisioning` is resumed on the next start: its partial state is rolled
 * back (`remove`, a no-op when nothing is there) and provisioning runs again with a
 * fresh token, which makes every step idempotent. After MAX_PROVISION_ATTEMPTS it is
 * marked failed with a message saying what to do, never left `provisioning`.
 */
export class Provisioner {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private closed = false;
  private readonly inflight = new Map<string, Promise<Chat>>();

  constructor(
    private readonly store: TurnStore,
    private readonly host: ChatHost,
    private readonly gatewayUrl: () => string,
    private readonly onReady: () => void,
    private readonly log: Logger,
    readonly limit: number,
  ) {}

  /** Chats provisioning now, and waiting for a slot. */
  get load(): { active: number; queued: number } {
    return { active: this.active, queued: this.waiting.length };
  }

  private record(chatId: string, e: ProvisionEvent, onEvent: (e: ProvisionEvent) => void): void {
    this.store.appendProvisionLog(chatId, e);
    onEvent(e);
  }

  private async slot(chatId: string, onEvent: (e: ProvisionEvent) => void): Promise<void> {
    if (this.active < this.limit && this.waiting.length === 0) {
      this.active++;
      return;
    }
    onEvent({ step: "queued", progress: 0, message: `waiting for a provisioning slot (${this.waiting.length + 1} in line, ${this.limit} at a time)` });
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    // The releasing chat handed its slot over (active stays counted).
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }

  /** The chat as it is now; `not_found` if it was purged meanwhile. */
  private current(chatId: string): Chat {
    const chat = this.store.getChat(chatId);
    if (!chat) throw new PicortexError("not_found", "not_found", `No chat ${chatId}: it was deleted while it was being provisioned.`);
    return chat;
  }

  /** The provisioning of `chatId` under way in this process, if any (a resent create waits for it). */
  pending(chatId: string): Promise<Chat> | undefined {
    return this.inflight.get(chatId);
  }

  /** Provisions a chat in `provisioning` (new, or resumed after a restart); resolves with its final row. */
  provision(chatId: string, onEvent: (e: ProvisionEvent) => void = () => {}, resumed = false): Promise<Chat> {
    const run = this.run(chatId, onEvent, resumed).finally(() => {
      if (this.inflight.get(chatId) === run) this.inflight.delete(chatId);
    });
    this.inflight.set(chatId, run);
    return run;
  }

  private async run(chatId: string, onEvent: (e: ProvisionEvent) => void, resumed: boolean): Promise<Chat> {
    await this.slot(chatId, onEvent);
    try {
      if (this.closed) return this.current(chatId);
      const before = this.current(chatId);
      if (before.status !== "provisioning") return before;
      if (before.provisionAttempts >= MAX_PROVISION_ATTEMPTS) {
        this.store.setChatStatus(
          chatId,
          "failed",
          `Provisioning was interrupted ${before.provisionAttempts} times and is not tried again; delete the chat (\`picortex chat delete ${chatId}\`) and create it again.`,
        );
        return this.current(chatId);
      }
      // Counted (with the token the chat's files will hold) before the host is touched.
      const token = generateToken("pcc_");
      const attempt = this.store.beginProvisionAttempt(chatId, hashToken(token));
      try {
        if (resumed) {
          this.record(
            chatId,
            { step: "resume", progress: 0, message: `the runtime restarted during provisioning; undoing the partial setup and starting again (attempt ${attempt} of ${MAX_PROVISION_ATTEMPTS})` },
            onEvent,
          );
          await this.host.remove(chatId, undefined);
        }
        await this.host.provision(chatId, { token, gatewayUrl: this.gatewayUrl() }, (e) => this.record(chatId, e, onEvent));
        if (this.closed) return this.current(chatId); // stays `provisioning`: the next start resumes it
        this.store.setChatStatus(chatId, "ready");
        this.onReady();
      } catch (err) {
        if (this.closed) return this.current(chatId);
        this.store.setChatStatus(chatId, "failed", (err as Error).message);
        this.log.warn("chat provisioning failed", { chatId, error: (err as Error).message });
      }
      return this.current(chatId);
    } finally {
      this.release();
    }
  }

  /**
   * On start: resumes every chat a crash left `provisioning` (in the background, through the
   * same queue). Never rejects; a chat purged meanwhile resolves to undefined.
   */
  resumeAll(): Promise<Array<Chat | undefined>> {
    const chats = this.store.provisioningChats();
    for (const c of chats) this.log.warn("resuming provisioning interrupted by a restart", { chatId: c.id, attempts: c.provisionAttempts });
    return Promise.all(
      chats.map((c) =>
        this.provision(c.id, () => {}, true).catch((err: unknown) => {
          this.log.error("resuming provisioning failed", { chatId: c.id, error: String(err) });
          return this.store.getChat(c.id);
        }),
      ),
    );
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w();
  }
}
