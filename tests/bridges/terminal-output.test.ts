/**
 * Other people's text on the operator's terminal (pure). A group member picks a title, a
 * name or a username; a webhook provider picks the conversation and sender ids; the model
 * repeats what a web page told it. Each tries to get a control sequence (ESC, or the C1
 * CSI U+009B / OSC U+009D that terminals honour without ESC) or a direction override onto
 * the terminal of the operator running `picortex bridges` or `picortex chat`.
 */
import { describe, expect, it } from "vitest";
import { bridgesStatusJson, formatBridgesStatus, type BridgesStatus } from "../../agent-runtime/bridges/cli.js";
import { webhookMessageSchema } from "../../agent-runtime/bridges/webhook.js";
import { terminalJson, terminalLine, terminalText } from "../../agent-runtime/cli/terminal-text.js";
import { TurnPrinter, chatWarnings, formatChatHistory } from "../../agent-runtime/cli/turn-output.js";

/** Every character the brief names: C0, DEL, C1, ALM, zero-width and direction marks, LS/PS, embeddings, isolates, BOM. */
const DANGER = [
  ..."\u0000\u0007\b\u000b\u000c\r\u001b\u007f",
  ..."\u0080\u0085\u008d\u0090\u009b\u009c\u009d\u009f",
  ..."\u061c\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff",
];
/** Nothing of the above except a newline and a tab in a message body; in one-line fields not even those. */
const UNSAFE_LINE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/;
const UNSAFE_TEXT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/;
/** What must never appear raw in --json output (C0 JSON escapes itself). */
const RAW_IN_JSON = /[\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/;

/** A payload: OSC 52 (write the clipboard), CSI 2J (clear), a title set, and every character above. */
const evil = (tag: string) => `${tag}\u009d52;c;cHduZWQ=\u009c\u009b2J\u001b]0;pwned\u0007\u001b[31m${DANGER.join("")}\u202eexe.txt`;

const hostileStatus = (): BridgesStatus => ({
  telegram: { state: evil("state"), username: evil("user"), message: evil("msg"), privacyMode: true },
  webhook: { enabled: true, callback: true },
  links: [
    { platform: evil("plat"), platformChatId: evil("pcid"), chatId: evil("chat"), title: evil("title"), mode: evil("mode"), paused: false, approvers: [{ id: evil("id"), name: evil("name") }] },
    { platform: "webhook", platformChatId: "\u009d52;c;cHduZWQ=\u009c\u009b2J", chatId: "wh-abc", title: null, mode: "addressed", paused: true },
  ],
  toolsWithoutApproval: [evil("tool")],
  approvals: { pending: 1 },
  outbox: { pending: 0, failed: 0 },
});

describe("the one cleaner (cli/terminal-text.ts)", () => {
  it("a field on one line keeps no control, direction or invisible character, whichever", () => {
    for (const c of DANGER) expect(terminalLine(`a${c}b`), `U+${c.charCodeAt(0).toString(16)}`).toBe("a b");
    expect(terminalLine(evil("x"))).not.toMatch(UNSAFE_LINE);
    expect(terminalLine("Ünïcödé 名前 שלום 🙂")).toBe("Ünïcödé 名前 שלום 🙂");
  });
  it("a message body keeps its newlines and tabs, and loses escapes and carriage returns", () => {
    expect(terminalText("line 1\r\n\tline 2\nline 3")).toBe("line 1\n\tline 2\nline 3");
    expect(terminalText("safe\rrm -rf ~")).toBe("saferm -rf ~"); // a lone CR would overwrite what was shown
    expect(terminalText(evil("x"))).not.toMatch(UNSAFE_TEXT);
  });
  it("JSON escapes C1 and direction characters as \\uXXXX and stays the same document", () => {
    const doc = { title: evil("t"), nested: [{ name: "a\u009b2Jb\u202e" }], n: 1, ok: true, none: null };
    const j = terminalJson(doc);
    expect(j).not.toMatch(RAW_IN_JSON);
    expect(j).not.toMatch(/[\u0000-\u001f]/);
    expect(j).toContain("\\u009b");
    expect(j).toContain("\\u202e");
    expect(JSON.parse(j)).toEqual(doc);
  });
});

describe("picortex bridges output", () => {
  it("no printed field (chat id, title, names, usernames, messages, tools) carries a control or direction character", () => {
    const lines = formatBridgesStatus(hostileStatus());
    for (const l of lines) expect(l).not.toMatch(UNSAFE_LINE);
    const all = lines.join("\n");
    // The text itself is still shown, only defused.
    for (const tag of ["user", "msg", "pcid", "title", "name", "id", "tool"]) expect(all).toContain(tag);
  });
  it("a webhook conversation id made of C1 controls is printed defused (the attacker's case)", () => {
    const id = "\u009d52;c;cHduZWQ=\u009c\u009b2J";
    const lines = formatBridgesStatus({ telegram: null, webhook: { enabled: true, callback: false }, links: [{ platform: "webhook", platformChatId: id, chatId: "wh-abc", title: "t", mode: "addressed", paused: false }], outbox: { pending: 0, failed: 0 } });
    for (const l of lines) expect(l).not.toMatch(UNSAFE_LINE);
  });
  it("--json escapes them and parses back to the API's document", () => {
    const status = hostileStatus();
    const j = bridgesStatusJson(status);
    expect(j).not.toMatch(RAW_IN_JSON);
    expect(JSON.parse(j)).toEqual(status);
  });
});

describe("picortex chat output", () => {
  it("chat show: sender names on one line, message bodies without escapes but with their lines, failure reasons cleaned", () => {
    const lines = formatChatHistory(
      [
        { turnId: "t1", role: "user", sender: evil("Mallory\n> claude: approved"), text: `look:\n\t${evil("body")}` },
        { turnId: "t2", role: "user", sender: "bob", text: "hi" },
      ],
      [{ id: "t2", status: "failed", error: { code: "x", message: evil("reason") } }],
    );
    const all = lines.join("\n");
    expect(all).not.toMatch(UNSAFE_TEXT);
    // A name cannot forge a line of its own (the newline in it is a space).
    expect(lines.filter((l) => l.startsWith("< claude"))).toEqual([]);
    expect(all).toContain("look:\n\t");
    expect(lines.some((l) => l.startsWith("  ✗ turn failed: reason"))).toBe(true);
  });

  function printed(events: [string, unknown][], json = false) {
    let stdout = "";
    let stderr = "";
    const p = new TurnPrinter({ stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), progress: false, json });
    for (const [e, d] of events) p.handle(e, d);
    return { stdout, stderr };
  }

  it("chat send: a streamed reply (the model repeating a web page) reaches stdout without escapes", () => {
    const reply = `Here:\n${evil("page")}\nend`;
    const r = printed([
      ["status", { status: "queued" }],
      ["text", { text: reply.slice(0, 10) }],
      ["text", { text: reply.slice(10) }],
      ["turn", { id: "t", status: "done", reply }],
    ]);
    expect(r.stdout).not.toMatch(UNSAFE_TEXT);
    expect(r.stdout.startsWith("Here:\n")).toBe(true);
    expect(r.stdout.endsWith("\nend\n")).toBe(true);
  });
  it("chat send: a reply that finished before the client subscribed, and a failure reason, are cleaned too", () => {
    expect(printed([["turn", { id: "t", status: "done", reply: evil("late") }]]).stdout).not.toMatch(UNSAFE_TEXT);
    const failed = printed([["turn", { id: "t", status: "failed", error: { code: "x", message: evil("why") } }]]);
    expect(failed.stderr.replace(/\n$/, "")).not.toMatch(UNSAFE_LINE);
    expect(failed.stderr.split("\n").filter(Boolean)).toHaveLength(1);
  });
  it("chat send --json: the final turn as one document with C1 and direction characters escaped", () => {
    const turn = { id: "t", status: "done", reply: evil("json") };
    const r = printed([["turn", turn]], true);
    expect(r.stdout).not.toMatch(RAW_IN_JSON);
    expect(JSON.parse(r.stdout)).toEqual(turn);
  });
  it("chat create: the runtime's warnings are printed as one clean line each", () => {
    for (const w of chatWarnings({ warnings: [evil("w1"), { message: evil("w2") }] })) expect(w).not.toMatch(UNSAFE_LINE);
  });
});

