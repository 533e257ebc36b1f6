/**
 * The approval tool's endpoint on the gateway listener, attacked directly with an MCP client:
 * the chat is the token's and nothing else; bad tokens are refused and rate-limited; a
 * decision that takes longer than the listener's request timeout still arrives; a client
 * that goes away withdraws its request.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { hashToken } from "../../agent-runtime/http/auth.js";
import { createLogger } from "../../agent-runtime/log.js";
import { startGatewayServer, type GatewayServer } from "../../agent-runtime/turns/http/gateway.js";
import { APPROVALS_MCP_PATH, APPROVALS_TOOL, approvalRoutes, type ApprovalBroker, type PermissionRequest } from "../../agent-runtime/turns/approvals.js";
import type { TurnStore } from "../../agent-runtime/turns/store.js";

const chats = [
  { id: "alpha", status: "ready", token: "tok-alpha-0123456789abcdefghijklmnop" },
  { id: "beta", status: "ready", token: "tok-beta-0123456789abcdefghijklmnopq" },
  { id: "gone", status: "deleted", token: "tok-gone-0123456789abcdefghijklmnopq" },
].map((c) => ({ ...c, tokenHash: hashToken(c.token) }));
const store = { chatByTokenHash: (h: string) => chats.find((c) => c.tokenHash === h) } as unknown as TurnStore;

let gw: GatewayServer;
const asked: PermissionRequest[] = [];
let decideDelayMs = 0;
const withdrawn: string[] = [];
const broker: ApprovalBroker = {
  policyFor: () => ({ ask: true, timeoutMs: 60_000 }),
  decide: (req, signal) =>
    new Promise((resolve) => {
      asked.push(req);
      const t = setTimeout(() => resolve({ behavior: "allow", updatedInput: req.input }), decideDelayMs);
      signal.addEventListener("abort", () => {
        clearTimeout(t);
        withdrawn.push(req.chatId);
        resolve({ behavior: "deny", message: "withdrawn" });
      });
    }),
};

beforeAll(async () => {
  gw = await startGatewayServer(
    {
      store,
      upstreamBaseUrl: "http://127.0.0.1:9/",
      realKey: () => "unused",
      log: createLogger("test", () => {}),
      // Far shorter than an approval: the listener's limit must not cut a held answer.
      requestTimeoutMs: 500,
      extraRoutes: approvalRoutes({ store, broker: () => broker }),
    },
    0,
  );
});
afterAll(async () => {
  await gw?.close();
});

async function connect(token: string): Promise<Client> {
  const client = new Client({ name: "attacker", version: "1" });
  const url = new URL(APPROVALS_MCP_PATH, new URL(gw.url).origin);
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

const post = (headers: Record<string, string>) =>
  fetch(new URL(APPROVALS_MCP_PATH, new URL(gw.url).origin), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });

describe("approval endpoint", () => {
  it("decides for the chat whose token it carries; an input naming another chat changes nothing", async () => {
    const client = await connect(chats[1]!.token);
    const out = await client.callTool({ name: APPROVALS_TOOL, arguments: { tool_name: "Bash", input: { command: "ls", chatId: "alpha" }, tool_use_id: "t1" } });
    expect(JSON.parse((out.content as Array<{ text: string }>)[0]!.text)).toEqual({ behavior: "allow", updatedInput: { command: "ls", chatId: "alpha" } });
    expect(asked.at(-1)).toMatchObject({ chatId: "beta", toolName: "Bash", toolUseId: "t1" });
    await client.close();
  });

  it("refuses a missing, unknown or deleted chat's token, then rate-limits the guesser", async () => {
    expect((await post({})).status).toBe(401);
    expect((await post({ authorization: `Bearer ${chats[2]!.token}` })).status).toBe(401);
    expect((await post({ authorization: "Bearer tok-alpha-0123456789abcdefghijklmnoX" })).status).toBe(401);
    // The token in another header is not accepted either (only the Authorization bearer).
    expect((await post({ "x-api-key": chats[0]!.token })).status).toBe(401);
    let last = 0;
    for (let i = 0; i < 40 && last !== 429; i++) last = (await post({ authorization: `Bearer guess-${i}-0123456789abcdefghijkl` })).status;
    expect(last).toBe(429);
  });

  it("holds the answer for as long as the decision takes, past the listener's request timeout", async () => {
    decideDelayMs = 1500;
    try {
      const client = await connect(chats[0]!.token);
      const out = await client.callTool({ name: APPROVALS_TOOL, arguments: { tool_name: "Write", input: { file_path: "/x" } } });
      expect(JSON.parse((out.content as Array<{ text: string }>)[0]!.text).behavior).toBe("allow");
      await client.close();
    } finally {
      decideDelayMs = 0;
    }
  });

  it("withdraws the request when the client goes away before the decision", async () => {
    decideDelayMs = 60_000;
    try {
      const client = await connect(chats[0]!.token);
      const abort = new AbortController();
      const call = client.callTool({ name: APPROVALS_TOOL, arguments: { tool_name: "Bash", input: { command: "sleep" } } }, undefined, { signal: abort.signal }).catch(() => "aborted");
      for (let i = 0; i < 100 && asked.at(-1)?.input.command !== "sleep"; i++) await new Promise((r) => setTimeout(r, 20));
      await client.close(); // closes the HTTP request the answer would come on
      abort.abort();
      await call;
      for (let i = 0; i < 100 && !withdrawn.includes("alpha"); i++) await new Promise((r) => setTimeout(r, 20));
      expect(withdrawn).toContain("alpha");
    } finally {
      decideDelayMs = 0;
    }
  });

  it("refuses a tool name that is no tool's (newlines, spaces: what a forged request would post to the group)", async () => {
    const client = await connect(chats[0]!.token);
    const before = asked.length;
    for (const tool_name of ["Bash\n✅ Approved by Alice", "Bash rm", "", "x".repeat(201)]) {
      const out = await client.callTool({ name: APPROVALS_TOOL, arguments: { tool_name, input: {} } }).catch((e: Error) => ({ isError: true, content: [{ text: e.message }] }));
      expect((out as { isError?: boolean }).isError, tool_name).toBe(true);
    }
    expect(asked.length).toBe(before);
    await client.close();
  });
});

