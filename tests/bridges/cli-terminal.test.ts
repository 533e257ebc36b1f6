/**
 * The real `picortex` CLI as an attacker meets it (host test: spawns the CLI).
 * - A runtime whose chats and bridges hold other people's text (a Telegram title, a webhook
 *   conversation id made of C1 controls, a reply repeating a web page): nothing reaches the
 *   operator's terminal as a control sequence, in the human output or in --json.
 * - A checked-out repository's planted `.picortex/endpoint.json`: with PICORTEX_API_TOKEN
 *   exported, `picortex bridges` and `picortex chat list` refuse it, naming the file.
 */
import { createServer, type Server } from "node:http";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPicortex } from "../support/run-picortex.js";

const REPO = resolve(import.meta.dirname, "../..");
const TOKEN = "pct_operator_token_for_tests_0123456789";
const work = mkdtempSync(join(tmpdir(), "pcx-cli-terminal-"));
const env = { PATH: process.env.PATH!, HOME: work, PICORTEX_API_TOKEN: TOKEN };

const UNSAFE_LINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/;
const UNSAFE_TEXT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/;
const RAW_IN_JSON = /[\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/;
const evil = (tag: string) => `${tag}\u009d52;c;cHduZWQ=\u009c\u009b2J\u001b]0;pwned\u0007\u001b[31m\u202eexe.txt\u2066\u200b\u061c\ufeff\r`;

const bridges = {
  telegram: { state: "polling", username: evil("bot"), message: evil("msg") },
  webhook: { enabled: true, callback: false },
  links: [
    { platform: "webhook", platformChatId: "\u009d52;c;cHduZWQ=\u009c\u009b2J", chatId: "wh-abc", title: evil("title"), mode: "addressed", paused: false, approvers: [{ id: "wh:x", name: evil("name") }] },
  ],
  toolsWithoutApproval: ["Read"],
  outbox: { pending: 0, failed: 0 },
};
const reply = `Summary of the page:\n\t${evil("page")}\nend`;

let server: Server;
let url = "";
const seenTokens: string[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    seenTokens.push(String(req.headers.authorization ?? ""));
    const u = new URL(req.url!, "http://x");
    const json = (body: unknown) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (u.pathname === "/v1/bridges") return json(bridges);
    if (u.pathname === "/v1/chats/fam") return json({ id: "fam", status: "ready", isolation: "local", usage: { inputTokens: 1, outputTokens: 2 }, notice: evil("notice") });
    if (u.pathname === "/v1/chats/fam/messages")
      return json({ messages: [{ turnId: "t1", role: "user", sender: evil("Mallory"), text: evil("hello") }, { turnId: "t1", role: "assistant", sender: null, text: reply }] });
    if (req.method === "GET" && u.pathname === "/v1/chats/fam/turns") return json({ turns: [{ id: "t1", status: "done", reply }] });
    if (req.method === "POST" && u.pathname === "/v1/chats/fam/turns") return json({ id: "t1", status: "queued", eventsPath: "/v1/chats/fam/turns/t1/events" });
    if (u.pathname === "/v1/chats/fam/turns/t1/events") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`event: status\ndata: ${JSON.stringify({ status: "queued" })}\n\n`);
      res.write(`event: text\ndata: ${JSON.stringify({ text: reply })}\n\n`);
      res.end(`event: turn\ndata: ${JSON.stringify({ id: "t1", status: "done", reply })}\n\n`);
      return;
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: "not_found", message: evil(u.pathname) } }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => {
  server?.close();
  rmSync(work, { recursive: true, force: true });
});

const run = (args: string[], cwd = REPO) => runPicortex(args, { cwd, env });

describe("other people's text on the operator's terminal", () => {
  it("picortex bridges: every line is clean; --json escapes C1 and direction characters and is the API's document", async () => {
    const r = await run(["bridges", "--url", url]);
    expect(r.status, r.stderr).toBe(0);
    for (const l of r.stdout.split("\n")) expect(l).not.toMatch(UNSAFE_LINE);
    expect(r.stdout).toContain("title");
    const j = await run(["bridges", "--url", url, "--json"]);
    expect(j.status, j.stderr).toBe(0);
    expect(j.stdout).not.toMatch(RAW_IN_JSON);
    expect(JSON.parse(j.stdout)).toEqual(bridges);
  });

  it("picortex chat show and send: names, messages and the reply are clean, the reply keeps its lines", async () => {
    const show = await run(["chat", "--url", url, "show", "fam"]);
    expect(show.status, show.stderr).toBe(0);
    expect(show.stdout).not.toMatch(UNSAFE_TEXT);
    expect(show.stdout).toContain("Summary of the page:\n\t");
    const send = await run(["chat", "--url", url, "send", "fam", "hi"]);
    expect(send.status, send.stderr).toBe(0);
    expect(send.stdout).not.toMatch(UNSAFE_TEXT);
    expect(send.stdout).toMatch(/^Summary of the page:\n\tpage.*\nend\n$/s);
    const json = await run(["chat", "--url", url, "show", "fam", "--json"]);
    expect(json.stdout).not.toMatch(RAW_IN_JSON);
    expect(JSON.parse(json.stdout).messages[1].text).toBe(reply);
  });

  it("an error message that echoes the request is clean too", async () => {
    const r = await run(["chat", "--url", url, "show", "nosuch"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("/v1/chats/nosuch");
    expect(r.stderr.replace(/\n$/, "")).not.toMatch(UNSAFE_LINE);
  });
});

describe("a repository's planted endpoint record", () => {
  it("picortex bridges and chat list refuse it, naming the file, and the token goes nowhere", async () => {
    const repo = join(work, "checkout");
    mkdirSync(join(repo, ".picortex"), { recursive: true });
    mkdirSync(join(repo, "src"));
    const record = join(repo, ".picortex", "endpoint.json");
    // pid 1 is always alive; the attacker's collector is reached over a non-loopback name.
    writeFileSync(record, JSON.stringify({ pid: 1, url: "http://collector.attacker.invalid:7420", urls: [], port: 7420, mode: "local", modules: [], version: "x", startedAt: "" }), { mode: 0o600 });
    for (const args of [["bridges"], ["chat", "list"]]) {
      const r = await run(args, join(repo, "src"));
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain(`Refusing the endpoint record ${record}`);
      expect(r.stderr).toContain("--url");
    }
    // The operator's own choice still works: the token goes where --url says.
    const before = seenTokens.length;
    const ok = await run(["bridges", "--url", url, "--json"], join(repo, "src"));
    expect(ok.status, ok.stderr).toBe(0);
    expect(seenTokens.slice(before)).toEqual([`Bearer ${TOKEN}`]);
  });
});