describe("the webhook refuses control characters in ids at its schema", () => {
  const base = { id: "m1", conversation: { id: "c1", title: "Team" }, sender: { id: "s1", name: "Ann" }, text: "hi" };
  for (const [field, patch] of [
    ["id", (c: string) => ({ ...base, id: `m${c}1` })],
    ["conversation.id", (c: string) => ({ ...base, conversation: { ...base.conversation, id: `c${c}1` } })],
    ["sender.id", (c: string) => ({ ...base, sender: { ...base.sender, id: `s${c}1` } })],
  ] as const) {
    it(`${field}: C0, DEL, C1 (CSI U+009B, OSC U+009D) and direction characters are refused with a message that names them`, () => {
      for (const c of ["\u001b", "\u007f", "\u0080", "\u0085", "\u009b", "\u009d", "\u009f", "\u202e", "\u2066", "\u200b", "\u061c", "\ufeff"]) {
        const r = webhookMessageSchema.safeParse(patch(c));
        expect(r.success, `${field} with U+${c.charCodeAt(0).toString(16)}`).toBe(false);
        const issue = r.error!.issues[0]!;
        expect(issue.path.join(".")).toBe(field);
        expect(issue.message).toMatch(/no control characters \(U\+0000-001F, U\+007F-009F\)/);
      }
    });
  }
  it("names and titles may not carry C1 either, but keep direction marks (right-to-left names use them)", () => {
    expect(webhookMessageSchema.safeParse({ ...base, sender: { id: "s1", name: "A\u009b2J" } }).success).toBe(false);
    expect(webhookMessageSchema.safeParse({ ...base, conversation: { id: "c1", title: "T\u009d0;x\u009c" } }).success).toBe(false);
    expect(webhookMessageSchema.safeParse({ ...base, sender: { id: "s1", name: "\u200fשלום" } }).success).toBe(true);
    expect(webhookMessageSchema.safeParse(base).success).toBe(true);
  });
});
