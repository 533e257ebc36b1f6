import { join } from "node:path";
import { PicortexError } from "../errors.js";
import { generateToken, hashToken } from "../http/auth.js";
import { HttpError } from "../http/errors.js";
import type { ChatHost, ProvisionEvent } from "./host/chat-host.js";
import { FINISHED_TURN_STATUSES, type Chat, type Message, type Turn } from "./domain.js";
import type { TurnEvent, TurnEvents } from "./events.js";
import type { Provisioner } from "./engine/provisioner.js";
import type { TurnStore } from "./store.js";
import type { WarmPool } from "./engine/warm-pool.js";

/** A client-chosen key that makes a create or a send safe to resend, with the hash of its request. */
export interface Idempotency {
  key: string;
  requestHash: string;
}

/** How long an idempotency key is remembered: far longer than any client retries for. */
export const IDEMPOTENCY_TTL_MS = 7 * 24 * 3600 * 1000;

/** The outcome of a create: a new chat (to provision) or, for a resent key, the first create's chat. */
export type CreateResult =
  | { replayed: false; chat: Chat; provision(onEvent?: (e: ProvisionEvent) => void): Promise<Chat> }
  | { replayed: true; chat: Promise<Chat> };

export interface DeleteResult {
  id: string;
  deleted: true;
  purged: boolean;
  archivePath: string | null;
}

export interface ChatServiceDeps {
  store: TurnStore;
  /** Starts queued turns that can run now (the engine's `kick`). */
  kick: () => void;
  provisioner: Provisioner;
  events: TurnEvents;
  host: ChatHost;
  warm: WarmPool | undefined;
  dataDir: string;
  onDelete: "archive" | "remove";
  defaultBudgetTokens: number | undefined;
}

const keyReused = (key: string, what: string) =>
  new HttpError(422, "idempotency_key_reused", `Idempotency-Key ${key} was already used for a different ${what}; send a new key with a new request.`);

/**
 * The chat workflows, between the callers (HTTP API, portal chat view, bridges) and the
 * store, engine, provisioner and chat host: create, show, list, budget, delete, send a
 * turn, follow it. Failures are `PicortexError`s; the callers map them (HTTP status, a
 * bridge's reply).
 */
export class ChatService {
  constructor(private readonly d: ChatServiceDeps) {}

  get hostMode(): "host" | "local" {
    return this.d.host.mode;
  }

  /** Whether the chat has a warm process now. */
  isWarm(chatId: string): boolean {
    return this.d.warm?.has(chatId) ?? false;
  }

  find(id: string): Chat | undefined {
    return this.d.store.getChat(id);
  }

  /** The chat, or `not_found`. */
  get(id: string): Chat {
    const chat = this.d.store.getChat(id);
    if (!chat) throw new PicortexError("not_found", "not_found", `No chat ${id}.`);
    return chat;
  }

  list(includeDeleted = false): Chat[] {
    return this.d.store.listChats(includeDeleted);
  }

  turns(chatId: string, limit?: number): Turn[] {
    return this.d.store.listTurns(chatId, limit);
  }

  messages(chatId: string): Message[] {
    return this.d.store.listMessages(chatId);
  }

  turn(turnId: string): Turn | undefined {
    return this.d.store.getTurn(turnId);
  }

  /** A turn of this chat, if there is one by that id. */
  findTurn(chatId: string, turnId: string): Turn | undefined {
    const turn = this.d.store.getTurn(turnId);
    return turn && turn.chatId === chatId ? turn : undefined;
  }

  /**
   * Creates a chat in `provisioning` (a `conflict` when it exists and is not deleted or
   * failed) and returns it with the provisioning to run. With an idempotency key already
   * used by the same request, the first create's chat instead (once its provisioning, if
   * still under way here, ends); with a different request, `idempotency_key_reused`.
   * `budgetTokens` undefined takes the configured default.
   */
  create(id: string, budgetTokens: number | null | undefined, idempotency?: Idempotency): CreateResult {
    const { store } = this.d;
    const prior = idempotency ? store.idempotent("chat", idempotency.key) : undefined;
    if (idempotency && prior) {
      if (prior.requestHash !== idempotency.requestHash) throw keyReused(idempotency.key, "chat creation");
      return { replayed: true, chat: this.settled(prior.resultId) };
    }
    const budget = budgetTokens === undefined ? (this.d.defaultBudgetTokens ?? null) : budgetTokens;
    // The real token is made by each provisioning attempt; this placeholder is never handed out.
    const chat = store.atomically(() => {
      const created = store.createChat(id, hashToken(generateToken("pcc_")), budget);
      if (idempotency) store.recordIdempotency("chat", idempotency.key, idempotency.requestHash, created.id);
      return created;
    });
    return { replayed: false, chat, provision: (onEvent) => this.d.provisioner.provision(chat.id, onEvent) };
  }

  /** The chat once a provisioning of it under way in this process ends. */
  private async settled(id: string): Promise<Chat> {
    const now = this.get(id);
    return (now.status === "provisioning" ? await this.d.provisioner.pending(id) : undefined) ?? this.get(id);
  }

  /** Sets (null: removes) the chat's token budget. */
  setBudget(id: string, budgetTokens: number | null): Chat {
    const chat = this.d.store.setBudget(id, budgetTokens);
    if (!chat) throw new PicortexError("not_found", "not_found", `No chat ${id}.`);
    return chat;
  }

