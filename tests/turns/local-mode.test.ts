import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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

  it("recaps an exchange that never reached the transcript (a process killed before it saved it)", async () => {
    // Simulate the loss deterministically: drop the last exchange from the transcript.
    const projects = join(rt.dataDir, "chats/local-one/.claude/projects");
    const dir = join(projects, readdirSync(projects)[0]!);
    const file = join(dir, readdirSync(dir).find((f) => f.endsWith(".jsonl"))!);
    const lines = readFileSync(file, "utf8").split("\n");
    const cut = lines.findIndex((l) => l.includes('"type":"user"') && l.includes("second message"));
    expect(cut).toBeGreaterThan(0);
    writeFileSync(file, lines.slice(0, cut).join("\n") + "\n");
    const t3 = await rt.waitTurn("local-one", await sendTurn(rt, "local-one", "third message"));
    expect(t3.status, JSON.stringify(t3)).toBe("done");
    const texts = rt.fake.messageRequests().at(-1)!.userTexts!;
    expect(texts.filter((t) => t === "second message")).toHaveLength(0);
    expect(texts.at(-1)).toMatch(/^\[picortex: your process stopped before it saved the last exchange[\s\S]*second message[\s\S]*reply #\d+: second message[\s\S]*third message$/);
  });
});
