import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BridgesModule } from "../../agent-runtime/bridges/module.js";
import { startTestRuntime, type TestRuntime } from "../turns/helpers.js";
import type { FakeTelegram } from "./fake-telegram.js";

/**
 * A local-mode runtime (cold turns, the real claude CLI) whose Telegram bridge polls the fake
 * Bot API: the bot token in a 0600 file, quick polls, no spacing. `bridges` adds to the
 * bridges section (its `telegram` merges into the bridge's); `extra` adds top-level sections.
 */
export async function startTelegramRuntime(
  tg: FakeTelegram,
  token: string,
  o: { bridges?: Record<string, unknown> & { telegram?: Record<string, unknown> }; turns?: Record<string, unknown>; extra?: Record<string, unknown> } = {},
): Promise<{ rt: TestRuntime; bridges: BridgesModule }> {
  const { telegram, ...rest } = o.bridges ?? {};
  const rt = await startTestRuntime({
    mode: "local",
    turns: { warm: { enabled: false }, ...(o.turns ?? {}) },
    config: (dataDir) => {
      const tokenFile = join(dataDir, "telegram-token");
      writeFileSync(tokenFile, token + "\n", { mode: 0o600 });
      return { ...(o.extra ?? {}), bridges: { ...rest, telegram: { enabled: true, tokenFile, apiRoot: tg.url, pollTimeoutSeconds: 1, minIntervalMs: 0, ...(telegram ?? {}) } } };
    },
  });
  return { rt, bridges: rt.runtime.modules.find((m) => m.name === "bridges") as BridgesModule };
}

/** Waits until the runtime's chat is ready (a bridge creates it on first contact). */
export async function waitChatReady(rt: TestRuntime, chatId: string): Promise<void> {
  for (let i = 0; i < 600 && (await rt.call("GET", `/v1/chats/${chatId}`)).json?.status !== "ready"; i++) await new Promise((r) => setTimeout(r, 100));
}