  /** Tokens used per sender of a chat's turns, most first. */
  usageBySender(chatId: string): Array<{ sender: string; tokens: number; turns: number }> {
    return this.d.store.usageBySender(chatId);
  }

  /** How many of a sender's turns in a chat are queued or running. */
  unfinishedBySender(chatId: string, sender: string): number {
    return this.d.store.unfinishedBySender(chatId, sender);
  }

  /**
   * Deletes a chat: marked deleted first (no queued turn of it starts while it goes away),
   * its warm process stopped, its user and workspace removed (archived per `onDelete`), and
   * with `purge` its history dropped. A repeated delete runs the removal again: one that
   * failed half-way is finished, and the host's remove is a no-op once nothing is left.
   */
  async delete(chat: Chat, purge: boolean): Promise<DeleteResult> {
    const { store } = this.d;
    if (chat.status !== "deleted") {
      store.markDeleted(chat.id, null, false);
      await this.d.warm?.evict(chat.id, "chat deleted");
    }
    // The archive path is recorded only once the archive exists.
    let archivePath = chat.archivePath;
    const archiveTo = this.d.onDelete === "archive" ? join(this.d.dataDir, "archives", `${chat.id}-${Date.now()}.tar.gz`) : undefined;
    try {
      const { archived } = await this.d.host.remove(chat.id, archiveTo);
      if (archived && archiveTo) {
        archivePath = archiveTo;
        store.markDeleted(chat.id, archivePath, false);
      }
    } catch (err) {
      throw new PicortexError("failed", "delete_failed", `Chat ${chat.id} is marked deleted but removing its workspace failed: ${(err as Error).message}`, { cause: err });
    }
    if (purge) store.markDeleted(chat.id, archivePath, true);
    return { id: chat.id, deleted: true, purged: purge, archivePath };
  }

  /**
   * Queues a turn for a ready chat and starts it when it can run. With an idempotency key
   * already used by the same request, the first turn (`replayed`); with a different
   * request, `idempotency_key_reused`. A chat that is not ready is a `conflict` whose
   * message ends with `notReady`.
   */
  send(
    chat: Chat,
    text: string,
    sender: string | null,
    opts: { idempotency?: Idempotency; notReady?: string } = {},
  ): { turn: Turn; replayed: boolean } {
    const { store } = this.d;
    const { idempotency } = opts;
    const prior = idempotency ? store.idempotent(`turn:${chat.id}`, idempotency.key) : undefined;
    if (idempotency && prior) {
      // The same message resent (the answer to the first send was lost): the first turn, not a second one.
      if (prior.requestHash !== idempotency.requestHash) throw keyReused(idempotency.key, `turn in chat ${chat.id}`);
      const first = this.findTurn(chat.id, prior.resultId);
      if (!first) throw new PicortexError("not_found", "not_found", `The turn ${prior.resultId} this key created is gone (its chat was purged).`);
      return { turn: first, replayed: true };
    }
    if (chat.status !== "ready") {
      throw new PicortexError("conflict", "conflict", `Chat ${chat.id} is ${chat.status}; ${opts.notReady ?? "turns can only be sent to a ready chat."}`);
    }
    const turn = store.enqueueTurn(chat.id, text, sender, idempotency);
    this.d.kick();
    return { turn, replayed: false };
  }

  /**
   * Queues a turn whatever the chat's state (a bridge queues turns for a chat still being
   * provisioned; they run once it is ready). Durable on return; does not start it: call
   * `kick` after the transaction it is part of commits.
   */
  enqueue(chatId: string, text: string, sender: string | null): Turn {
    return this.d.store.enqueueTurn(chatId, text, sender);
  }

  kick(): void {
    this.d.kick();
  }

  /** Replaces the text of a turn that has not started; false when it has (see TurnStore.replaceQueuedText). */
  editQueuedTurn(turnId: string, text: string): boolean {
    return this.d.store.replaceQueuedText(turnId, text);
  }

  /** Fails every queued turn of a chat (they can never run, e.g. its provisioning failed). */
  failQueuedTurns(chatId: string, code: string, message: string): void {
    for (const t of this.d.store.listTurns(chatId)) if (t.status === "queued") this.d.store.failTurn(t.id, code, message);
  }

  /**
   * Follows a turn: `onEvent` gets its current status, then its progress; `onEnd` gets its
   * final state (undefined if it was purged meanwhile), exactly once. Subscribes before reading the state, so nothing between the
   * two is missed. Returns a function that stops following.
   */
  follow(turnId: string, onEvent: (e: TurnEvent) => void, onEnd: (turn: Turn | undefined) => void): () => void {
    let ended = false;
    const end = () => {
      unsubscribe();
      if (ended) return;
      ended = true;
      onEnd(this.d.store.getTurn(turnId)); // undefined only when its chat was purged meanwhile
    };
    const unsubscribe = this.d.events.subscribe(turnId, (e) => (e.type === "done" ? end() : onEvent(e)));
    const now = this.d.store.getTurn(turnId);
    if (!now || FINISHED_TURN_STATUSES.has(now.status)) end();
    else onEvent({ type: "status", status: now.status });
    return unsubscribe;
  }

  /** Forgets idempotency keys older than IDEMPOTENCY_TTL_MS. */
  pruneIdempotency(): void {
    this.d.store.pruneIdempotency(IDEMPOTENCY_TTL_MS);
  }
}
