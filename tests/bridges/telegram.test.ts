import { receiptOf } from "../support/receipt-of.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BridgesModule } from "../../agent-runtime/bridges/module.js";
import { BridgeCore } from "../../agent-runtime/bridges/core.js";
import { BridgeStore } from "../../agent-runtime/bridges/store.js";
import { TelegramBridge } from "../../agent-runtime/bridges/telegram.js";
import { telegramBridgeSchema } from "../../agent-runtime/config/bridges.js";
import { createLogger } from "../../agent-runtime/log.js";
import { openDatabase } from "../../agent-runtime/store/database.js";
import type { TestRuntime } from "../turns/helpers.js";
import { startTelegramRuntime } from "./telegram-runtime.js";
import { startFakeTelegram, type FakeTelegram } from "./fake-telegram.js";


const TOKEN = "123456789:AAtestTOKENabcdefghijklmnopqrstuvwx";
const GROUP = -1001234567890;
const CHAT = "tg-n1001234567890";
const alice = { id: 1001, name: "Alice" };
const bob = { id: 1002, name: "Bob" };

describe("Telegram group through real turns (fake Bot API, real claude CLI)", { timeout: 300_000 }, () => {
  let tg: FakeTelegram;
  let rt: TestRuntime;
  let bridges: BridgesModule;
  const replies = (messageId: number) => tg.sent.filter((s) => s.replyTo === messageId);

  beforeAll(async () => {
    tg = await startFakeTelegram({ token: TOKEN });
    tg.admins.set(String(GROUP), [alice.id]);
    ({ rt, bridges } = await startTelegramRuntime(tg, TOKEN));
  });
  afterAll(async () => {
    await rt?.close();
    await tg?.close();
  });

  it("keeps unaddressed messages as context and answers a mention, replying to it, with who said what", async () => {
    const first = tg.groupMessage(GROUP, alice, "the deploy is at 5pm");
    await tg.waitFor(() => tg.pending() === 0, 60_000, "offset to confirm the first update");
    // First contact created the chat, with progress shown in the group.
    await tg.waitFor(() => tg.sent.some((s) => s.text.includes("Setting up")), 60_000, "provisioning notice");
    for (let i = 0; i < 600 && (await rt.call("GET", `/v1/chats/${CHAT}`)).json?.status !== "ready"; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await rt.call("GET", `/v1/chats/${CHAT}`)).json.provisioning.at(-1).step).toBe("complete");
    await tg.waitFor(() => tg.edits.some((e) => e.text.includes("ready")), 60_000, "ready notice");
    expect((await rt.call("GET", `/v1/chats/${CHAT}/turns`)).json.turns).toEqual([]);
    expect(replies(first.messageId)).toEqual([]);

    const ask = tg.groupMessage(GROUP, bob, "@picortex_test_bot when is the deploy?");
    await tg.waitFor(() => replies(ask.messageId).length === 1, 180_000, "the reply to the mention");
    const turns = (await rt.call("GET", `/v1/chats/${CHAT}/turns`)).json.turns;
    expect(turns).toHaveLength(1);
    expect(turns[0].sender).toBe("tg:1002");
    const lines = turns[0].text.split("\n");
    expect(JSON.parse(lines[1])).toEqual({ from: "Alice", id: "tg:1001", text: "the deploy is at 5pm" });
    expect(JSON.parse(lines[2])).toEqual({ from: "Bob", id: "tg:1002", addressed: true, text: "@picortex_test_bot when is the deploy?" });
    // The model saw the quoted context, and the group got the model's reply.
    expect(rt.fake.messageRequests().at(-1)!.lastUserText).toContain('"from":"Alice"');
    // Closed by the receipt: what the turn cost, and how long it took.
    expect(replies(ask.messageId)[0]!.text).toBe(`${turns[0].reply}\n\n${receiptOf(turns[0])}`);
    expect(receiptOf(turns[0])).toMatch(/^— [\d,]+ tokens, [\d.]+ s$/);
    expect(tg.chatActions.some((a) => a.chatId === String(GROUP) && a.action === "typing")).toBe(true);
    // The triggering message is marked seen → working → done.
    await tg.waitFor(() => tg.reactions.filter((r) => r.messageId === ask.messageId).length === 3, 30_000, "reactions");
    expect(tg.reactions.filter((r) => r.messageId === ask.messageId).map((r) => r.emoji)).toEqual(["👀", "✍", "👍"]);
    expect(tg.reactions.filter((r) => r.messageId === first.messageId)).toEqual([]);
  });

  it("answers a reply to the bot, sends a long reply as one file with a preview and a receipt, and retries a 429 after retry_after", async () => {
    const long = Array.from({ length: 1500 }, (_, i) => `word${i}`).join(" "); // ~10 kB: more than two messages
    rt.fake.enqueue({ text: long });
    let limited = 0;
    tg.onSend = (body) => (String(body.text).startsWith("word0 ") && limited++ === 0 ? { status: 429, retryAfter: 1 } : "ok");
    const botMsg = tg.sent.at(-1)!;
    const ask = tg.groupMessage(GROUP, alice, "please list the words", { reply_to_message: { message_id: botMsg.messageId, from: { id: tg.bot.id, is_bot: true, first_name: "picortex" } } });
    await tg.waitFor(() => tg.sent.some((s) => s.replyTo === ask.messageId), 180_000, "the reply");
    const replies = tg.sent.filter((s) => s.replyTo === ask.messageId || s.text.startsWith("word"));
    expect(long.length).toBeGreaterThan(2 * 4096);
    // One message: the file holds the whole reply, nothing lost or repeated; the caption previews it.
    expect(replies).toHaveLength(1);
    const doc = replies[0]!;
    expect(doc.document!.content === long).toBe(true);
    expect(doc.document!.name).toMatch(/^reply-[A-Za-z0-9_-]+\.md$/);
    expect(doc.text.length).toBeLessThanOrEqual(1024);
    expect(doc.text.startsWith("word0 word1 ")).toBe(true);
    expect(doc.text).toMatch(/the whole reply \(\d{1,3}(,\d{3})* characters\) is attached\.\n— [\d,]+ tokens, [\d.]+ s$/);
    // The 429 was retried after its retry_after, and the file arrived exactly once.
    expect(tg.sendAttempts.filter((a) => a.text.startsWith("word0 ")).map((a) => a.outcome)).toEqual(["429", "ok"]);
    await tg.waitFor(() => bridges.core.store.outbox().some((r) => r.text.startsWith("word") && r.status === "sent"), 30_000, "the file confirmed");
    const out = bridges.core.store.outbox().filter((r) => r.text.startsWith("word"));
    expect(out.map((r) => [r.chunk, r.status, r.platform_message_id !== null, r.document === long])).toEqual([[0, "sent", true, true]]);
    tg.onSend = () => "ok";
  });

  it("lets only admins /pause and /resume; a paused agent keeps context and says so", async () => {
    const nope = tg.groupMessage(GROUP, bob, "/pause");
    await tg.waitFor(() => replies(nope.messageId).length === 1, 60_000, "refusal");
    expect(replies(nope.messageId)[0]!.text).toMatch(/Only a group admin/);
    const pause = tg.groupMessage(GROUP, alice, "/pause@picortex_test_bot");
    await tg.waitFor(() => replies(pause.messageId).length === 1, 60_000, "pause ack");
    expect(replies(pause.messageId)[0]!.text).toMatch(/^Paused/);
    const before = (await rt.call("GET", `/v1/chats/${CHAT}/turns`)).json.turns.length;
    const ask = tg.groupMessage(GROUP, bob, "@picortex_test_bot are you there?");
    await tg.waitFor(() => replies(ask.messageId).length === 1, 60_000, "paused notice");
    expect(replies(ask.messageId)[0]!.text).toMatch(/paused/);
    expect((await rt.call("GET", `/v1/chats/${CHAT}/turns`)).json.turns.length).toBe(before);
    const budget = tg.groupMessage(GROUP, bob, "/budget");
    await tg.waitFor(() => replies(budget.messageId).length === 1, 60_000, "budget");
    expect(replies(budget.messageId)[0]!.text).toMatch(/^Budget: \d+ tokens used/);
    // Usage attributed to the member whose message triggered each turn.
    expect(replies(budget.messageId)[0]!.text).toMatch(/\nBy member:\nBob: \d+ tokens, 1 turn\nAlice: \d+ tokens, 1 turn$|\nBy member:\nAlice: \d+ tokens, 1 turn\nBob: \d+ tokens, 1 turn$/);
    const resume = tg.groupMessage(GROUP, alice, "/resume");
    await tg.waitFor(() => replies(resume.messageId).length === 1, 60_000, "resume ack");
    const again = tg.groupMessage(GROUP, bob, "@picortex_test_bot now?");
    await tg.waitFor(() => replies(again.messageId).length === 1, 180_000, "answer after resume");
    const turns = (await rt.call("GET", `/v1/chats/${CHAT}/turns`)).json.turns;
    // The message sent while paused reached the agent as context of the next turn.
    expect(turns.at(-1).text).toContain('"text":"@picortex_test_bot are you there?"');
  });

  it("tells apart posts on behalf of chats: each channel is its own sender, only the group itself (an anonymous admin) is an admin", async () => {
    const channelBot = { id: 136817688, name: "Channel" };
    const asChannel = (id: number, title: string, text: string) => tg.groupMessage(GROUP, channelBot, text, { sender_chat: { id, type: "channel", title } });
    const a = asChannel(-1009001, "Alice's channel", "@picortex_test_bot hello from a channel");
    await tg.waitFor(() => replies(a.messageId).length >= 1, 180_000, "answer to a channel post");
    const b = asChannel(-1009002, "Bob's channel", "/pause");
    await tg.waitFor(() => replies(b.messageId).length === 1, 60_000, "refusal to a channel");
    expect(replies(b.messageId)[0]!.text).toMatch(/Only a group admin/);
    const turns = (await rt.call("GET", `/v1/chats/${CHAT}/turns`)).json.turns;
    expect(turns.at(-1).sender).toBe("tgc:-1009001");
    expect(turns.at(-1).text).toContain('{"from":"Alice\'s channel","id":"tgc:-1009001","addressed":true');
    // The group posting as itself is an anonymous administrator.
    const anon = tg.groupMessage(GROUP, { id: 1087968824, name: "Group" }, "/mode addressed", { sender_chat: { id: GROUP, type: "supergroup", title: "Test group" } });
    await tg.waitFor(() => replies(anon.messageId).length === 1, 60_000, "anonymous admin");
    expect(replies(anon.messageId)[0]!.text).toBe("Reply mode is now addressed.");
  });

  it("refuses a second poller with a plain 409 message and dedups a re-sent update", async () => {
    const status = (await rt.call("GET", "/v1/bridges")).json;
    expect(status.telegram).toMatchObject({ state: "polling", username: "picortex_test_bot", privacyMode: false });
    expect(status.links).toEqual([{ platform: "telegram", platformChatId: String(GROUP), chatId: CHAT, title: "Test group", mode: "addressed", paused: false, approvers: [] }]);
    // Re-delivery of an update already recorded (Telegram resends what was not confirmed).
    const u = tg.groupMessage(GROUP, alice, "@picortex_test_bot once");
    await tg.waitFor(() => replies(u.messageId).length === 1, 180_000, "reply");
    const n = (await rt.call("GET", `/v1/chats/${CHAT}/turns`)).json.turns.length;
    const r = bridges.core.ingest({ platform: "telegram", updateId: String(u.updateId), platformChatId: String(GROUP), chatTitle: null, messageId: String(u.messageId), senderId: "tg:1001", senderName: "Alice", text: "@picortex_test_bot once", kind: "message", addressed: true });
    expect(r.status).toBe("duplicate");
    expect((await rt.call("GET", `/v1/chats/${CHAT}/turns`)).json.turns.length).toBe(n);

    // A second poller on the same token (another runtime) is told plainly what is wrong.
    const core2 = new BridgeCore(new BridgeStore(openDatabase(":memory:")), rt.turns, createLogger("t", () => {}), { maxAttempts: 1, minIntervalMs: () => 0 });
    const second = new TelegramBridge(telegramBridgeSchema.parse({ enabled: true, tokenFile: "/x", apiRoot: tg.url, pollTimeoutSeconds: 1 }), TOKEN, core2, createLogger("t", () => {}));
    second.start();
    try {
      await tg.waitFor(() => second.status.state === "conflict", 60_000, "409 conflict");
      expect(second.status.message).toMatch(/Another process is polling this bot token \(Telegram answered 409 Conflict\)/);
    } finally {
      await second.close();
    }
  });
});
