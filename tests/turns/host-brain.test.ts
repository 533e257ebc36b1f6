/**
 * Issue 16 item 8, host mode: every chat's Claude settings carry the brain MCP server,
 * scoped to the workspace, with a per-chat brain token (created with the chat, revoked
 * on delete, hashed at rest, never in argv). Real Linux users, real sudo, the real
 * `claude -p` against the fake Messages API scripted to call the brain's tools.
 * Needs root: run under the system lock (flock /tmp/picortex-system.lock).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChat, runAgentClaude, sendTurn, setupHostFixtures, startTestRuntime, type TestRuntime } from "./helpers.js";
import { ChatBrainStore, CHAT_BRAIN_MCP_PATH } from "../../agent-runtime/brain/server/mcp-http.js";
import { AGENT_TOKEN_HASH_FILE, agentBrainMcpUrl } from "../../agent-runtime/host/agent-key.js";
import { hashToken } from "../../agent-runtime/http/auth.js";
import type { PermissionRequest } from "../../agent-runtime/turns/approvals.js";

const WORKSPACE = "ws-host-brain";
/** The portal agent's gateway token (picortex-release makes it on a host; its hash is the runtime's). */
const AGENT_TOKEN = "pca_" + randomBytes(32).toString("base64url");
const ids = ["hb-alpha", "hb-beta"];

function asUser(user: string, argv: string[]) {
  return spawnSync("/usr/bin/sudo", ["-n", "-H", "-u", user, "--", ...argv], { encoding: "utf8" });
}

/** A brain MCP call straight to the endpoint, as any local process holding a token could make it. */
async function mcpCall(url: string, token: string, tool: string, args: Record<string, unknown>): Promise<{ text: string; structured: any }> {
  const client = new Client({ name: "host-brain-test", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  try {
    const r = (await client.callTool({ name: tool, arguments: args })) as { content: Array<{ text: string }>; structuredContent?: unknown };
    return { text: r.content.map((c) => c.text).join("\n"), structured: r.structuredContent };
  } finally {
    await client.close();
  }
}

async function mcpStatus(url: string, token: string): Promise<number> {
  const res = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }),
  });
  await res.text();
  return res.status;
}

