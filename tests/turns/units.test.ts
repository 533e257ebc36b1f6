import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { asChatArgv, runTurnPrefix } from "../../agent-runtime/host/chat-identity.js";
import { renderClaudeSettings, transcriptPath } from "../../agent-runtime/turns/host/chat-host.js";
import { claudeTurnFlags, sessionMismatch, streamJsonUserLine } from "../../agent-runtime/turns/engine/claude-args.js";
import { createStreamJsonReader } from "../../agent-runtime/turns/engine/stream-json.js";
import { buildTar } from "../../agent-runtime/turns/host/tar-stream.js";
import { TarPathError } from "../../agent-runtime/host/ustar.js";
import { turnsConfigSchema } from "../../agent-runtime/config/turns.js";

const cfg = turnsConfigSchema.parse({});

describe("claude argv", () => {
  it("uses --session-id first and --resume after, stream-json with --verbose, and never carries the prompt", () => {
    const first = claudeTurnFlags(cfg, { sessionId: "s-1", resume: false }, false);
    expect(first).toEqual(expect.arrayContaining(["-p", "--output-format", "stream-json", "--verbose", "--session-id", "s-1", "--permission-mode", "dontAsk"]));
    expect(first).not.toContain("--resume");
    const later = claudeTurnFlags(cfg, { sessionId: "s-1", resume: true }, true);
    expect(later).toEqual(expect.arrayContaining(["--resume", "s-1", "--input-format", "stream-json"]));
    expect(later).not.toContain("--session-id");
    expect(later).not.toContain("--dangerously-skip-permissions");
  });

  it("puts a hostile prompt only in the stdin JSON line", () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const line = streamJsonUserLine(text);
        expect(line.endsWith("\n")).toBe(true);
        expect(line.slice(0, -1)).not.toContain("\n");
        expect(JSON.parse(line).message.content).toBe(text);
      }),
    );
  });

  it("recognises the CLI's session mismatch answers", () => {
    expect(sessionMismatch("Error: Session ID abc is already in use.", "")).toBe("in_use");
    expect(sessionMismatch("", "No conversation found with session ID: abc")).toBe("not_found");
    expect(sessionMismatch("boom", "")).toBeUndefined();
  });

  it("builds the host-mode turn and helper argv from the chat id only", () => {
    expect(runTurnPrefix("team-a", "/usr/local/bin/claude", "/srv/picortex/chats")).toEqual([
      "/usr/bin/sudo", "-n", "-H", "-u", "pc-team-a", "-D", "/srv/picortex/chats/team-a/workspace", "--", "/usr/local/bin/claude",
    ]);
    expect(asChatArgv.killAll("team-a")).toEqual(["/usr/bin/sudo", "-n", "-H", "-u", "pc-team-a", "--", "/usr/bin/pkill", "-KILL", "-U", "pc-team-a"]);
    expect(() => asChatArgv.unpackIntoHome("../etc")).toThrow(/Invalid chat id/);
    expect(() => runTurnPrefix("A;B", "/x")).toThrow(/Invalid chat id/);
  });
});

describe("chat settings", () => {
  it("points the CLI at the gateway and reads the token from a file (no token in the settings)", () => {
    const s = JSON.parse(renderClaudeSettings("/srv/c/x/.claude/picortex-token", "http://127.0.0.1:7420/gateway"));
    expect(s.apiKeyHelper).toBe("cat /srv/c/x/.claude/picortex-token");
    expect(s.env.ANTHROPIC_BASE_URL).toBe("http://127.0.0.1:7420/gateway");
    expect(s.env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC).toBe("1");
    expect(s.env.DISABLE_AUTOUPDATER).toBe("1");
    expect(() => renderClaudeSettings("/tmp/x; rm -rf /", "http://x")).toThrow(/unsafe/);
  });

  it("computes the transcript path the CLI uses (cwd slug)", () => {
    expect(transcriptPath("/h/.claude", "/tmp/pc-x/chats/a/workspace", "S")).toBe("/h/.claude/projects/-tmp-pc-x-chats-a-workspace/S.jsonl");
  });
});

describe("tar stream for provisioning", () => {
  it("is extracted by GNU tar with the intended modes", () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-tar-"));
    try {
      const tar = buildTar([
        { path: ".claude", mode: 0o700 },
        { path: ".claude/settings.json", mode: 0o600, content: '{"a":1}\n' },
        { path: "workspace", mode: 0o700 },
      ]);
      execFileSync("tar", ["--extract", "--no-same-owner", "--directory", dir, "--file", "-"], { input: tar });
      expect(readFileSync(join(dir, ".claude/settings.json"), "utf8")).toBe('{"a":1}\n');
      expect(statSync(join(dir, ".claude/settings.json")).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, ".claude")).mode & 0o777).toBe(0o700);
      expect(statSync(join(dir, "workspace")).isDirectory()).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses entries that could escape the home", () => {
    expect(() => buildTar([{ path: "../x", mode: 0o600, content: "" }])).toThrow(TarPathError);
    expect(() => buildTar([{ path: "/etc/x", mode: 0o600, content: "" }])).toThrow(TarPathError);
  });
});

describe("stream-json reader", () => {
  it("reports init, text and the result across arbitrary chunk boundaries, including is_error", () => {
    const lines = [
      { type: "system", subtype: "init", session_id: "S" },
      { type: "assistant", message: { content: [{ type: "text", text: "hel" }, { type: "tool_use" }, { type: "text", text: "lo" }] } },
      { type: "result", subtype: "success", is_error: true, result: "Not logged in", usage: { input_tokens: 3, cache_read_input_tokens: 2, output_tokens: 4 } },
    ];
    const raw = lines.map((l) => JSON.stringify(l)).join("\n") + "\nnot json\n";
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: raw.length - 1 }), { maxLength: 5 }), (cuts) => {
        const events: string[] = [];
        let result: any;
        const r = createStreamJsonReader({ onInit: (s) => events.push(`init:${s}`), onText: (t) => events.push(t), onResult: (x) => (result = x) });
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        let prev = 0;
        for (const p of [...points, raw.length]) {
          r.feed(raw.slice(prev, p));
          prev = p;
        }
        r.end();
        expect(events).toEqual(["init:S", "hello"]);
        expect(result).toEqual({ isError: true, subtype: "success", text: "Not logged in", sessionId: undefined, usage: { input: 5, output: 4 }, deniedToolUseIds: [] });
      }),
    );
  });
});
