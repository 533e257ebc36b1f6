import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChat, startTestRuntime, type TestRuntime } from "./helpers.js";

describe("API edge: auth, ids and bodies are validated with clear 4xx errors", () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ mode: "local", turns: { maxTextBytes: 1000, warm: { enabled: false } } });
    await createChat(rt, "valid-chat");
  });
  afterAll(async () => rt?.close());

  it("requires the bearer token", async () => {
    expect((await rt.call("GET", "/v1/chats", undefined, { authorization: "" })).status).toBe(401);
    expect((await rt.call("GET", "/v1/chats", undefined, { authorization: "Bearer wrong-token" })).status).toBe(401);
    const r = await rt.call("POST", "/v1/chats", { id: "sneaky" }, { authorization: `Bearer ${rt.token}x` });
    expect(r.status).toBe(401);
    expect((await rt.call("GET", "/v1/chats/sneaky")).status).toBe(404);
  });

  it.each([
    ["../etc", "path traversal"],
    ["Upper", "upper case"],
    ["a", "too short"],
    ["x".repeat(25), "too long"],
    ["pc;rm -rf", "shell metacharacters"],
    ["-lead", "leading hyphen"],
    ["double--hyphen", "double hyphen"],
    ["9lives", "leading digit"],
    ["$(id)", "command substitution"],
  ])("rejects the chat id %j (%s)", async (id) => {
    const r = await rt.call("POST", "/v1/chats", { id });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(/id/);
  });

  it("rejects bad ids in paths without touching anything", async () => {
    expect((await rt.call("GET", "/v1/chats/..%2Fetc")).status).toBe(400);
    expect((await rt.call("POST", "/v1/chats/NOPE/turns", { text: "x" })).status).toBe(400);
    // fetch normalises the dots to /v1/chats/x: a 1-letter id, rejected.
    expect((await rt.call("GET", "/v1/chats/valid-chat/turns/../../x")).status).toBe(400);
    expect((await rt.call("GET", "/v1/chats/valid-chat/turns/t_nope")).status).toBe(404);
    expect((await rt.call("POST", "/v1/chats/missing-chat/turns", { text: "x" })).status).toBe(404);
  });

  it("rejects bad bodies: invalid JSON, unknown fields, empty or oversized text, huge bodies", async () => {
    expect((await rt.call("POST", "/v1/chats/valid-chat/turns", "{not json")).status).toBe(400);
    expect((await rt.call("POST", "/v1/chats/valid-chat/turns", { text: "hi", extra: 1 })).status).toBe(400);
    expect((await rt.call("POST", "/v1/chats/valid-chat/turns", { text: "" })).status).toBe(400);
    expect((await rt.call("POST", "/v1/chats/valid-chat/turns", { text: 42 })).status).toBe(400);
    expect((await rt.call("POST", "/v1/chats/valid-chat/turns", { text: "hi", sender: "a\nb" })).status).toBe(400);
    const long = await rt.call("POST", "/v1/chats/valid-chat/turns", { text: "é".repeat(600) });
    expect(long.status).toBe(400);
    expect(long.json.error.message).toMatch(/at most 1000 bytes/);
    const huge = await rt.call("POST", "/v1/chats/valid-chat/turns", { text: "x".repeat(50_000) });
    expect(huge.status).toBe(413);
    expect((await rt.call("POST", "/v1/chats", { id: "valid-chat" })).status).toBe(409);
    expect((await rt.call("POST", "/v1/chats", { id: "ok-id", budgetTokens: -1 })).status).toBe(400);
    // Nothing was queued by any of the rejected requests.
    expect((await rt.call("GET", "/v1/chats/valid-chat/turns")).json.turns).toEqual([]);
  });
});
