#!/usr/bin/env tsx
/**
 * Bridge benchmark (issue 17 item 7). NOT a test: figures beside goals and an in-run baseline,
 * with the real Claude Code CLI against the fake Messages API and the fake Telegram Bot API
 * (tests/bridges/fake-telegram.ts) on loopback.
 *
 *   (a) inbound: Telegram update pushed → turn queued (getUpdates long poll + ingest transaction)
 *   (b) outbound: turn finished → reply confirmed by the platform (outbox + sendMessage)
 *   (c) end to end: message → first reply byte on the platform, vs the same turn sent straight
 *       to the API (POST /v1/chats/:id/turns → done event), same runtime, same run
 *   (d) messages/s through the bridge (unaddressed group messages, recorded as context) vs the
 *       same messages ingested in-process (no Bot API round trips)
 *
 * Run: npx tsx bench/bridge/index.ts   (BENCH_BRIDGE_N turns, default 10; BENCH_BRIDGE_MSGS, default 500)
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { BridgesModule } from "../../agent-runtime/bridges/module.js";
import { loadRuntimeConfig } from "../../agent-runtime/config/load.js";
import { createLogger } from "../../agent-runtime/log.js";
import { startRuntime } from "../../agent-runtime/server.js";
import type { TurnsModule } from "../../agent-runtime/turns/module.js";
import { startFakeAnthropicApi } from "../../tests/support/fake-anthropic-api.js";
import { startFakeTelegram } from "../../tests/bridges/fake-telegram.js";
import { Report, atMost, percentile } from "../lib/report.js";

const REPO = resolve(import.meta.dirname, "../..");
const CLAUDE = join(REPO, "node_modules/.bin/claude");
const N = Number(process.env.BENCH_BRIDGE_N ?? 10);
const MSGS = Number(process.env.BENCH_BRIDGE_MSGS ?? 500);
const TOKEN = "424242424:AAbenchTOKENabcdefghijklmnopqrstuvwx";
const GROUP = -100777;
const CHAT = "tg-n100777";

const report = new Report("bridge", { turns: N, messages: MSGS });
const dataDir = mkdtempSync(join(tmpdir(), "pc-bench-bridge-"));
const api = await startFakeAnthropicApi();
const tg = await startFakeTelegram({ token: TOKEN });
writeFileSync(join(dataDir, "key"), "sk-ant-bench\n", { mode: 0o600 });
writeFileSync(join(dataDir, "tg"), TOKEN + "\n", { mode: 0o600 });
const config = loadRuntimeConfig({
  env: {},
  overrides: {
    mode: "local",
    dataDir,
    server: { hosts: ["127.0.0.1"], port: 0 },
    portal: { enabled: false },
    brain: { enabled: false },
    turns: { claudePath: CLAUDE, upstreamBaseUrl: api.url, apiKeyFile: join(dataDir, "key"), gatewayPort: 0 },
    bridges: { telegram: { enabled: true, tokenFile: join(dataDir, "tg"), apiRoot: tg.url, pollTimeoutSeconds: 10, minIntervalMs: 0 } },
  },
});
const rt = await startRuntime(config, createLogger("bench", () => {}));
const turns = rt.modules.find((m) => m.name === "turns") as TurnsModule;
const bridges = rt.modules.find((m) => m.name === "bridges") as BridgesModule;
const doneAt = new Map<string, number>();
turns.events.subscribeAll((id, e) => e.type === "done" && doneAt.set(id, performance.now()));
const waitFor = async (pred: () => boolean, what: string) => {
  const until = Date.now() + 300_000;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

try {
  // First contact (provisioning) and one warm-up turn each way, not measured.
  let m = tg.groupMessage(GROUP, { id: 1, name: "Bench" }, "@picortex_test_bot warm up");
  await waitFor(() => tg.sent.some((s) => s.replyTo === m.messageId), "warm-up reply");
  const headers = { authorization: `Bearer ${rt.apiToken}`, "content-type": "application/json" };

  const inbound: number[] = [];
  const outbound: number[] = [];
  const viaBridge: number[] = [];
  const viaApi: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const before = tg.sent.length;
    m = tg.groupMessage(GROUP, { id: 1, name: "Bench" }, `@picortex_test_bot question ${i}`);
    let queuedAt = 0;
    let turnId = "";
    await waitFor(() => {
      const t = turns.store.listTurns(CHAT, 1)[0];
      if (t && t.text.includes(`question ${i}"`) && !queuedAt) {
        queuedAt = performance.now();
        turnId = t.id;
      }
      return tg.sent.length > before && tg.sent.some((s) => s.replyTo === m.messageId);
    }, `reply ${i}`);
    const sentAt = performance.now();
    inbound.push(queuedAt - t0);
    outbound.push(sentAt - (doneAt.get(turnId) ?? sentAt));
    viaBridge.push(sentAt - t0);

    const a0 = performance.now();
    const r = await fetch(`${rt.urls[0]}/v1/chats/${CHAT}/turns`, { method: "POST", headers, body: JSON.stringify({ text: `direct question ${i}` }) });
    const id = ((await r.json()) as { id: string }).id;
    await waitFor(() => doneAt.has(id), `direct turn ${i}`);
    viaApi.push(doneAt.get(id)! - a0);
  }
  const p50 = (xs: number[]) => percentile(xs, 50);
  report.add({ name: "inbound update → turn queued p50", value: p50(inbound), unit: "ms", goal: atMost(p50(inbound), 20, "ms"), note: "includes the poll answering (the fake wakes a pending getUpdates at once) and the ingest transaction (synchronous=FULL)" });
  report.add({ name: "turn done → reply confirmed by the platform p50", value: p50(outbound), unit: "ms", goal: atMost(p50(outbound), 20, "ms") });
  report.add({ name: "message → reply on the platform p50", value: p50(viaBridge), unit: "ms", baseline: { name: "same turn via POST /v1/chats/:id/turns → done", value: p50(viaApi) } });
  report.add({ name: "bridge overhead p50 (end to end minus API)", value: p50(viaBridge) - p50(viaApi), unit: "ms", goal: atMost(p50(viaBridge) - p50(viaApi), 40, "ms"), note: "the difference of two noisy medians of whole claude turns: on a loaded machine it can be negative" });

  // (d) throughput of context messages.
  const c0 = performance.now();
  let last = 0;
  for (let i = 0; i < MSGS; i++) last = tg.groupMessage(GROUP, { id: 2, name: "Chatty" }, `context ${i}`).updateId;
  await waitFor(() => bridges.core.store.hasInbound("telegram", String(last)), "context messages");
  const viaTelegram = MSGS / ((performance.now() - c0) / 1000);
  const d0 = performance.now();
  for (let i = 0; i < MSGS; i++)
    bridges.core.ingest({ platform: "telegram", updateId: `direct-${i}`, platformChatId: String(GROUP), chatTitle: null, messageId: null, senderId: "tg:3", senderName: "Direct", text: `direct context ${i}`, kind: "message", addressed: false });
  const direct = MSGS / ((performance.now() - d0) / 1000);
  report.add({ name: "group messages through the bridge", value: viaTelegram, unit: "msg/s", higherIsBetter: true, baseline: { name: "in-process ingest (no Bot API)", value: direct }, goal: { text: ">= 100 msg/s", met: viaTelegram >= 100 } });
} finally {
  await rt.close();
  await tg.close();
  await api.close();
  rmSync(dataDir, { recursive: true, force: true });
}
report.finish();