describe("host mode: each chat's claude gets the brain MCP tools with its own brain token", { timeout: 300_000 }, () => {
  let fixtures: ReturnType<typeof setupHostFixtures>;
  let rt: TestRuntime;
  let mcpUrl: string;
  const headersOf = (id: string) => `${fixtures.chatsRoot}/${id}/.claude/picortex-brain-headers`;
  const tokenOf = (id: string) => (JSON.parse(readFileSync(headersOf(id), "utf8")) as { Authorization: string }).Authorization.replace(/^Bearer /, "");

  beforeAll(async () => {
    fixtures = setupHostFixtures(ids, { min: 90000, max: 94999 }); // host-mode.test.ts uses 95000-99999
    rt = await startTestRuntime({
      mode: "host",
      chatsRoot: fixtures.chatsRoot,
      turns: { claudePath: fixtures.claudePath, chatUserHelper: fixtures.chatUserHelper, warm: { enabled: false } },
      config: (dataDir) => {
        // Where picortex-release writes it on a host, before the runtime starts.
        writeFileSync(join(dataDir, AGENT_TOKEN_HASH_FILE), hashToken(AGENT_TOKEN) + "\n", { mode: 0o600 });
        return { brain: { enabled: true, workspaceId: WORKSPACE } };
      },
    });
    mcpUrl = rt.turns.gatewayUrl().replace(/\/gateway$/, CHAT_BRAIN_MCP_PATH);
  });
  afterAll(async () => {
    await rt?.close();
    fixtures?.cleanup(ids);
  });

  it("provisions the brain server into the chat's own Claude config, the token in a 0600 file and only hashed in the database", async () => {
    for (const id of ids) await createChat(rt, id);
    const home = `${fixtures.chatsRoot}/hb-alpha`;
    const cfg = JSON.parse(asUser("pc-hb-alpha", ["/usr/bin/cat", `${home}/.claude.json`]).stdout);
    expect(cfg.mcpServers.brain).toEqual({ type: "http", url: mcpUrl, headersHelper: `cat ${headersOf("hb-alpha")}`, alwaysLoad: true });
    for (const f of [`${home}/.claude.json`, headersOf("hb-alpha")]) {
      expect(asUser("pc-hb-alpha", ["/usr/bin/stat", "-c", "%a %U", f]).stdout.trim()).toBe("600 pc-hb-alpha");
    }
    const token = tokenOf("hb-alpha");
    expect(token).toMatch(/^pcm_/);
    expect(tokenOf("hb-beta")).not.toBe(token);
    // Not in the config file, not at rest in the runtime's data dir (only its hash).
    expect(JSON.stringify(cfg)).not.toContain(token);
    expect(spawnSync("/usr/bin/grep", ["-rlsF", token, rt.dataDir], { encoding: "utf8" }).stdout.trim()).toBe("");
    const beta = asUser("pc-hb-alpha", ["/usr/bin/cat", headersOf("hb-beta")]);
    expect(beta.status).not.toBe(0); // another chat's token is out of reach
  });

  it("a real `claude -p` turn calls brain_record, and another chat's turn recalls it (same workspace)", async () => {
    const title = "host chats share the brain";
    rt.fake.enqueue({ toolUse: { name: "mcp__brain__brain_record", input: { title, conclusion: "recorded from a host-mode chat", kind: "insight" } } });
    const t1 = await rt.waitTurn("hb-alpha", await sendTurn(rt, "hb-alpha", "remember this"));
    expect(t1.status, JSON.stringify(t1)).toBe("done");
    const reqs = rt.fake.messageRequests();
    expect(reqs.at(-2)!.toolNames).toContain("mcp__brain__brain_record");
    expect(reqs.at(-2)!.toolNames).toContain("mcp__brain__brain_recall");
    const recorded = reqs.at(-1)!.toolResults!.at(-1)!;
    expect(recorded.isError, recorded.text).toBe(false);
    // Claude Code hands the model the tool's structured result.
    expect(recorded.text).toContain(title);
    expect(recorded.text).toContain('"agent":"chat-hb-alpha"');

    rt.fake.enqueue({ toolUse: { name: "mcp__brain__brain_recall", input: { query: "host chats share" } } });
    const t2 = await rt.waitTurn("hb-beta", await sendTurn(rt, "hb-beta", "what do we know?"));
    expect(t2.status, JSON.stringify(t2)).toBe("done");
    const recalled = rt.fake.messageRequests().at(-1)!.toolResults!.at(-1)!;
    expect(recalled.isError, recalled.text).toBe(false);
    expect(recalled.text).toContain(title);

    // Stored in the runtime's store, in the configured workspace, under the chat's name.
    const store = new ChatBrainStore(join(rt.dataDir, "brain.sqlite"));
    try {
      const hits = store.service({ workspaceId: WORKSPACE, chatId: "check", agent: "chat-check" }).recall("host chats share", { org: true }).hits;
      expect(hits.map((h) => [h.entry.title, h.entry.agent, h.entry.workspaceId])).toEqual([[title, "chat-hb-alpha", WORKSPACE]]);
    } finally {
      store.close();
    }
  });

  it("the token never appears in any process's argv while a turn runs", async () => {
    const token = tokenOf("hb-alpha");
    rt.fake.enqueue({ toolUse: { name: "mcp__brain__brain_recall", input: { query: "anything" } } });
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    rt.fake.enqueue({ gate });
    const before = rt.fake.messageRequests().length;
    const turn = sendTurn(rt, "hb-alpha", "look it up");
    // Wait until the tool ran (the request after it is held by the gate), then read every argv.
    for (let i = 0; i < 1200 && rt.fake.messageRequests().length < before + 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(rt.fake.messageRequests().length).toBe(before + 2);
    const ps = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
    open();
    expect(ps).toContain("claude");
    expect(ps).not.toContain(token);
    expect((await rt.waitTurn("hb-alpha", await turn)).status).toBe("done");
  });

  it("a chat's token acts only for its own workspace: not another workspace's entries, not the sync API", async () => {
    const token = tokenOf("hb-alpha");
    const store = new ChatBrainStore(join(rt.dataDir, "brain.sqlite"));
    try {
      store.service({ workspaceId: "ws-other", chatId: "outsider", agent: "chat-outsider" }).record({ title: "other workspace secret plan", conclusion: "never visible to ws-host-brain" });
    } finally {
      store.close();
    }
    const recall = await mcpCall(mcpUrl, token, "brain_recall", { query: "secret plan", org: true });
    expect(recall.structured.results).toEqual([]);
    // It cannot record as another agent (e.g. another chat) ...
    const posing = await mcpCall(mcpUrl, token, "brain_record", { title: "written by token", agent: "chat-hb-beta" });
    expect(posing.structured?.entry).toBeUndefined();
    expect(posing.text).toMatch(/records as "chat-hb-alpha"/);
    // ... and what it records lands in its own workspace, under its own name.
    const rec = await mcpCall(mcpUrl, token, "brain_record", { title: "written by token" });
    expect(rec.structured.entry.workspaceId).toBe(WORKSPACE);
    expect(rec.structured.entry.agent).toBe("chat-hb-alpha");
    // A chat token is not a sync token: push/pull refuse it (for any workspace).
    const pull = await fetch(`${rt.url}/v1/brain/pull`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ cursor: 0 }),
    });
    expect(pull.status).toBe(401);
    // Another chat's token works for that chat only; a made-up one is refused.
    expect(await mcpStatus(mcpUrl, tokenOf("hb-beta"))).toBe(200);
    expect(await mcpStatus(mcpUrl, "pcm_" + "A".repeat(43))).toBe(401);
  });

  it("refuses the token once the chat is deleted (revoked, and the chat is gone)", async () => {
    const token = tokenOf("hb-alpha");
    expect(await mcpStatus(mcpUrl, token)).toBe(200);
    const del = await rt.call("DELETE", "/v1/chats/hb-alpha");
    expect(del.status, del.text).toBe(200);
    expect(await mcpStatus(mcpUrl, token)).toBe(401);
    const db = new Database(join(rt.dataDir, "runtime.sqlite"), { readonly: true });
    const rows = db.prepare("SELECT revoked_at FROM brain_tokens WHERE chat_id = 'hb-alpha'").all() as Array<{ revoked_at: number | null }>;
    db.close();
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.revoked_at !== null)).toBe(true);
    // The other chat is untouched.
    expect(await mcpStatus(mcpUrl, tokenOf("hb-beta"))).toBe(200);
  });

  it("the portal agent's Claude Code, started with its unit's argv, records through the brain MCP as portal-agent; a chat recalls it", async () => {
    const port = Number(new URL(rt.turns.gatewayUrl()).port);
    expect(agentBrainMcpUrl(port)).toBe(mcpUrl);
    const marker = `agent-brain-${randomBytes(4).toString("hex")}`;
    const title = `${marker}: the portal agent shares what it learns`;
    rt.fake.enqueue({ forText: marker, toolUse: { name: "mcp__brain__brain_record", input: { title, conclusion: "recorded from the portal session", kind: "insight" } } });
    const run = await runAgentClaude(port, AGENT_TOKEN, marker);
    expect(run.code, run.output).toBe(0);
    expect(run.leaks).toEqual([]);
    const mine = rt.fake.messageRequests().filter((r) => r.userTexts?.[0]?.includes(marker));
    expect(mine[0]!.toolNames).toContain("mcp__brain__brain_record");
    const recorded = mine.at(-1)!.toolResults!.at(-1)!;
    expect(recorded.isError, recorded.text).toBe(false);
    expect(recorded.text).toContain('"agent":"portal-agent"');
    // The chats share it: same workspace.
    const recall = await mcpCall(mcpUrl, tokenOf("hb-beta"), "brain_recall", { query: marker, org: true });
    expect(recall.structured.results.map((r: any) => [r.title, r.agent])).toEqual([[title, "portal-agent"]]);
  });

  it("the agent's token records only as portal-agent, is no chat's and no sync token; a forged agent token is refused", async () => {
    const posing = await mcpCall(mcpUrl, AGENT_TOKEN, "brain_record", { title: "agent posing as a chat", agent: "chat-hb-beta" });
    expect(posing.structured?.entry).toBeUndefined();
    expect(posing.text).toMatch(/records as "portal-agent"/);
    const pull = await fetch(`${rt.url}/v1/brain/pull`, {
      method: "POST",
      headers: { authorization: `Bearer ${AGENT_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ cursor: 0 }),
    });
    expect(pull.status).toBe(401);
    expect(await mcpStatus(mcpUrl, "pca_" + "A".repeat(43))).toBe(401);
    expect(await mcpStatus(mcpUrl, AGENT_TOKEN.slice(0, -1))).toBe(401);
    // A chat's brain token is not the agent's, and the agent's is not a gateway chat token for the sync API.
    const asChat = await mcpCall(mcpUrl, tokenOf("hb-beta"), "brain_record", { title: "chat posing as the agent", agent: "portal-agent" });
    expect(asChat.structured?.entry).toBeUndefined();
  });

  it("tool approvals reach the runtime as the chat's own user: its CLI reads its own token for the approval tool, and the decision applies", async () => {
    const asked: PermissionRequest[] = [];
    rt.turns.setApprovals({
      policyFor: (chatId: string) => (chatId === "hb-beta" ? { ask: true, timeoutMs: 60_000 } : undefined),
      decide: async (req) => {
        asked.push(req);
        return { behavior: "deny", message: "the host broker says no" };
      },
    });
    try {
      // WebSearch is outside the default allowedTools: the CLI asks before running it.
      rt.fake.enqueue({ toolUse: { name: "WebSearch", input: { query: "picortex approvals" } } });
      const t = await rt.waitTurn("hb-beta", await sendTurn(rt, "hb-beta", "search the web"));
      expect(t.status, JSON.stringify(t)).toBe("done");
      expect(asked.map((r) => [r.chatId, r.toolName]), JSON.stringify(rt.fake.messageRequests().at(-1)!.toolResults)).toEqual([["hb-beta", "WebSearch"]]);
      expect(rt.fake.messageRequests().at(-1)!.toolResults!.at(-1)).toEqual({ text: "the host broker says no", isError: true });
    } finally {
      rt.turns.setApprovals({ policyFor: () => undefined, decide: async () => ({ behavior: "deny", message: "off" }) });
    }
  });
});
