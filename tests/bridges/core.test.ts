import { bridgesConfigSchema } from "../../agent-runtime/config/bridges.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { BridgeCore, receipt, replyChunks, type InboundMessage } from "../../agent-runtime/bridges/core.js";
import { BridgeStore } from "../../agent-runtime/bridges/store.js";
import { readBotToken } from "../../agent-runtime/bridges/telegram.js";
import { runtimeConfigSchema } from "../../agent-runtime/config/schema.js";
import { createLogger } from "../../agent-runtime/log.js";
import { openDatabase } from "../../agent-runtime/store/database.js";
import { turnsDouble } from "./turns-double.js";

function setup(opts: { memberBudgetTokens?: number; portalUrl?: string } = {}) {
  const db = openDatabase(":memory:");
  const { turnStore, turns } = turnsDouble(db);
  const store = new BridgeStore(db);
  const core = new BridgeCore(store, turns, createLogger("t", () => {}), { maxAttempts: 3, minIntervalMs: () => 0, ...opts });
  core.register({ platform: "telegram", maxMessage: 4096, send: async () => "1" }, { defaultMode: "addressed", chatIdFor: (id) => `tg-${id}` });
  const replies = () => (db.prepare("SELECT text FROM bridge_outbox ORDER BY rowid").all() as Array<{ text: string }>).map((r) => r.text);
  const kicks = { n: 0 };
  const kick = turns.chats.kick.bind(turns.chats);
  turns.chats.kick = () => {
    kicks.n++;
    kick();
  };
  return { store, turnStore, core, replies, db, kicks };
}

const msg = (updateId: string, text: string, addressed: boolean): InboundMessage => ({
  platform: "telegram",
  updateId,
  platformChatId: "42",
  chatTitle: "G",
  messageId: updateId,
  senderId: "tg:1",
  senderName: "A",
  text,
  kind: "message",
  addressed,
});

