/**
 * The portal agent as its own gateway principal (issue 13 item 2), attacked from both
 * sides. The runtime reads the agent token's hash from <dataDir>/agent-token.sha256 (as
 * picortex-release writes it on a host); the agent's token is then served and charged to
 * the agent, never to a chat, and a chat's token never passes for the agent's. Bad tokens
 * of one principal kind never bring another's (or the operator's) valid credential to 429.
 * The real Claude Code CLI runs with the agent unit's exact settings argument and a
 * credentials dir, and the token shows up in no process's argv.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken, hashToken } from "../../agent-runtime/http/auth.js";
import { AGENT_PRINCIPAL, AGENT_TOKEN_HASH_FILE, AGENT_TOKEN_PREFIX, agentGatewayUrl } from "../../agent-runtime/host/agent-key.js";
import { GATEWAY_PREFIX } from "../../agent-runtime/turns/http/gateway.js";
import { REAL_KEY, runAgentClaude, startTestRuntime, type TestRuntime } from "./helpers.js";

const AGENT_TOKEN = generateToken(AGENT_TOKEN_PREFIX);
const CHAT_TOKEN = generateToken("pcc_");

async function gw(rt: TestRuntime, token: string | undefined, body: unknown = { model: "m", max_tokens: 100, stream: true, messages: [{ role: "user", content: "hi" }] }) {
  const res = await fetch(`${rt.turns.gatewayUrl()}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token !== undefined ? { "x-api-key": token } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

function chatUsage(rt: TestRuntime, id: string): number {
  const c = rt.turns.store.getChat(id)!;
  return c.usedInputTokens + c.usedOutputTokens;
}
function agentUsage(rt: TestRuntime): number {
  const u = rt.turns.store.principalUsage(AGENT_PRINCIPAL);
  return u.input + u.output;
}

/** A ready chat with a known token, as provisioning leaves it (no Linux user needed for the gateway). */
function addChat(rt: TestRuntime, id: string, token: string, budget: number | null): void {
  rt.turns.store.createChat(id, hashToken(token), budget);
  rt.turns.store.setChatStatus(id, "ready");
}

async function startWithAgent(agentBudgetTokens?: number, hashText = hashToken(AGENT_TOKEN) + "\n"): Promise<TestRuntime> {
  return startTestRuntime({
    mode: "local",
    turns: agentBudgetTokens ? { agentBudgetTokens } : {},
    config: (dataDir) => {
      // Written where picortex-release writes it on a host, before the runtime starts.
      writeFileSync(join(dataDir, AGENT_TOKEN_HASH_FILE), hashText, { mode: 0o600 });
      return {};
    },
  });
}

