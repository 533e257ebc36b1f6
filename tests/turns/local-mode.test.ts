import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChat, sendTurn, startTestRuntime, type TestRuntime } from "./helpers.js";

describe("local mode (current user, private HOME per chat)", { timeout: 240_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: false } } });
  });
  afterAll(async () => rt?.close());

  it("creates a chat, runs a first turn and a resumed turn that carries the earlier messages (cold)", async () => {
    const chat = await createChat(rt, "local-one");
    expect(chat.status).toBe("ready");
    expect(chat.mode).toBe("local");
    expect(chat.isolation).toMatch(/weaker isolation/);
    expect(chat.provisioning.map((e: any) => e.step)).toEqual(["create_user", "install_cli", "install_cli", "configure_api", "complete"]);
    const t1 = await rt.waitTurn("local-one", await sendTurn(rt, "local-one", "first message"));
    expect(t1.status, JSON.stringify(t1)).toBe("done");
    expect(t1.reply).toContain("first message");
    expect(t1.runner).toBe("cold");
    const t2 = await rt.waitTurn("local-one", await sendTurn(rt, "local-one", "second message"));
    expect(t2.status, JSON.stringify(t2)).toBe("done");
    const reqs = rt.fake.messageRequests();
    const last = reqs[reqs.length - 1]!;
    expect(last.userTexts).toEqual(expect.arrayContaining(["first message", "second message"]));
    expect(last.messageCount!).toBeGreaterThan(reqs[reqs.length - 2]!.messageCount!);
    // The gateway swapped the per-chat token for the real key.
    expect(String(last.headers["x-api-key"])).toMatch(/^sk-ant-test-REALKEY-/);
    const shown = await rt.call("GET", "/v1/chats/local-one");
    expect(shown.json.usage.inputTokens).toBeGreaterThan(0);
    expect(shown.json.sessionStarted).toBe(true);
  });
});