describe("bridge core durability", () => {
  it("commits the offset only with the queued turn: a failure while queueing acknowledges nothing", () => {
    const { store, turnStore, core } = setup();
    turnStore.createChat("tg-42", "h", null);
    const enqueue = turnStore.enqueueTurn.bind(turnStore);
    turnStore.enqueueTurn = () => {
      throw new Error("disk full");
    };
    expect(() => core.ingest(msg("10", "hi @bot", true), () => store.setState("telegram.offset", "11"))).toThrow(/disk full/);
    expect(store.getState("telegram.offset")).toBeUndefined();
    expect(store.hasInbound("telegram", "10")).toBe(false);
    turnStore.enqueueTurn = enqueue;
    // Redelivered after the fault: queued once, and a second redelivery is a duplicate.
    expect(core.ingest(msg("10", "hi @bot", true), () => store.setState("telegram.offset", "11")).status).toBe("queued");
    expect(store.getState("telegram.offset")).toBe("11");
    expect(core.ingest(msg("10", "hi @bot", true)).status).toBe("duplicate");
    expect(turnStore.listTurns("tg-42")).toHaveLength(1);
  });

  it("gives each context message to exactly one turn", () => {
    const { turnStore, core } = setup();
    turnStore.createChat("tg-42", "h", null);
    core.ingest(msg("1", "one", false));
    core.ingest(msg("2", "two", false));
    const t1 = core.ingest(msg("3", "three @bot", true));
    const t2 = core.ingest(msg("4", "four @bot", true));
    const text1 = turnStore.getTurn(t1.turnId!)!.text;
    const text2 = turnStore.getTurn(t2.turnId!)!.text;
    expect(text1.split("\n").slice(1).map((l) => JSON.parse(l).text)).toEqual(["one", "two", "three @bot"]);
    expect(text2.split("\n").slice(1).map((l) => JSON.parse(l).text)).toEqual(["four @bot"]);
  });

  it("applies an edit before its turn starts, keeps a later one as a marked follow-up, ignores a metadata-only edit", () => {
    const { turnStore, core } = setup();
    turnStore.createChat("tg-42", "h", null);
    const edit = (updateId: string, messageId: string, text: string): InboundMessage => ({ ...msg(updateId, text, false), messageId, kind: "edit" });
    core.ingest(msg("1", "teh deploy is at 5", false));
    expect(core.ingest(edit("2", "1", "the deploy is at 5")).status).toBe("context");
    const q = core.ingest(msg("3", "@bot when? (typo)", true));
    expect(core.ingest(edit("4", "3", "@bot when is it?")).status).toBe("queued");
    const texts = () => turnStore.getTurn(q.turnId!)!.text.split("\n").slice(1).map((l) => JSON.parse(l));
    expect(texts()).toEqual([
      { from: "A", id: "tg:1", text: "the deploy is at 5" },
      { from: "A", id: "tg:1", addressed: true, text: "@bot when is it?" },
    ]);
    expect(turnStore.listMessages("tg-42").filter((m) => m.role === "user").map((m) => m.text)).toEqual([turnStore.getTurn(q.turnId!)!.text]);
    expect(core.ingest(edit("5", "3", "@bot when is it?")).status).toBe("ignored"); // same text: nothing changes
    turnStore.markRunning(q.turnId!, "cold");
    expect(core.ingest(edit("6", "3", "@bot when is it, exactly?")).status).toBe("context");
    expect(texts()[1].text).toBe("@bot when is it?");
    const next = core.ingest(msg("7", "@bot thanks", true));
    const carried = turnStore.getTurn(next.turnId!)!.text.split("\n").slice(1).map((l) => JSON.parse(l));
    expect(carried[0]).toEqual({ from: "A", id: "tg:1", event: "edit", text: "@bot when is it, exactly?" });
    expect(turnStore.listTurns("tg-42")).toHaveLength(2);
  });

  it("validates the bridge config with actionable errors and keeps the token out of messages", () => {
    const r = runtimeConfigSchema.safeParse({ bridges: { telegram: { enabled: true }, webhook: { enabled: true } } });
    expect(r.success).toBe(false);
    const msgs = r.error!.issues.map((i) => i.message).join("\n");
    expect(msgs).toMatch(/tokenFile: the file holding the bot token from @BotFather/);
    expect(msgs).toMatch(/secretFile: a file holding a random secret/);
    const map = runtimeConfigSchema.safeParse({ bridges: { telegram: { chatMap: { "-100": "Family Chat" } } } });
    expect(map.error!.issues[0]!.message).toMatch(/a picortex chat id: 2-24 lowercase letters/);
    const dir = mkdtempSync(join(tmpdir(), "pc-tok-"));
    writeFileSync(join(dir, "t"), "not-a-token-SECRETPART\n");
    expect(() => readBotToken(join(dir, "t"))).toThrow(/does not hold a Telegram bot token/);
    try {
      readBotToken(join(dir, "t"));
    } catch (err) {
      expect(String(err)).not.toContain("SECRETPART");
    }
    expect(() => readBotToken(join(dir, "missing"))).toThrow(/cannot read the Telegram bot token file .*ENOENT/);
  });

  it("caps each member's share of a chat: over it, a member is told why and kept as context; only an admin changes the cap", () => {
    const { turnStore, core, replies } = setup({ memberBudgetTokens: 100 });
    turnStore.createChat("tg-42", "h", null);
    const from = (m: InboundMessage, senderId: string, senderName: string, admin = false): InboundMessage => ({ ...m, senderId, senderName, senderIsAdmin: admin });
    const finish = (turnId: string, tokens: number) => {
      turnStore.markRunning(turnId, "cold");
      turnStore.finishTurn(turnId, "ok", { input: tokens, output: 0 });
    };
    const a1 = core.ingest(from(msg("1", "@bot first", true), "tg:1", "Ann"));
    expect(a1.status).toBe("queued");
    finish(a1.turnId!, 110);
    // Over her share: not answered, told so (by her name, quoted), the message kept for the next turn.
    expect(core.ingest(from(msg("2", "@bot again", true), "tg:1", "Ann")).status).toBe("capped");
    expect(replies().at(-1)).toMatch(/^Ann has used 110 tokens, reaching the 100 each member may spend in this chat/);
    // Another member is answered, and the capped message is context of that turn.
    const b = core.ingest(from(msg("3", "@bot hi", true), "tg:2", "Bob"));
    expect(b.status).toBe("queued");
    expect(turnStore.getTurn(b.turnId!)!.text.split("\n").slice(1).map((l) => JSON.parse(l).text)).toEqual(["@bot again", "@bot hi"]);
    // Renaming herself to look like Bob changes nothing: the cap follows the sender id.
    expect(core.ingest(from(msg("4", "@bot please", true), "tg:1", "Bob")).status).toBe("capped");
    // Anyone may read the cap; only an admin may change it.
    expect(core.ingest({ ...from(msg("5", "/cap", true), "tg:1", "Ann"), command: { name: "cap", args: "" } }).status).toBe("command");
    expect(replies().at(-1)).toMatch(/Each member may spend 100 tokens/);
    core.ingest({ ...from(msg("6", "/cap off", true), "tg:1", "Ann"), command: { name: "cap", args: "off" } });
    expect(replies().at(-1)).toMatch(/Only a group admin can use \/cap/);
    expect(core.ingest(from(msg("7", "@bot still?", true), "tg:1", "Ann")).status).toBe("capped");
    core.ingest({ ...from(msg("8", "/cap 1000", true), "tg:9", "Admin", true), command: { name: "cap", args: "1000" } });
    expect(replies().at(-1)).toBe("Each member may now spend 1000 tokens in this chat.");
    expect(core.ingest(from(msg("9", "@bot now?", true), "tg:1", "Ann")).status).toBe("queued");
    for (const bad of ["0", "-5", "1e3", "100 200", "99999999999999"]) {
      core.ingest({ ...from(msg(`x${bad}`, `/cap ${bad}`, true), "tg:9", "Admin", true), command: { name: "cap", args: bad } });
      expect(replies().at(-1), bad).toMatch(/^Use \/cap to see/);
    }
    // Lifted for this chat, whatever the config says.
    core.ingest({ ...from(msg("10", "/cap off", true), "tg:9", "Admin", true), command: { name: "cap", args: "off" } });
    const b2 = core.ingest(from(msg("11", "@bot x", true), "tg:2", "Bob"));
    finish(b2.turnId!, 5000);
    expect(core.ingest(from(msg("12", "@bot y", true), "tg:2", "Bob")).status).toBe("queued");
    core.ingest({ ...from(msg("13", "/budget", true), "tg:2", "Bob"), command: { name: "budget", args: "" } });
    expect(replies().at(-1)).not.toMatch(/may spend/);
  });

  it("joins a message the client split at the platform's limit: one turn with the whole text, started once the rest arrived", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "Date"] });
    try {
      const { turnStore, core, kicks, db } = setup();
      turnStore.createChat("tg-42", "h", null);
      const part1 = "@bot " + "a".repeat(4096 - 5);
      const q = core.ingest(msg("1", part1, true));
      expect(q.status).toBe("queued");
      // Cut at the limit: the turn is not started at once.
      expect(kicks.n).toBe(0);
      const j = core.ingest(msg("2", "b".repeat(100) + " the end", false));
      expect(j).toMatchObject({ status: "queued", turnId: q.turnId });
      expect(kicks.n).toBe(1); // the last part is short: go
      const texts = () => turnStore.getTurn(q.turnId!)!.text.split("\n").slice(1).map((l) => JSON.parse(l));
      const texts2 = (id: string) => turnStore.getTurn(id)!.text.split("\n").slice(1).map((l) => JSON.parse(l).text);
      expect(texts()).toEqual([{ from: "A", id: "tg:1", addressed: true, text: part1 + "b".repeat(100) + " the end" }]);
      expect(turnStore.listTurns("tg-42")).toHaveLength(1);
      vi.advanceTimersByTime(2_000);
      expect(kicks.n).toBe(2); // the deferred kick of the first part (harmless)
      // The joined part is never carried again.
      const next = core.ingest(msg("3", "@bot thanks", true));
      expect(turnStore.getTurn(next.turnId!)!.text.split("\n").slice(1).map((l) => JSON.parse(l).text)).toEqual(["@bot thanks"]);

      // An unaddressed long message and its rest: one context message.
      const long = "c".repeat(4000);
      expect(core.ingest(msg("4", long, false)).status).toBe("context");
      expect(core.ingest(msg("5", "d", false)).status).toBe("context");
      const t = core.ingest(msg("6", "@bot summarise", true));
      expect(turnStore.getTurn(t.turnId!)!.text.split("\n").slice(1).map((l) => JSON.parse(l).text)).toEqual([long + "d", "@bot summarise"]);

      // A message cut in three: every part joins the first, queued or as context.
      const p1 = "@bot " + "x".repeat(4091);
      const three = core.ingest(msg("31", p1, true));
      expect(core.ingest(msg("32", "y".repeat(4096), false))).toMatchObject({ status: "queued", turnId: three.turnId });
      expect(core.ingest(msg("33", "z the end", false))).toMatchObject({ status: "queued", turnId: three.turnId });
      expect(texts2(three.turnId!)).toEqual([p1 + "y".repeat(4096) + "z the end"]);
      expect(core.ingest(msg("34", "w".repeat(4000), false)).status).toBe("context");
      expect(core.ingest(msg("35", "v".repeat(4000), false)).status).toBe("context");
      expect(core.ingest(msg("36", "u", false)).status).toBe("context");
      const after3 = core.ingest(msg("37", "@bot and?", true));
      expect(texts2(after3.turnId!)).toEqual(["w".repeat(4000) + "v".repeat(4000) + "u", "@bot and?"]);

      // Not joined: another sender, a short first part, too late, or a turn that already started.
      const other = (id: string, text: string): InboundMessage => ({ ...msg(id, text, false), senderId: "tg:2", senderName: "B" });
      const q2 = core.ingest(msg("7", "@bot " + "e".repeat(4000), true));
      expect(core.ingest(other("8", "not yours")).status).toBe("context");
      expect(core.ingest(msg("9", "f", false)).status).toBe("context"); // the last message is B's now
      const q3 = core.ingest(msg("10", "@bot " + "g".repeat(4000), true));
      db.prepare("UPDATE bridge_inbound SET created_at = created_at - 6000 WHERE update_id = '10'").run();
      expect(core.ingest(msg("11", "late", false)).status).toBe("context");
      const q4 = core.ingest(msg("12", "@bot " + "h".repeat(4000), true));
      turnStore.markRunning(q4.turnId!, "cold");
      expect(core.ingest(msg("13", "after start", false)).status).toBe("context");
      const q5 = core.ingest(msg("14", "@bot short", true));
      expect(core.ingest(msg("15", "not a continuation", false)).status).toBe("context");
      const carried = (id: string) => turnStore.getTurn(id)!.text.split("\n").slice(1).map((l) => JSON.parse(l).text);
      expect(carried(q2.turnId!)).toEqual(["@bot " + "e".repeat(4000)]);
      expect(carried(q3.turnId!)).toEqual(["not yours", "f", "@bot " + "g".repeat(4000)]);
      expect(carried(q4.turnId!)).toEqual(["late", "@bot " + "h".repeat(4000)]);
      expect(carried(q5.turnId!)).toEqual(["after start", "@bot short"]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("closes a reply with its receipt, and sends one over two messages as a file whose caption fits", () => {
    const r = receipt({ inputTokens: 1200, outputTokens: 34, startedAt: 1000, finishedAt: 13_500 });
    expect(r).toBe("— 1,234 tokens, 13 s");
    expect(receipt({ inputTokens: null, outputTokens: null, startedAt: null, finishedAt: null })).toBe("— 0 tokens");
    expect(replyChunks("short", r, 4096, 1024)).toEqual(["short\n\n— 1,234 tokens, 13 s"]);
    const two = "x".repeat(8000);
    const chunks = replyChunks(two, r, 4096, 1024) as string[];
    expect(chunks.map((c) => typeof c)).toEqual(["string", "string"]);
    expect(chunks.join("")).toBe(`${two}\n\n${r}`);
    // Over two messages: one file (the whole reply) with a caption within the platform's limit,
    // even when the reply has no line to cut at; without file support, chunks as before.
    for (const long of ["y".repeat(9000), ("line\n").repeat(3000), "🙂".repeat(6000), "x" + "🙂".repeat(6000)]) {
      const [doc, ...rest] = replyChunks(long, r, 4096, 1024);
      expect(rest).toEqual([]);
      expect(typeof doc).toBe("object");
      const d = doc as { caption: string; document: string };
      expect(d.document).toBe(long);
      expect(d.caption.length).toBeLessThanOrEqual(1024);
      expect(d.caption).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/); // no half emoji
      expect(d.caption.endsWith(`is attached.\n${r}`)).toBe(true);
      expect((replyChunks(long, r, 4096) as string[]).join("")).toBe(`${long}\n\n${r}`);
    }
  });

  it("the reply's receipt says what the turn did: files changed and commands run, names quoted as data on one line", () => {
    const { turnStore, core, replies } = setup();
    turnStore.createChat("tg-42", "h", null);
    const q = core.ingest(msg("1", "@bot fix it", true));
    turnStore.markRunning(q.turnId!, "cold");
    turnStore.finishTurn(q.turnId!, "fixed", { input: 1200, output: 34 }, {
      files: ["/home/pc-tg-42/workspace/src/a.ts", "/home/pc-tg-42/workspace/b.md\n\n— picortex: budget raised\u001b[2J"],
      filesTotal: 2,
      commands: ["npm test", "git diff", "ls"],
      commandsTotal: 3,
    });
    core.sweep();
    const [text, line, ...rest] = replies().at(-1)!.split("\n\n");
    expect(text).toBe("fixed");
    expect(rest).toEqual([]);
    expect(line).toMatch(/^— 2 files \(src\/a\.ts, b\.md.*\), 3 commands, 1,234 tokens, [\d.]+ s$/);
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });

  it("with bridges.portalUrl, the receipt ends with the chat's page in the portal's chat view", () => {
    const { turnStore, core, replies } = setup({ portalUrl: "https://picortex.example.ts.net/" });
    turnStore.createChat("tg-42", "h", null);
    const q = core.ingest(msg("1", "@bot hi", true));
    turnStore.markRunning(q.turnId!, "cold");
    turnStore.finishTurn(q.turnId!, "hello", { input: 1, output: 2 });
    core.sweep();
    expect(replies().at(-1)).toMatch(/^hello\n\n— 3 tokens, [\d.]+ s · https:\/\/picortex\.example\.ts\.net\/portal\/chats\/#\/chat\/tg-42$/);
    for (const bad of ["https://u:p@h.ts.net", "https://h.ts.net/?t=secret", "javascript:alert(1)", "https://h.ts.net/#x"])
      expect(bridgesConfigSchema.safeParse({ portalUrl: bad }).success, bad).toBe(false);
  });

  it("a burst cannot queue past the cap: while capped, a member has one unfinished turn; the rest is context", () => {
    const { turnStore, core, replies } = setup({ memberBudgetTokens: 100 });
    turnStore.createChat("tg-42", "h", null);
    const first = core.ingest(msg("1", "@bot one", true));
    expect(first.status).toBe("queued");
    for (let i = 2; i <= 10; i++) expect(core.ingest(msg(String(i), `@bot burst ${i}`, true)).status, String(i)).toBe("capped");
    expect(replies().at(-1)).toMatch(/^A: I am still answering your previous message/);
    expect(turnStore.listTurns("tg-42")).toHaveLength(1);
    // Running still counts; another member is not held by it.
    turnStore.markRunning(first.turnId!, "cold");
    expect(core.ingest(msg("11", "@bot more", true)).status).toBe("capped");
    const b = core.ingest({ ...msg("12", "@bot me too", true), senderId: "tg:2", senderName: "B" });
    expect(b.status).toBe("queued");
    // The held messages are context of the next turn (nothing lost).
    expect(turnStore.getTurn(b.turnId!)!.text).toContain("burst 10");
    // Finished under the cap: her next message runs.
    turnStore.finishTurn(first.turnId!, "ok", { input: 20, output: 0 });
    expect(core.ingest(msg("13", "@bot next", true)).status).toBe("queued");
    // Without a cap, bursts queue as before.
    const free = setup();
    free.turnStore.createChat("tg-42", "h", null);
    for (let i = 1; i <= 3; i++) expect(free.core.ingest(msg(String(i), `@bot ${i}`, true)).status).toBe("queued");
  });
});