describe("the portal agent's own gateway principal", { timeout: 120_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startWithAgent();
    addChat(rt, "alpha", CHAT_TOKEN, 1_000_000);
  });
  afterAll(async () => rt?.close());

  it("serves the agent's token with the real key upstream and charges the agent, no chat", async () => {
    const before = rt.fake.messageRequests().length;
    const r = await gw(rt, AGENT_TOKEN);
    expect(r.status, r.text).toBe(200);
    const seen = rt.fake.messageRequests().slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers["x-api-key"]).toBe(REAL_KEY);
    expect(JSON.stringify(seen[0]!.headers)).not.toContain(AGENT_TOKEN);
    expect(agentUsage(rt)).toBeGreaterThan(0);
    expect(chatUsage(rt, "alpha")).toBe(0);
  });

  it("reports the agent's usage to the operator; the agent's token is no operator credential", async () => {
    const r = await rt.call("GET", "/v1/gateway/agent");
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ enabled: true, budgetTokens: null, reservedTokens: 0 });
    expect(r.json.usedInputTokens + r.json.usedOutputTokens).toBe(agentUsage(rt));
    for (const path of ["/v1/gateway/agent", "/v1/chats"]) {
      const asAgent = await rt.call("GET", path, undefined, { authorization: `Bearer ${AGENT_TOKEN}` });
      expect(asAgent.status, path).toBe(401);
    }
  });

  it("charges a chat's token to that chat only, never to the agent", async () => {
    const agentBefore = agentUsage(rt);
    const r = await gw(rt, CHAT_TOKEN);
    expect(r.status, r.text).toBe(200);
    expect(chatUsage(rt, "alpha")).toBeGreaterThan(0);
    expect(agentUsage(rt)).toBe(agentBefore);
  });

  it("a chat cannot pass for the agent: its token with the agent prefix, the agent's hash, a forged prefix are all refused", async () => {
    for (const forged of [AGENT_TOKEN_PREFIX + CHAT_TOKEN, AGENT_TOKEN_PREFIX + CHAT_TOKEN.slice(4), hashToken(AGENT_TOKEN), AGENT_TOKEN.slice(0, -1), AGENT_TOKEN + "x", AGENT_TOKEN_PREFIX]) {
      const r = await gw(rt, forged);
      expect(r.status, forged).toBe(401);
    }
    // The agent token in the other header form is still the agent (and only the agent).
    const res = await fetch(`${rt.turns.gatewayUrl()}/v1/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${AGENT_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "x" }] }),
    });
    expect(res.status).toBe(200);
    await res.text();
  });

  it("bad tokens of one kind never lock out another principal or the operator", async () => {
    // A chat sprays bad chat-shaped tokens until its kind is limited (429).
    let last = 0;
    for (let i = 0; i < 40; i++) last = (await gw(rt, generateToken("pcc_"))).status;
    expect(last).toBe(429);
    // The agent's valid token, a valid chat token and the operator's API are all still served.
    expect((await gw(rt, AGENT_TOKEN)).status).toBe(200);
    expect((await gw(rt, CHAT_TOKEN)).status).toBe(200);
    expect((await rt.call("GET", "/v1/chats")).status).toBe(200);
    // A bad agent-shaped token is counted against the agent's kind, which the chat's spray did not fill.
    expect((await gw(rt, generateToken(AGENT_TOKEN_PREFIX))).status).toBe(401);
    // The other way round: bad agent-shaped tokens (the agent's own failures) until 429 ...
    for (let i = 0; i < 40; i++) last = (await gw(rt, generateToken(AGENT_TOKEN_PREFIX))).status;
    expect(last).toBe(429);
    // ... and the chat, the agent itself and the operator are still served.
    expect((await gw(rt, CHAT_TOKEN)).status).toBe(200);
    expect((await gw(rt, AGENT_TOKEN)).status).toBe(200);
    expect((await rt.call("GET", "/v1/chats")).status).toBe(200);
  });
});

describe("the agent's budget is its own", { timeout: 120_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startWithAgent(150);
    addChat(rt, "rich", CHAT_TOKEN, 1_000_000);
    addChat(rt, "poor", generateToken("pcc_") + "unused", 1);
  });
  afterAll(async () => rt?.close());

  it("an agent over its budget is refused while a chat with budget left is served, and a spent chat does not stop the agent", async () => {
    // A chat that has spent its budget does not affect the agent.
    rt.turns.store.addUsage("poor", 5, 0);
    let r = await gw(rt, AGENT_TOKEN, { model: "m", max_tokens: 10, stream: true, messages: [{ role: "user", content: "hi" }] });
    expect(r.status, r.text).toBe(200);
    // Spend the agent's budget, then it is refused, naming itself and its setting.
    rt.turns.store.addUsage(AGENT_PRINCIPAL, 200, 0);
    r = await gw(rt, AGENT_TOKEN);
    expect(r.status).toBe(400);
    expect(r.text).toContain("the portal agent has used");
    expect(r.text).toContain("turns.agentBudgetTokens");
    // The chat's budget is untouched by the agent's spending.
    const before = chatUsage(rt, "rich");
    expect((await gw(rt, CHAT_TOKEN)).status).toBe(200);
    expect(chatUsage(rt, "rich")).toBeGreaterThan(before);
    // The agent's usage survives a restart of the store's view: it is in its own table.
    expect(rt.turns.store.principalUsage(AGENT_PRINCIPAL).input).toBeGreaterThanOrEqual(200);
  });
});

describe("without a usable hash there is no agent principal", { timeout: 120_000 }, () => {
  for (const [name, text] of [
    ["a damaged hash file", "not-a-hash\n"],
    ["the token itself written instead of its hash", AGENT_TOKEN + "\n"],
  ] as const) {
    it(`${name}: the agent token is refused, chats are served`, async () => {
      const rt = await startWithAgent(undefined, text);
      try {
        addChat(rt, "alpha", CHAT_TOKEN, null);
        expect((await gw(rt, AGENT_TOKEN)).status).toBe(401);
        expect((await gw(rt, CHAT_TOKEN)).status).toBe(200);
      } finally {
        await rt.close();
      }
    });
  }
});

describe("the real Claude Code CLI with the agent unit's settings", { timeout: 180_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startWithAgent();
  });
  afterAll(async () => rt?.close());

  it("the gateway URL the agent is given is the gateway's own path", () => {
    expect(new URL(agentGatewayUrl(7419)).pathname).toBe(GATEWAY_PREFIX);
    expect(() => agentGatewayUrl(0)).toThrow(/1-65535/);
  });

  it("claude --settings <the unit's JSON> with the unit's environment reaches the gateway as the agent; the token is in no process's argv", async () => {
    const before = rt.fake.messageRequests().length;
    const run = await runAgentClaude(Number(new URL(rt.turns.gatewayUrl()).port), AGENT_TOKEN, "say hi");
    expect(run.code, run.output).toBe(0);
    expect(JSON.parse(run.stdout).is_error).toBe(false);
    expect(run.leaks).toEqual([]);
    const seen = rt.fake.messageRequests().slice(before);
    expect(seen.length).toBeGreaterThan(0);
    for (const s of seen) expect(s.headers["x-api-key"]).toBe(REAL_KEY);
    expect(agentUsage(rt)).toBeGreaterThan(0);
  });
});
