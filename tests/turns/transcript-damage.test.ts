import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { transcriptPath } from "../../agent-runtime/turns/host/chat-host.js";
import { REPO, createChat, sendTurn, startTestRuntime, type TestRuntime } from "./helpers.js";

const run = promisify(execFile);

describe("a damaged or lost Claude transcript is never forgotten silently", { timeout: 240_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: false } } });
  });
  afterAll(async () => rt?.close());

  const transcriptOf = (chatId: string) => {
    const chat = rt.turns.store.getChat(chatId)!;
    const home = join(rt.dataDir, "chats", chatId);
    return transcriptPath(join(home, ".claude"), join(home, "workspace"), chat.sessionId);
  };

  for (const [name, damage] of [
    ["garbled lines in the middle", (p: string) => {
      const lines = readFileSync(p, "utf8").split("\n");
      writeFileSync(p, lines.map((l, i) => (i > 0 && i < lines.length - 2 ? l.slice(0, Math.floor(l.length / 2)) : l)).join("\n"));
    }],
    ["the file deleted", (p: string) => rmSync(p)],
  ] as const) {
    it(`${name}: the next turn continues with a recap from the history, and the reply and \`chat show\` say so`, async () => {
      const id = name.startsWith("garbled") ? "dmg-a" : "dmg-b";
      await createChat(rt, id);
      const t1 = await sendTurn(rt, id, "remember the word heliotrope");
      expect((await rt.waitTurn(id, t1)).status).toBe("done");
      const oldSession = rt.turns.store.getChat(id)!.sessionId;
      damage(transcriptOf(id));

      const t2 = await sendTurn(rt, id, "what was the word?");
      const turn = await rt.waitTurn(id, t2);
      expect(turn.status).toBe("done");
      expect(turn.reply).toMatch(/^\[picortex: this chat's Claude transcript was damaged \(.+\), so Claude continues in a new session with a recap of the last 1 exchange/);
      expect(turn.reply).toContain("what was the word?");
      // The model was given the earlier exchange.
      const sent = rt.fake.messageRequests().at(-1)!.userTexts!.join("\n");
      expect(sent).toContain("remember the word heliotrope");
      const chat = rt.turns.store.getChat(id)!;
      expect(chat.sessionId).not.toBe(oldSession);
      expect(chat.notice).toMatch(/transcript was damaged/);

      const show = await run(process.execPath, ["--import", "tsx", join(REPO, "agent-runtime/cli/picortex.ts"), "chat", "show", id, "--url", rt.url], {
        cwd: REPO,
        env: { ...process.env, PICORTEX_API_TOKEN: rt.token },
      });
      expect(show.stdout).toMatch(/^notice: \[picortex: this chat's Claude transcript was damaged/m);
      // The chat keeps working in its new session, without repeating the notice.
      const t3 = await sendTurn(rt, id, "and now?");
      const third = await rt.waitTurn(id, t3);
      expect(third.status).toBe("done");
      expect(third.reply).not.toMatch(/transcript was damaged/);
    });
  }
});
