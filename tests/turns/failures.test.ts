import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChat, sendTurn, startTestRuntime, type TestRuntime } from "./helpers.js";

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("failures: hang, API errors, budget (real claude)", { timeout: 240_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ mode: "local", turns: { turnTimeoutSeconds: 30, warm: { enabled: false } } });
    await createChat(rt, "f-hang");
    // Big enough for one request's reservation (input estimate + clamped max_tokens), and
    // the fake reports more input than that, so one turn spends it all.
    await createChat(rt, "f-budget", { budgetTokens: 200_000 });
  });
  afterAll(async () => rt?.close());

  it("a hanging API: the turn times out, its whole process group is killed, and the chat keeps working", async () => {
    rt.fake.enqueue({ hang: true });
    const tid = await sendTurn(rt, "f-hang", "this one hangs");
    // Record the pid while it runs (the runtime stores it with the turn).
    let pid: number | undefined;
    for (let i = 0; i < 100 && !pid; i++) {
      const row = rt.turns.store.getTurn(tid);
      pid = row?.pid ?? undefined;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(pid).toBeGreaterThan(0);
    const t = await rt.waitTurn("f-hang", tid);
    expect(t.status).toBe("failed");
    expect(t.error.code).toBe("timeout");
    expect(t.error.message).toMatch(/did not finish within 30 s; its process group was killed/);
    expect(pidAlive(pid!)).toBe(false);
    const next = await rt.waitTurn("f-hang", await sendTurn(rt, "f-hang", "after the hang"));
    expect(next.status, JSON.stringify(next)).toBe("done");
    expect(next.reply).toContain("after the hang");
  });

  it("an API error the CLI gives up on: a clear error on that turn (is_error checked), then the chat works", async () => {
    rt.fake.enqueue({ error: { status: 400, type: "invalid_request_error", message: "fake: prompt is malformed" } });
    const t = await rt.waitTurn("f-hang", await sendTurn(rt, "f-hang", "bad request"));
    expect(t.status).toBe("failed");
    expect(t.error.code).toBe("claude_failed");
    expect(t.error.message).toMatch(/fake: prompt is malformed/);
    const next = await rt.waitTurn("f-hang", await sendTurn(rt, "f-hang", "recovered"));
    expect(next.status).toBe("done");
  });

  it("enforces a per-chat budget: usage is recorded by the gateway, then turns and gateway calls are refused clearly", async () => {
    rt.fake.usage.input_tokens = 200_000;
    const first = await rt.waitTurn("f-budget", await sendTurn(rt, "f-budget", "spend it")).finally(() => (rt.fake.usage.input_tokens = 11));
    expect(first.status, JSON.stringify(first)).toBe("done");
    const chat = (await rt.call("GET", "/v1/chats/f-budget")).json;
    expect(chat.usage.inputTokens + chat.usage.outputTokens).toBeGreaterThanOrEqual(200_000);
    const before = rt.fake.messageRequests().length;
    const second = await rt.waitTurn("f-budget", await sendTurn(rt, "f-budget", "over budget"));
    expect(second.status).toBe("failed");
    expect(second.error.code).toBe("budget_exceeded");
    expect(second.error.message).toMatch(/budget/);
    expect(rt.fake.messageRequests().length).toBe(before);
    // The gateway refuses the chat's own token too (a CLI started before the budget ran out).
    const token = readFileSync(join(rt.dataDir, "chats/f-budget/.claude/picortex-token"), "utf8").trim();
    const direct = await fetch(rt.turns.gatewayUrl() + "/v1/messages?beta=true", {
      method: "POST",
      headers: { "x-api-key": token, "content-type": "application/json" },
      body: JSON.stringify({ model: "m", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }),
    });
    expect(direct.status).toBe(400);
    expect((await direct.json()).error.message).toMatch(/budget/);
    // Raising the budget lets the chat continue.
    expect((await rt.call("PUT", "/v1/chats/f-budget/budget", { budgetTokens: 1_000_000 })).status).toBe(200);
    const third = await rt.waitTurn("f-budget", await sendTurn(rt, "f-budget", "budget raised"));
    expect(third.status).toBe("done");
  });

  it("the gateway refuses unknown tokens", async () => {
    const r = await fetch(rt.turns.gatewayUrl() + "/v1/messages", { method: "POST", headers: { "x-api-key": "pcc_nope" }, body: "{}" });
    expect(r.status).toBe(401);
  });
});
