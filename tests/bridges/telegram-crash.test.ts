import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startFakeAnthropicApi } from "../support/fake-anthropic-api.js";
import { CLAUDE } from "../turns/helpers.js";
import { startFakeTelegram } from "./fake-telegram.js";
import { spawnRuntimeProcess } from "../turns/runtime-process.js";

const TOKEN = "987654321:AAcrashTOKENabcdefghijklmnopqrstuvw";
const GROUP = -1009999;
const CHAT = "tg-n1009999";


describe("Telegram bridge across kill -9 of the runtime mid-delivery", { timeout: 300_000 }, () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("resends only unconfirmed chunks, queues nothing twice and loses nothing", async () => {
    const api = await startFakeAnthropicApi();
    cleanups.push(() => api.close());
    const tg = await startFakeTelegram({ token: TOKEN });
    cleanups.push(() => tg.close());
    const dataDir = mkdtempSync(join(tmpdir(), "pc-bridge-crash-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true, maxRetries: 5 }));
    writeFileSync(join(dataDir, "key"), "sk-ant-test-crash\n", { mode: 0o600 });
    writeFileSync(join(dataDir, "tg-token"), TOKEN + "\n", { mode: 0o600 });
    const configFile = join(dataDir, "config.json"); // runtime.json in the data dir is the runtime's own status file
    writeFileSync(
      configFile,
      JSON.stringify({
        mode: "local",
        dataDir,
        server: { hosts: ["127.0.0.1"], port: 0 },
        portal: { enabled: false },
        brain: { enabled: false },
        turns: { claudePath: CLAUDE, upstreamBaseUrl: api.url, apiKeyFile: join(dataDir, "key"), killGraceSeconds: 1, warm: { enabled: false } },
        bridges: { telegram: { enabled: true, tokenFile: join(dataDir, "tg-token"), apiRoot: tg.url, pollTimeoutSeconds: 1, minIntervalMs: 0 } },
      }),
    );
    let rt = await spawnRuntimeProcess(configFile);
    const first = rt;
    cleanups.push(() => void first.child.kill("SIGKILL"));

    const long = Array.from({ length: 700 }, (_, i) => `word${i}`).join(" "); // two messages (a longer reply goes as a file)
    api.enqueue({ text: long });
    // The platform confirms the first chunk, then never answers the second: the runtime dies waiting.
    let hung = false;
    tg.onSend = (body) => {
      const text = String(body.text);
      if (text.startsWith("word") && !text.startsWith("word0 ") && !hung) {
        hung = true;
        return "hang";
      }
      return "ok";
    };
    const ask = tg.groupMessage(GROUP, { id: 5, name: "Alice" }, "@picortex_test_bot list the words");
    await tg.waitFor(() => hung, 180_000, "the hung second chunk");
    expect(tg.sent.filter((s) => s.text.startsWith("word")).map((s) => s.replyTo)).toEqual([ask.messageId]);

    rt.child.kill("SIGKILL");
    await new Promise((r) => rt.child.once("exit", r));
    // While it is down, another member asks; the update waits at the platform.
    const ask2 = tg.groupMessage(GROUP, { id: 6, name: "Bob" }, "@picortex_test_bot and then?");

    rt = await spawnRuntimeProcess(configFile);
    cleanups.push(() => void rt.child.kill("SIGKILL"));
    await tg.waitFor(() => tg.sent.some((s) => s.text.includes("word699")), 180_000, "the rest of the long reply");
    await tg.waitFor(() => tg.sent.some((s) => s.replyTo === ask2.messageId), 180_000, "the reply to the second question");

    const chunks = tg.sent.filter((s) => s.text.startsWith("word"));
    expect(chunks.length).toBe(2);
    // Each chunk exactly once, in order; the receipt closes the last one.
    expect(chunks.map((c) => c.text).join("")).toMatch(new RegExp(`^${long}\\n\\n— [\\d,]+ tokens, [\\d.]+ s$`));
    expect(tg.sendAttempts.filter((a) => a.text === chunks[1]!.text).map((a) => a.outcome)).toEqual(["hang", "ok"]);
    expect(tg.sendAttempts.filter((a) => a.text === chunks[0]!.text)).toHaveLength(1);

    const token = readFileSync(join(dataDir, "api-token"), "utf8").trim();
    const turns = ((await (await fetch(`${rt.url}/v1/chats/${CHAT}/turns`, { headers: { authorization: `Bearer ${token}` } })).json()) as any).turns;
    expect(turns.map((t: any) => [t.sender, t.status])).toEqual([
      ["tg:5", "done"],
      ["tg:6", "done"],
    ]);
    // The bot token never reached argv or the logs.
    expect(rt.child.spawnargs.join(" ")).not.toContain(TOKEN.split(":")[1]);
    expect(first.output() + rt.output()).not.toContain(TOKEN.split(":")[1]);
  });
});
