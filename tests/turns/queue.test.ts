import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChat, startTestRuntime, type TestRuntime } from "./helpers.js";

const overlaps = (a: any, b: any) => Date.parse(a.startedAt) < Date.parse(b.finishedAt) && Date.parse(b.startedAt) < Date.parse(a.finishedAt);

describe("queue: ordered within a chat, parallel across chats (real claude, cold)", { timeout: 240_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ mode: "local", turns: { maxParallel: 2, warm: { enabled: false } } });
    rt.fake.setDefault({ delayMs: 400 });
    await createChat(rt, "q-one");
    await createChat(rt, "q-two");
  });
  afterAll(async () => rt?.close());

  it("runs concurrent posts to one chat strictly in order, and two chats at the same time", async () => {
    const texts = ["one-a", "one-b", "one-c"];
    // Fired together: the API accepts them in some order; that order is the chat's order.
    const posted = await Promise.all([
      ...texts.map((text) => rt.call("POST", "/v1/chats/q-one/turns", { text })),
      rt.call("POST", "/v1/chats/q-two/turns", { text: "two-a" }),
    ]);
    for (const p of posted) expect(p.status, p.text).toBe(202);
    const oneIds = posted.slice(0, 3).map((p) => p.json.id as string);
    const done = await Promise.all(oneIds.map((id) => rt.waitTurn("q-one", id)));
    const two = await rt.waitTurn("q-two", posted[3]!.json.id);
    for (const t of [...done, two]) expect(t.status, JSON.stringify(t)).toBe("done");
    const listed = (await rt.call("GET", "/v1/chats/q-one/turns")).json.turns as any[];
    const accepted = listed.map((t) => t.text);
    // Never two turns of a chat at once, and they ran in the order they were accepted.
    for (let i = 1; i < listed.length; i++) {
      expect(overlaps(listed[i - 1], listed[i])).toBe(false);
      expect(Date.parse(listed[i].startedAt)).toBeGreaterThanOrEqual(Date.parse(listed[i - 1].finishedAt));
    }
    // The last request of chat one carries its three messages once each, in accepted order.
    const lastOne = rt.fake.messageRequests().filter((r) => r.userTexts?.some((t) => t.startsWith("one-"))).at(-1)!;
    expect(lastOne.userTexts!.filter((t) => t.startsWith("one-"))).toEqual(accepted);
    expect(lastOne.userTexts!.some((t) => t.startsWith("two-"))).toBe(false);
    // Chat two ran while chat one was busy.
    expect(listed.some((t) => overlaps(t, two))).toBe(true);
  });
});
