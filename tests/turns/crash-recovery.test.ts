import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { turnsConfigSchema } from "../../agent-runtime/config/turns.js";
import { createLogger } from "../../agent-runtime/log.js";
import { openDatabase } from "../../agent-runtime/store/database.js";
import type { ChatHost } from "../../agent-runtime/turns/host/chat-host.js";
import { TurnEngine } from "../../agent-runtime/turns/engine/engine.js";
import { TurnEvents } from "../../agent-runtime/turns/events.js";
import { TurnStore } from "../../agent-runtime/turns/store.js";
import { startFakeAnthropicApi } from "../support/fake-anthropic-api.js";
import { CLAUDE } from "./helpers.js";
import { spawnRuntimeProcess } from "./runtime-process.js";


/** Running (a zombie whose parent died un-reaped counts as gone). */
const alive = (pid: number) => {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
};

describe("durability: kill -9 of a real runtime process", { timeout: 240_000 }, () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) {
      await c();
      await new Promise((r) => setTimeout(r, 100)); // let killed processes release their files
    }
  });

  it("runs every queued turn after a restart and retries the interrupted one once, marked as a retry", async () => {
    const fake = await startFakeAnthropicApi();
    cleanups.push(() => fake.close());
    const dataDir = mkdtempSync(join(tmpdir(), "pc-crash-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true, maxRetries: 5 }));
    writeFileSync(join(dataDir, "key"), "sk-ant-test-crash\n", { mode: 0o600 });
    const configFile = join(dataDir, "runtime.json");
    writeFileSync(
      configFile,
      JSON.stringify({
        mode: "local",
        dataDir,
        server: { hosts: ["127.0.0.1"], port: 0 },
        portal: { enabled: false },
        brain: { enabled: false },
        // Default runner settings (warm chats on): the durable queue must win either way.
        turns: { claudePath: CLAUDE, upstreamBaseUrl: fake.url, apiKeyFile: join(dataDir, "key"), killGraceSeconds: 1 },
      }),
    );
    let rt = await spawnRuntimeProcess(configFile);
    cleanups.push(() => void rt.child.kill("SIGKILL"));
    const token = readFileSync(join(dataDir, "api-token"), "utf8").trim();
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(rt.url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, json: (await res.json()) as any };
    };
    expect((await call("POST", "/v1/chats", { id: "crash-a" })).status).toBe(201);
    fake.enqueue({ hang: true }); // the first turn is in flight when the runtime dies
    const ids: string[] = [];
    for (const text of ["a1", "a2", "a3"]) ids.push((await call("POST", "/v1/chats/crash-a/turns", { text })).json.id);
    // Wait until a1 reached the API (its message is in the transcript by then).
    for (let i = 0; i < 200 && fake.messageRequests().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(fake.messageRequests().length).toBe(1);
    const running = await call("GET", `/v1/chats/crash-a/turns/${ids[0]}`);
    expect(running.json.status).toBe("running");
    const db = openDatabase(join(dataDir, "runtime.sqlite"));
    const orphanPid = (db.prepare("SELECT pid FROM turn_turns WHERE id = ?").get(ids[0]) as { pid: number }).pid;
    db.close();
    expect(alive(orphanPid)).toBe(true);
    cleanups.push(() => {
      if (alive(orphanPid)) process.kill(-orphanPid, "SIGKILL");
    });

    rt.child.kill("SIGKILL");
    await new Promise((r) => rt.child.once("exit", r));

    rt = await spawnRuntimeProcess(configFile);
    const until = Date.now() + 180_000;
    let turns: any[] = [];
    while (Date.now() < until) {
      turns = (await call("GET", "/v1/chats/crash-a/turns")).json.turns;
      if (turns.every((t) => ["done", "failed", "interrupted"].includes(t.status))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(turns.map((t) => [t.text, t.status])).toEqual([
      ["a1", "done"],
      ["a2", "done"],
      ["a3", "done"],
    ]);
    expect(turns[0].retried).toBe(true);
    expect(turns[0].attempts).toBe(2);
    expect(turns[1].attempts).toBe(1);
    // The old runtime's claude (detached, still waiting on the hung API) was reaped.
    expect(alive(orphanPid)).toBe(false);
    // The model saw a1 (possibly twice: a killed turn stays in the transcript) with the
    // retry flagged, then a2 and a3 exactly once, in order.
    const texts = fake.messageRequests().at(-1)!.userTexts!;
    const retry = texts.findIndex((t) => t.startsWith("[picortex: the runtime restarted") && t.endsWith("a1"));
    expect(retry).toBeGreaterThanOrEqual(0);
    expect(texts.filter((t) => t === "a2")).toHaveLength(1);
    expect(texts.filter((t) => t === "a3")).toHaveLength(1);
    expect(texts.indexOf("a2")).toBeGreaterThan(retry);
    expect(texts.indexOf("a3")).toBeGreaterThan(texts.indexOf("a2"));
    const messages = (await call("GET", "/v1/chats/crash-a/messages")).json.messages;
    expect(messages.filter((m: any) => m.role === "user").map((m: any) => m.text)).toEqual(["a1", "a2", "a3"]);
    expect(messages.filter((m: any) => m.role === "assistant")).toHaveLength(3);
  });

  it("reports (never drops) a turn interrupted twice, or when retries are off", async () => {
    const reaped: Array<number | null | undefined> = [];
    const host = { mode: "local", reapAll: async (_c: string, pid?: number | null) => void reaped.push(pid), transcriptExists: () => false } as unknown as ChatHost;
    for (const [retryInterrupted, attemptsBefore, expected] of [
      [true, 2, "interrupted"],
      [false, 1, "interrupted"],
      [true, 1, "queued"],
    ] as const) {
      const db = openDatabase(":memory:");
      const store = new TurnStore(db);
      store.createChat("chat-x", "h", null);
      store.setChatStatus("chat-x", "ready");
      const turn = store.enqueueTurn("chat-x", "hello", null);
      for (let i = 0; i < attemptsBefore; i++) store.markRunning(turn.id, "cold");
      store.setPid(turn.id, 4242);
      const config = turnsConfigSchema.parse({ retryInterrupted });
      const engine = new TurnEngine(store, host, config, new TurnEvents(), createLogger("t", () => {}), undefined);
      await engine.recover();
      const after = store.getTurn(turn.id)!;
      expect(after.status).toBe(expected);
      if (expected === "interrupted") expect(after.error).toMatch(/stopped while this turn ran/);
      else expect(after.retryOfInterrupted).toBe(true);
      db.close();
    }
    expect(reaped).toEqual([4242, 4242, 4242]);
  });
});
