/**
 * Attacks on the key gateway's budget (issue 13 item 3), with raw HTTP clients holding a
 * chat's own token: a client that hangs up right after message_delta, and many requests
 * in parallel at the budget's edge. Neither may get tokens the budget does not cover.
 */
import { connect } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChat, startTestRuntime, type TestRuntime } from "./helpers.js";
import { MAX_IN_FLIGHT_PER_CHAT } from "../../agent-runtime/turns/http/gateway.js";

const gatewayBase = (rt: TestRuntime) => rt.turns.gatewayUrl();

function chatToken(rt: TestRuntime, id: string): string {
  return readFileSync(join(rt.dataDir, `chats/${id}/.claude/picortex-token`), "utf8").trim();
}

function used(rt: TestRuntime, id: string): number {
  const c = rt.turns.store.getChat(id)!;
  return c.usedInputTokens + c.usedOutputTokens;
}

function messagesBody(maxTokens: number, pad = 0): string {
  return JSON.stringify({ model: "claude-fake", max_tokens: maxTokens, stream: true, messages: [{ role: "user", content: "x".repeat(pad) || "hi" }] });
}

/** A hand-written HTTP/1.1 client: sends the request, reads until `until` shows up, then drops the connection. */
function hangUpAfter(url: string, token: string, body: string, until: string): Promise<string> {
  const u = new URL(url + "/v1/messages?beta=true");
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname, () => {
      sock.write(
        `POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nx-api-key: ${token}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
    let seen = "";
    sock.on("data", (c) => {
      seen += c.toString("utf8");
      if (seen.includes(until)) {
        sock.destroy();
        resolve(seen);
      }
    });
    sock.on("error", reject);
    sock.on("close", () => resolve(seen));
  });
}

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("gateway budget under attack", { timeout: 120_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: false } } });
    await createChat(rt, "hangup", { budgetTokens: 100_000 });
    await createChat(rt, "edge", { budgetTokens: 200 });
  });
  afterAll(async () => rt?.close());

  it("charges a reply whose client hangs up right after message_delta (before message_stop)", async () => {
    rt.fake.enqueue({ holdAfterDelta: true, text: "a full reply the client read and then ran away from" });
    const seen = await hangUpAfter(gatewayBase(rt), chatToken(rt, "hangup"), messagesBody(1000), "event: message_delta");
    expect(seen).toContain("a full reply");
    // 11 input (message_start) + 7 output (message_delta), from the fake's usage.
    await waitFor(() => used(rt, "hangup") >= 18, "the usage to be charged");
    expect(used(rt, "hangup")).toBe(18);
    // The reservation was released: nothing stays held for the dead request.
    await waitFor(() => rt.turns.ledger.reservedFor("hangup") === 0, "the reservation to be released");
  });

  it("N parallel requests at the budget's edge cannot together pass the budget", async () => {
    const token = chatToken(rt, "edge");
    // Each reply would use 30 input + 50 output; the budget (200) covers two and a half.
    rt.fake.usage.input_tokens = 30;
    rt.fake.usage.output_tokens = 50;
    rt.fake.setDefault({ delayMs: 400, honourMaxTokens: true });
    try {
      const body = messagesBody(50, 60); // about 120 bytes: an input estimate of ~30 tokens
      const answers = await Promise.all(
        // As many as the gateway lets one chat have in flight (more would be refused with 429).
        Array.from({ length: MAX_IN_FLIGHT_PER_CHAT }, () =>
          fetch(gatewayBase(rt) + "/v1/messages?beta=true", {
            method: "POST",
            headers: { "x-api-key": token, "content-type": "application/json" },
            body,
          }).then(async (r) => ({ status: r.status, text: await r.text() })),
        ),
      );
      const served = answers.filter((a) => a.status === 200);
      const refused = answers.filter((a) => a.status !== 200);
      expect(served.length).toBeGreaterThan(0);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) {
        expect(r.status).toBe(400);
        expect(r.text).toMatch(/budget/);
      }
      await waitFor(() => rt.turns.ledger.reservedFor("edge") === 0, "every reservation to settle");
      expect(used(rt, "edge")).toBeLessThanOrEqual(200);
      expect(used(rt, "edge")).toBeGreaterThan(0);
      // Every output the upstream was allowed to produce fits in what remained.
      const asked = rt.fake.messageRequests().slice(-served.length).map((r) => (r.body as { max_tokens: number }).max_tokens);
      expect(asked.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(200);
    } finally {
      rt.fake.usage.input_tokens = 11;
      rt.fake.usage.output_tokens = 7;
      rt.fake.setDefault({});
    }
  });
});
