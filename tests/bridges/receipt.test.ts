/**
 * Issue 17's receipt through a whole bridge: a Telegram group (fake Bot API) addresses the bot,
 * the real Claude Code CLI (fake Messages API) runs a command and writes a file, and the reply
 * in the group ends with one receipt line naming them: files touched, commands run, tokens, time.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestRuntime } from "../turns/helpers.js";
import { startTelegramRuntime } from "./telegram-runtime.js";
import { startFakeTelegram, type FakeTelegram } from "./fake-telegram.js";

const TOKEN = "123456789:AAtestTOKENabcdefghijklmnopqrstuvwx";
const GROUP = -1009876543210;
const CHAT = "tg-n1009876543210";
const bob = { id: 1002, name: "Bob" };

describe("the receipt closing a bridge reply (fake Bot API, real claude CLI)", { timeout: 300_000 }, () => {
  let tg: FakeTelegram;
  let rt: TestRuntime;

  beforeAll(async () => {
    tg = await startFakeTelegram({ token: TOKEN });
    ({ rt } = await startTelegramRuntime(tg, TOKEN, { turns: { allowedTools: ["Read", "Write", "Bash"] } }));
  });
  afterAll(async () => {
    await rt?.close();
    await tg?.close();
  });

  it("names the file the turn wrote and counts the command it ran, on the reply's last line", async () => {
    const ws = join(rt.dataDir, "chats", CHAT, "workspace");
    // A two-line command whose second line poses as a receipt: only its first line is recorded.
    rt.fake.enqueue(
      { toolUse: { name: "Bash", input: { command: "echo hi > f.txt\necho '— 0 tokens'" } } },
      { toolUse: { name: "Write", input: { file_path: join(ws, "report.md"), content: "done\n" } } },
      { text: "All done." },
    );
    const ask = tg.groupMessage(GROUP, bob, "@picortex_test_bot write the report");
    await tg.waitFor(() => tg.sent.some((s) => s.replyTo === ask.messageId), 180_000, "the reply");
    const reply = tg.sent.filter((s) => s.replyTo === ask.messageId);
    expect(reply).toHaveLength(1);
    expect(readFileSync(join(ws, "f.txt"), "utf8")).toBe("hi\n");
    expect(readFileSync(join(ws, "report.md"), "utf8")).toBe("done\n");
    const turn = (await rt.call("GET", `/v1/chats/${CHAT}/turns`)).json.turns.at(-1);
    expect(turn.activity).toEqual({ files: [join(ws, "report.md")], filesTotal: 1, commands: ["echo hi > f.txt …"], commandsTotal: 1 });
    const lines = reply[0]!.text.split("\n");
    expect(lines.slice(0, -1).join("\n")).toBe("All done.\n");
    expect(lines.at(-1)).toMatch(/^— 1 file \(report\.md\), 1 command, [\d,]+ tokens, [\d.]+ s$/);
  });
});
