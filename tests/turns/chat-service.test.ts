/**
 * The turns service layer (issue 14): rows become domain objects at the store, the chat
 * workflows live in ChatService (create, send, delete, follow), and their failures are
 * PicortexErrors that the HTTP layer maps to a status in one place.
 */
import { describe, expect, it } from "vitest";
import { PicortexError } from "../../agent-runtime/errors.js";
import { httpStatusOf } from "../../agent-runtime/http/errors.js";
import { openDatabase } from "../../agent-runtime/store/database.js";
import type { ChatHost } from "../../agent-runtime/turns/host/chat-host.js";
import { ChatService } from "../../agent-runtime/turns/chat-service.js";
import { budgetSpent, type Chat } from "../../agent-runtime/turns/domain.js";
import { TurnEvents, type TurnEvent } from "../../agent-runtime/turns/events.js";
import type { Provisioner } from "../../agent-runtime/turns/engine/provisioner.js";
import { TurnStore } from "../../agent-runtime/turns/store.js";

function setup(remove: ChatHost["remove"] = async () => ({ archived: true })) {
  const db = openDatabase(":memory:");
  const store = new TurnStore(db);
  const events = new TurnEvents();
  let kicks = 0;
  const removed: Array<[string, string | undefined]> = [];
  const provisioner = {
    provision: (id: string): Promise<Chat> => {
      store.setChatStatus(id, "ready");
      return Promise.resolve(store.getChat(id)!);
    },
    pending: () => undefined,
  } as unknown as Provisioner;
  const host = {
    mode: "local",
    remove: (id: string, to: string | undefined) => {
      removed.push([id, to]);
      return remove(id, to);
    },
  } as unknown as ChatHost;
  const chats = new ChatService({
    store,
    kick: () => void kicks++,
    provisioner,
    events,
    host,
    warm: undefined,
    dataDir: "/data",
    onDelete: "archive",
    defaultBudgetTokens: 5000,
  });
  return { db, store, events, chats, removed, kicks: () => kicks };
}

const caught = (fn: () => unknown): PicortexError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof PicortexError) return err;
    throw err;
  }
  throw new Error("expected a PicortexError");
};

describe("turns store: domain objects", () => {
  it("returns camelCase chats and turns with booleans and parsed logs, never rows", () => {
    const { store } = setup();
    const chat = store.createChat("alpha", "hash-a", 100);
    expect(chat).toMatchObject({ id: "alpha", status: "provisioning", sessionStarted: false, tokenHash: "hash-a", budgetTokens: 100, usedInputTokens: 0, provisionLog: [], provisionAttempts: 0 });
    expect(Object.keys(chat).some((k) => k.includes("_"))).toBe(false);
    store.appendProvisionLog("alpha", { step: "create_user", progress: 0.5, message: "m" });
    store.markSessionStarted("alpha", true);
    expect(store.getChat("alpha")).toMatchObject({ sessionStarted: true, provisionLog: [{ step: "create_user", progress: 0.5, message: "m" }] });
    const turn = store.enqueueTurn("alpha", "hi", "ann");
    expect(turn).toMatchObject({ chatId: "alpha", text: "hi", sender: "ann", status: "queued", retryOfInterrupted: false, errorCode: null });
    expect(Object.keys(turn).some((k) => k.includes("_"))).toBe(false);
    expect(store.listMessages("alpha")[0]).toMatchObject({ chatId: "alpha", turnId: turn.id, role: "user" });
  });

  it("createChat returns the chat it made, re-creates a deleted one, and refuses an active one as a 409 conflict", () => {
    const { store } = setup();
    store.createChat("beta", "h1", null);
    const dup = caught(() => store.createChat("beta", "h2", null));
    expect([dup.category, dup.code, httpStatusOf(dup)]).toEqual(["conflict", "conflict", 409]);
    expect(dup.message).toBe("Chat beta already exists; delete it first or pick another id.");
    store.markDeleted("beta", null, false);
    const again = store.createChat("beta", "h3", 7);
    expect(again).toMatchObject({ id: "beta", status: "provisioning", tokenHash: "h3", budgetTokens: 7, deletedAt: null });
  });

  it("one budget rule: spent once used reaches the budget, never without one", () => {
    expect(budgetSpent({ budgetTokens: 10, usedInputTokens: 4, usedOutputTokens: 5 })).toBeUndefined();
    expect(budgetSpent({ budgetTokens: 10, usedInputTokens: 4, usedOutputTokens: 6 })).toEqual({ used: 10, budget: 10 });
    expect(budgetSpent({ budgetTokens: null, usedInputTokens: 1e9, usedOutputTokens: 1 })).toBeUndefined();
  });
});

