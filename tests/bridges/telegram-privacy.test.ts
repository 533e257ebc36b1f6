import { afterAll, describe, expect, it } from "vitest";
import { BridgeCore } from "../../agent-runtime/bridges/core.js";
import { BridgeStore } from "../../agent-runtime/bridges/store.js";
import { PRIVACY_NOTICE, TelegramBridge } from "../../agent-runtime/bridges/telegram.js";
import { telegramBridgeSchema } from "../../agent-runtime/config/bridges.js";
import { createLogger } from "../../agent-runtime/log.js";
import { openDatabase } from "../../agent-runtime/store/database.js";
import { startFakeTelegram, type FakeTelegram } from "./fake-telegram.js";
import { turnsDouble } from "./turns-double.js";

const TOKEN = "111222333:AAprivacyTOKENabcdefghijklmnopqrstu";

describe("Telegram privacy mode", { timeout: 60_000 }, () => {
  let tg: FakeTelegram;
  const closers: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of closers.reverse()) await c();
  });

  it("is detected through getMe and explained once in each group, durably", async () => {
    tg = await startFakeTelegram({ token: TOKEN, canReadAll: false });
    closers.push(() => tg.close());
    const db = openDatabase(":memory:");
    const { turns } = turnsDouble(db, "never");
    const core = new BridgeCore(new BridgeStore(db), turns, createLogger("t", () => {}), { maxAttempts: 3, minIntervalMs: () => 0 });
    const lines: string[] = [];
    const bridge = new TelegramBridge(telegramBridgeSchema.parse({ enabled: true, tokenFile: "/x", apiRoot: tg.url, pollTimeoutSeconds: 1, allowChats: ["-100555"] }), TOKEN, core, createLogger("t", (l) => lines.push(l)));
    core.start();
    bridge.start();
    closers.push(async () => {
      await bridge.close();
      await core.close();
    });
    tg.groupMessage(-100666, { id: 8, name: "Stranger" }, "/budget"); // a group outside allowChats: recorded, ignored
    tg.groupMessage(-100555, { id: 9, name: "Zoe" }, "/budget");
    tg.groupMessage(-100555, { id: 9, name: "Zoe" }, "/budget");
    await tg.waitFor(() => tg.sent.filter((s) => s.text === PRIVACY_NOTICE).length === 1 && tg.sent.filter((s) => s.text.startsWith("Budget")).length === 2, 30_000, "notice");
    expect(bridge.status).toMatchObject({ state: "polling", privacyMode: true });
    expect(lines.join("\n")).toMatch(/privacy mode on: .*\/setprivacy.*Disable.*add me again/);
    expect(tg.sent.filter((s) => s.text === PRIVACY_NOTICE)).toHaveLength(1);
    expect(tg.sent.filter((s) => s.chatId === "-100666")).toEqual([]);
    expect(core.store.listLinks().map((l) => l.platform_chat_id)).toEqual(["-100555"]);
    expect(lines.join("\n")).not.toContain(TOKEN.split(":")[1]);
  });
});
