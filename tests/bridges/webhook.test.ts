import { receiptOf } from "../support/receipt-of.js";
import { createServer, type Server } from "node:http";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhook, signatureMatches } from "../../agent-runtime/bridges/webhook.js";
import { startTestRuntime, type TestRuntime } from "../turns/helpers.js";


const SECRET = "whsec-" + "0123456789abcdef".repeat(3);

describe("signed webhook conversation through real turns", { timeout: 300_000 }, () => {
  let rt: TestRuntime;
  let callback: Server;
  const received: Array<{ headers: Record<string, string | string[] | undefined>; body: string }> = [];

  beforeAll(async () => {
    callback = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ id: `provider-${received.length}` }));
      });
    });
    await new Promise<void>((r) => callback.listen(0, "127.0.0.1", () => r()));
    const port = (callback.address() as { port: number }).port;
    rt = await startTestRuntime({
      mode: "local",
      turns: { warm: { enabled: false } },
      config: (dataDir) => {
        const secretFile = join(dataDir, "webhook-secret");
        writeFileSync(secretFile, SECRET + "\n", { mode: 0o600 });
        return {
          bridges: {
            // Mum approves tools in the family conversation; Bash is not among the tools that run unasked there.
            toolsWithoutApproval: ["Read"],
            webhook: { enabled: true, secretFile, callbackUrl: `http://127.0.0.1:${port}/hook`, windowSeconds: 300, approvers: { family: ["+15550100"] } },
          },
        };
      },
    });
  });
  afterAll(async () => {
    await rt?.close();
    await new Promise<void>((r) => callback?.close(() => r()));
  });

  const post = (body: string, headers: Record<string, string>) => fetch(`${rt.url}/v1/bridges/webhook`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  const signed = (body: string, ts = String(Math.floor(Date.now() / 1000))) => ({ [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: signWebhook(SECRET, ts, body) });
  const message = (id: string, text: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ id, conversation: { id: "family", title: "Family" }, sender: { id: "+15550100", name: "Mum" }, text, ...extra });

  it("refuses a bad signature, a stale timestamp and a replay; answers an addressed message through the callback", async () => {
    const ok = message("m-1", "picortex, what's for dinner?", { addressed: true });
    // Wrong secret, tampered body, missing headers: 401, and nothing recorded.
    const ts = String(Math.floor(Date.now() / 1000));
    expect((await post(ok, { [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: signWebhook("x".repeat(40), ts, ok) })).status).toBe(401);
    expect((await post(ok.replace("dinner", "lunch"), signed(ok))).status).toBe(401);
    expect((await post(ok, {})).status).toBe(401);
    // Correctly signed but 10 minutes old: outside the window.
    const stale = await post(ok, signed(ok, String(Math.floor(Date.now() / 1000) - 600)));
    expect(stale.status).toBe(401);
    expect(((await stale.json()) as any).error.code).toBe("stale_timestamp");
    expect((await rt.call("GET", "/v1/bridges")).json.links).toEqual([]);
    expect((await fetch(`${rt.url}/v1/bridges`)).status).toBe(401); // the status needs the API token

    // Context first, then the addressed message.
    const ctx = message("m-0", "dinner at 7 tonight");
    const r0 = await post(ctx, signed(ctx));
    expect(r0.status).toBe(202);
    expect(await r0.json()).toEqual({ status: "context", chatId: "wh-family", turnId: null });
    const r1 = await post(ok, signed(ok));
    expect(r1.status).toBe(202);
    const accepted = (await r1.json()) as any;
    expect(accepted).toMatchObject({ status: "queued", chatId: "wh-family" });
    // The same signed request again (a replay), and the same id re-signed: refused.
    expect((await post(ok, signed(ok))).status).toBe(409);

    const turn = await rt.waitTurn("wh-family", accepted.turnId);
    expect(turn.status).toBe("done");
    expect(turn.text).toContain('{"from":"Mum","id":"wh:+15550100","text":"dinner at 7 tonight"}');
    for (let i = 0; i < 600 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(received).toHaveLength(1);
    const cb = received[0]!;
    expect(signatureMatches(SECRET, String(cb.headers[TIMESTAMP_HEADER]), Buffer.from(cb.body), String(cb.headers[SIGNATURE_HEADER]))).toBe(true);
    expect(cb.headers["idempotency-key"]).toBe(`${accepted.turnId}:0`);
    expect(JSON.parse(cb.body)).toEqual({
      type: "reply",
      id: `${accepted.turnId}:0`,
      conversationId: "family",
      inReplyTo: "m-1",
      turnId: accepted.turnId,
      chunk: 0,
      chunks: 1,
      text: `${turn.reply}\n\n${receiptOf(turn)}`,
    });
    // Invalid shape: a clear 400.
    const bad = JSON.stringify({ id: "m-9", text: "hi" });
    const rb = await post(bad, signed(bad));
    expect(rb.status).toBe(400);
    expect(((await rb.json()) as any).error.message).toMatch(/conversation/);
    // A conversation id carrying C1 controls (OSC 52, CSI 2J without ESC) would reach the
    // operator's terminal through `picortex bridges`: refused at the schema, saying why.
    const c1 = JSON.stringify({ id: "m-10", conversation: { id: "\u009d52;c;cHduZWQ=\u009c\u009b2J" }, sender: { id: "a", name: "A" }, text: "hi" });
    const rc = await post(c1, signed(c1));
    expect(rc.status).toBe(400);
    expect(((await rc.json()) as any).error.message).toMatch(/conversation\.id: must be printable text on one line: no control characters \(U\+0000-001F, U\+007F-009F\)/);
  });

  it("approvals over the webhook: the request arrives through the callback, only the named approver's signed /approve lets the tool run", async () => {
    const texts = () => received.map((r) => JSON.parse(r.body).text as string);
    const marker = join(rt.dataDir, "webhook-approved");
    rt.fake.enqueue({ toolUse: { name: "Bash", input: { command: `touch ${marker}` } } });
    const ask = message("m-20", "picortex, make the file", { addressed: true });
    expect((await post(ask, signed(ask))).status).toBe(202);
    for (let i = 0; i < 600 && !texts().some((t) => t.startsWith("🔐 Approval ")); i++) await new Promise((r) => setTimeout(r, 100));
    const request = texts().find((t) => t.startsWith("🔐 Approval "))!;
    expect(request).toContain(`│ $ touch ${marker}`);
    expect(request).toContain("Approver: Mum.");
    const id = /^🔐 Approval ([a-z0-9]{5}):/.exec(request)![1]!;
    // Dad's (signed, so the provider vouches for his id) approval is refused; so is an admin flag.
    const dad = JSON.stringify({ id: "m-21", conversation: { id: "family" }, sender: { id: "+15550111", name: "Dad", admin: true }, text: `/approve ${id}` });
    expect((await post(dad, signed(dad))).status).toBe(202);
    for (let i = 0; i < 300 && !texts().some((t) => t.startsWith("Only Mum can decide")); i++) await new Promise((r) => setTimeout(r, 100));
    expect(texts()).toContain(`Only Mum can decide approval ${id} here.`);
    const mum = message("m-22", `/approve ${id}`);
    expect((await post(mum, signed(mum))).status).toBe(202);
    for (let i = 0; i < 600 && !texts().some((t) => t.startsWith("reply #") && t.includes("make the file")); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(marker)).toBe(true);
    expect(texts()).toContain(`✅ Approved once by Mum: Bash [${id}].`);
  });
});