describe("ChatService", () => {
  it("create takes the default budget, provisions through the provisioner, and replays a resent key", async () => {
    const { chats } = setup();
    const idem = { key: "key-0000001", requestHash: "r1" };
    const first = chats.create("gamma", undefined, idem);
    if (first.replayed) throw new Error("a first create is not a replay");
    expect(first.chat).toMatchObject({ status: "provisioning", budgetTokens: 5000 });
    expect((await first.provision()).status).toBe("ready");
    const again = chats.create("gamma", undefined, idem);
    if (!again.replayed) throw new Error("a resend is a replay");
    expect((await again.chat).status).toBe("ready");
    const reused = caught(() => chats.create("gamma", undefined, { key: "key-0000001", requestHash: "other" }));
    expect([reused.code, httpStatusOf(reused)]).toEqual(["idempotency_key_reused", 422]);
  });

  it("send refuses a chat that is not ready (nothing queued), queues and starts once, and replays a resent key", () => {
    const { store, chats, kicks } = setup();
    const chat = store.createChat("delta", "h", null);
    const notReady = caught(() => chats.send(chat, "hi", null));
    expect([notReady.category, httpStatusOf(notReady), notReady.message]).toEqual(["conflict", 409, "Chat delta is provisioning; turns can only be sent to a ready chat."]);
    expect(store.listTurns("delta")).toEqual([]);
    store.setChatStatus("delta", "ready");
    const ready = chats.get("delta");
    const idem = { key: "send-000001", requestHash: "h1" };
    const sent = chats.send(ready, "hi", "ann", { idempotency: idem });
    expect(sent.replayed).toBe(false);
    expect(kicks()).toBe(1);
    const resent = chats.send(ready, "hi", "ann", { idempotency: idem });
    expect(resent).toEqual({ turn: sent.turn, replayed: true });
    expect(kicks()).toBe(1);
    expect(store.listTurns("delta")).toHaveLength(1);
  });

  it("delete marks the chat deleted first (its queued turns fail), archives, and purges on request", async () => {
    const { store, chats, removed } = setup();
    store.createChat("eps", "h", null);
    store.setChatStatus("eps", "ready");
    const t = store.enqueueTurn("eps", "queued", null);
    const r = await chats.delete(chats.get("eps"), false);
    expect(r).toMatchObject({ id: "eps", deleted: true, purged: false, archivePath: expect.stringMatching(/^\/data\/archives\/eps-\d+\.tar\.gz$/) });
    expect(removed).toEqual([["eps", r.archivePath]]);
    expect(store.getTurn(t.id)).toMatchObject({ status: "failed", errorCode: "chat_deleted" });
    expect(chats.get("eps")).toMatchObject({ status: "deleted", archivePath: r.archivePath });
    await chats.delete(chats.get("eps"), true);
    expect(chats.find("eps")).toBeUndefined();
    expect(caught(() => chats.get("eps")).code).toBe("not_found");
  });

  it("a failed removal is a 500 delete_failed that keeps its cause, with the chat still deleted", async () => {
    const boom = new Error("userdel: user is busy");
    const { store, chats } = setup(async () => {
      throw boom;
    });
    store.createChat("zeta", "h", null);
    const err = await chats.delete(chats.get("zeta"), false).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PicortexError);
    const e = err as PicortexError;
    expect([e.code, httpStatusOf(e), e.cause]).toEqual(["delete_failed", 500, boom]);
    expect(e.message).toContain("marked deleted but removing its workspace failed: userdel: user is busy");
    expect(chats.get("zeta").status).toBe("deleted");
  });

  it("follow reports the status, then progress, then the final turn exactly once", () => {
    const { store, events, chats } = setup();
    store.createChat("eta", "h", null);
    const t = store.enqueueTurn("eta", "hi", null);
    const seen: TurnEvent[] = [];
    const ends: Array<string | undefined> = [];
    const stop = chats.follow(t.id, (e) => seen.push(e), (final) => ends.push(final?.status));
    events.emit(t.id, { type: "text", text: "he" });
    store.markRunning(t.id, "cold");
    store.finishTurn(t.id, "hello", { input: 1, output: 2 });
    events.emit(t.id, { type: "done", status: "done", reply: "hello" });
    events.emit(t.id, { type: "done", status: "done", reply: "hello" });
    stop();
    expect(seen).toEqual([{ type: "status", status: "queued" }, { type: "text", text: "he" }]);
    expect(ends).toEqual(["done"]);
    // Already finished: ends at once, with no status event.
    const late: TurnEvent[] = [];
    const lateEnds: Array<string | undefined> = [];
    chats.follow(t.id, (e) => late.push(e), (final) => lateEnds.push(final?.reply ?? undefined));
    expect([late, lateEnds]).toEqual([[], ["hello"]]);
  });
});
