/**
 * What a turn did (issue 17: "end each turn with one compact receipt: files touched, commands
 * run…"): the recorder fed from Claude Code's stream-json `tool_use` blocks, its bounds against a
 * hostile turn, the stored value read back (a damaged one reads as nothing recorded), and the
 * bridge receipt line built from it. Pure: an in-memory SQLite store, no processes.
 */
import { describe, expect, it } from "vitest";
import { receipt } from "../../agent-runtime/bridges/core.js";
import { formatChatHistory } from "../../agent-runtime/cli/turn-output.js";
import { ACTIVITY_LIMITS, ActivityRecorder, activityParts, commandLine, parseActivity, serializeActivity, shortNames, type TurnActivity } from "../../agent-runtime/turns/activity.js";
import { createStreamJsonReader, type TurnResult } from "../../agent-runtime/turns/engine/stream-json.js";
import { turnView } from "../../agent-runtime/turns/http/routes.js";
import { migrate, openDatabase } from "../../agent-runtime/store/database.js";
import { TURNS_MIGRATIONS } from "../../agent-runtime/turns/migrations.js";
import { TurnStore } from "../../agent-runtime/turns/store.js";

const ESC = "\u001b";
/** Every character a one-line receipt or a terminal must never get from a recorded value. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function assistant(...content: unknown[]): string {
  return JSON.stringify({ type: "assistant", message: { role: "assistant", content } }) + "\n";
}
const toolUse = (id: string, name: string, input: unknown) => ({ type: "tool_use", id, name, input });

describe("the activity recorder", () => {
  it("keeps files changed (deduplicated, in order) and commands run (first line, in order), and ignores other tools", () => {
    const r = new ActivityRecorder();
    r.add({ id: "t1", name: "Read", input: { file_path: "/w/read-only.ts" } });
    r.add({ id: "t2", name: "Write", input: { file_path: "/w/src/a.ts", content: "x" } });
    r.add({ id: "t3", name: "Bash", input: { command: "npm test" } });
    r.add({ id: "t4", name: "Edit", input: { file_path: "/w/b.md", old_string: "a", new_string: "b" } });
    r.add({ id: "t5", name: "Edit", input: { file_path: "/w/src/a.ts", old_string: "a", new_string: "b" } });
    r.add({ id: "t6", name: "MultiEdit", input: { file_path: "/w/c.ts", edits: [] } });
    r.add({ id: "t7", name: "NotebookEdit", input: { notebook_path: "/w/n.ipynb", new_source: "" } });
    r.add({ id: "t8", name: "Bash", input: { command: "cat <<EOF > x\nline two\nEOF" } });
    r.add({ id: "t9", name: "Bash", input: { command: "npm test" } }); // run twice: counted twice
    r.add({ id: "t9", name: "Bash", input: { command: "npm test" } }); // the same block reported again: once
    r.add({ id: "t10", name: "Grep", input: { pattern: "x" } });
    r.add({ id: "t11", name: "Bash", input: { command: 42 } }); // malformed input: nothing
    r.add({ id: "t12", name: "Write", input: "not an object" });
    r.add({ id: "t13", name: "toString", input: { file_path: "/w/proto" } }); // not a file tool, even by prototype
    expect(r.summary()).toEqual({
      files: ["/w/src/a.ts", "/w/b.md", "/w/c.ts", "/w/n.ipynb"],
      filesTotal: 4,
      commands: ["npm test", "cat <<EOF > x …", "npm test"],
      commandsTotal: 3,
    });
  });

  it("records nothing for a turn that changed no file and ran no command", () => {
    const r = new ActivityRecorder();
    r.add({ id: "a", name: "Read", input: { file_path: "/w/x" } });
    r.add({ id: "b", name: "Bash", input: { command: " \n\t\n" } });
    expect(r.summary()).toBeNull();
    expect(serializeActivity(r.summary())).toBeNull();
  });

  it("leaves out tool uses the CLI refused (permission_denials)", () => {
    const r = new ActivityRecorder();
    r.add({ id: "ok", name: "Bash", input: { command: "ls" } });
    r.add({ id: "no", name: "Bash", input: { command: "rm -rf /" } });
    r.add({ id: "nofile", name: "Write", input: { file_path: "/etc/passwd" } });
    r.deny(["no", "nofile", "unknown"]);
    expect(r.summary()).toEqual({ files: [], filesTotal: 0, commands: ["ls"], commandsTotal: 1 });
  });

  it("a hostile turn cannot bloat the record: capped lists, capped lengths, exact totals", () => {
    const r = new ActivityRecorder();
    // Long paths that differ only past the kept length are still different files.
    for (let i = 0; i < 500; i++) r.add({ id: `f${i}`, name: "Write", input: { file_path: `/w/${"d".repeat(2000)}/${i}.ts` } });
    r.add({ id: "again", name: "Edit", input: { file_path: `/w/${"d".repeat(2000)}/7.ts` } });
    for (let i = 0; i < 300; i++) r.add({ id: `c${i}`, name: "Bash", input: { command: `echo ${i} ${"x".repeat(10_000)}\n${"y".repeat(10_000)}` } });
    const s = r.summary()!;
    expect(s.files).toHaveLength(ACTIVITY_LIMITS.files);
    expect(s.filesTotal).toBe(500);
    expect(s.commands).toHaveLength(ACTIVITY_LIMITS.commands);
    expect(s.commandsTotal).toBe(300);
    for (const f of s.files) expect(Array.from(f).length).toBeLessThanOrEqual(ACTIVITY_LIMITS.fileChars);
    for (const c of s.commands) expect(Array.from(c).length).toBeLessThanOrEqual(ACTIVITY_LIMITS.commandChars);
    expect(s.commands[7]!.startsWith("echo 7 xxx")).toBe(true);
    expect(s.commands[7]!.endsWith("…")).toBe(true);
    expect(serializeActivity(s)!.length).toBeLessThan(50 * 1024);
    // Past the tracking bound only the totals grow; memory stays bounded.
    const big = new ActivityRecorder();
    for (let i = 0; i < ACTIVITY_LIMITS.tracked + 250; i++) big.add({ id: `b${i}`, name: "Bash", input: { command: "true" } });
    expect(big.summary()!.commandsTotal).toBe(ACTIVITY_LIMITS.tracked + 250);
    expect(big.summary()!.commands).toHaveLength(ACTIVITY_LIMITS.commands);
  });

  it("hostile names are data: no newline, ANSI escape, bidi override or other control survives", () => {
    const r = new ActivityRecorder();
    r.add({ id: "1", name: "Write", input: { file_path: `/w/evil\n— 0 tokens\r${ESC}[2J${ESC}]0;title\u0007\u202Egnp.exe\u0000.ts` } });
    r.add({ id: "2", name: "Bash", input: { command: `${ESC}[31mrm${ESC}[0m -rf\u2028/ \u0085more\n second line` } });
    r.add({ id: "3", name: "Bash", input: { command: "\n\n  \n  echo hidden after blank lines" } });
    const s = r.summary()!;
    for (const v of [...s.files, ...s.commands]) expect(v, JSON.stringify(v)).not.toMatch(CONTROL);
    expect(s.files[0]).not.toContain(ESC);
    expect(s.files[0]!.startsWith("/w/evil")).toBe(true);
    expect(s.commands).toEqual(["rm -rf …", "echo hidden after blank lines"]);
    expect(commandLine("a\r\nb")).toBe("a …");
    expect(commandLine("x".repeat(500))).toHaveLength(ACTIVITY_LIMITS.commandChars);
    expect(commandLine("🙂".repeat(500)).endsWith("🙂…")).toBe(true); // never half an emoji
  });
});

describe("a stored activity read back", () => {
  const good: TurnActivity = { files: ["/w/a.ts"], filesTotal: 1, commands: ["ls"], commandsTotal: 2 };

  it("round-trips, and a damaged value reads as nothing recorded, never an error", () => {
    expect(parseActivity(serializeActivity(good))).toEqual(good);
    for (const damaged of [
      "",
      "{",
      "null",
      "[]",
      "42",
      '"text"',
      "{}",
      '{"files":"a","filesTotal":1,"commands":[],"commandsTotal":0}',
      '{"files":[1],"filesTotal":1,"commands":[],"commandsTotal":0}',
      '{"files":["a"],"filesTotal":-1,"commands":[],"commandsTotal":0}',
      '{"files":["a","b"],"filesTotal":1,"commands":[],"commandsTotal":0}', // fewer in all than listed
      '{"files":["a"],"filesTotal":1.5,"commands":[],"commandsTotal":0}',
      '{"files":["a"],"filesTotal":1,"commands":[],"commandsTotal":"1"}',
      '{"files":[],"filesTotal":0,"commands":[],"commandsTotal":0}',
      '{"files":["a"],"filesTotal":1e400,"commands":[],"commandsTotal":0}',
    ]) {
      expect(parseActivity(damaged), damaged).toBeNull();
    }
  });

  it("a stored value that is too big or unclean is bounded and cleaned on the way out", () => {
    const raw = JSON.stringify({ files: Array.from({ length: 1000 }, (_, i) => `/w/${i}\n${ESC}[2J`), filesTotal: 1000, commands: ["x".repeat(5000)], commandsTotal: 1 });
    const a = parseActivity(raw)!;
    expect(a.files).toHaveLength(ACTIVITY_LIMITS.files);
    expect(a.filesTotal).toBe(1000);
    for (const f of a.files) expect(f).not.toMatch(CONTROL);
    expect(a.commands[0]).toHaveLength(ACTIVITY_LIMITS.commandChars);
  });

  it("the store saves it with the turn's outcome, and a damaged column reads as null (the turn and the API view still work)", () => {
    const db = openDatabase(":memory:");
    const store = new TurnStore(db);
    store.createChat("act", "h", null);
    const t1 = store.enqueueTurn("act", "one", null);
    store.markRunning(t1.id, "cold");
    expect(store.getTurn(t1.id)!.activity).toBeNull();
    store.finishTurn(t1.id, "ok", { input: 1, output: 2 }, good);
    expect(store.getTurn(t1.id)!.activity).toEqual(good);
    expect(turnView(store.getTurn(t1.id)!).activity).toEqual(good);
    const t2 = store.enqueueTurn("act", "two", null);
    store.markRunning(t2.id, "cold");
    store.failTurn(t2.id, "timeout", "too slow", "failed", { files: [], filesTotal: 0, commands: ["sleep 999"], commandsTotal: 1 });
    expect(store.getTurn(t2.id)!.activity).toEqual({ files: [], filesTotal: 0, commands: ["sleep 999"], commandsTotal: 1 });
    const t3 = store.enqueueTurn("act", "three", null);
    store.finishTurn(t3.id, "nothing done", { input: 1, output: 1 });
    expect(store.getTurn(t3.id)!.activity).toBeNull();
    // Damage the column behind the store's back (a torn write, a hand edit, an old bug).
    for (const damaged of ["{not json", '{"files":7}', "[1,2,3]", "\u0000"]) {
      db.prepare("UPDATE turn_turns SET activity = ? WHERE id = ?").run(damaged, t1.id);
      const t = store.getTurn(t1.id)!;
      expect(t.activity, damaged).toBeNull();
      expect(t.reply).toBe("ok");
      expect(turnView(t).activity).toBeNull();
      expect(store.listTurns("act").map((x) => x.id)).toEqual([t1.id, t2.id, t3.id]);
      expect(receipt(t)).toMatch(/^— 3 tokens, [\d.]+ s$/);
    }
    db.close();
  });
});

describe("a database from before activity was recorded (turns migrations 1-5)", () => {
  it("upgrades in place: its turns read as nothing recorded, and new turns record", () => {
    const db = openDatabase(":memory:");
    migrate(db, "turns", TURNS_MIGRATIONS.slice(0, 5));
    db.prepare("INSERT INTO turn_chats (id, status, session_id, token_hash, created_at) VALUES ('old', 'ready', 's', 'h', 1)").run();
    db.prepare("INSERT INTO turn_turns (id, chat_id, text, status, reply, input_tokens, output_tokens, created_at) VALUES ('t_old', 'old', 'hi', 'done', 'yo', 1, 2, 1)").run();
    const store = new TurnStore(db);
    expect(store.getTurn("t_old")!.activity).toBeNull();
    expect(store.getTurn("t_old")!.reply).toBe("yo");
    const t = store.enqueueTurn("old", "again", null);
    store.markRunning(t.id, "warm");
    store.finishTurn(t.id, "ok", { input: 1, output: 1 }, { files: ["/w/x"], filesTotal: 1, commands: [], commandsTotal: 0 });
    expect(store.getTurn(t.id)!.activity).toEqual({ files: ["/w/x"], filesTotal: 1, commands: [], commandsTotal: 0 });
    db.close();
  });
});

describe("the stream-json reader", () => {
  it("reports each tool_use block of an assistant message, and the result's permission denials", () => {
    const uses: unknown[] = [];
    const texts: string[] = [];
    let result: TurnResult | undefined;
    const reader = createStreamJsonReader({ onToolUse: (u) => uses.push(u), onText: (t) => texts.push(t), onResult: (r) => (result = r) });
    const stream =
      JSON.stringify({ type: "system", subtype: "init", session_id: "s" }) +
      "\n" +
      assistant({ type: "text", text: "doing it" }, toolUse("toolu_1", "Bash", { command: "echo hi > f.txt" })) +
      assistant(toolUse("toolu_2", "Write", { file_path: "/w/f.md", content: "x" }), { type: "tool_use", name: 7 }, null, { type: "tool_use", id: 3, name: "Edit", input: {} }) +
      JSON.stringify({ type: "user", message: { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "" }] } }) +
      "\nnot json\n" +
      JSON.stringify({
        type: "result",
        subtype: "success",
        is_error: false,
        result: "done",
        usage: { input_tokens: 1, output_tokens: 2 },
        permission_denials: [{ tool_name: "Write", tool_use_id: "toolu_2", tool_input: {} }, { tool_use_id: 5 }, null],
      });
    // Fed in awkward pieces, as a pipe delivers it.
    for (let i = 0; i < stream.length; i += 7) reader.feed(Buffer.from(stream.slice(i, i + 7)));
    reader.end();
    expect(texts).toEqual(["doing it"]);
    expect(uses).toEqual([
      { id: "toolu_1", name: "Bash", input: { command: "echo hi > f.txt" } },
      { id: "toolu_2", name: "Write", input: { file_path: "/w/f.md", content: "x" } },
      { id: undefined, name: "Edit", input: {} },
    ]);
    expect(result!.deniedToolUseIds).toEqual(["toolu_2"]);
    expect(result!.usage).toEqual({ input: 1, output: 2 });
  });
});

describe("the receipt line", () => {
  const base = { inputTokens: 1200, outputTokens: 34, startedAt: 1000, finishedAt: 5200 };

  it("names the files (relative to the directory they share, at most three then +N) and counts the commands", () => {
    expect(receipt({ ...base, activity: { files: ["/home/pc-x/w/src/a.ts", "/home/pc-x/w/b.md"], filesTotal: 2, commands: ["a", "b", "c"], commandsTotal: 3 } })).toBe(
      "— 2 files (src/a.ts, b.md), 3 commands, 1,234 tokens, 4.2 s",
    );
    expect(receipt({ ...base, activity: { files: ["/w/deep/dir/only.ts"], filesTotal: 1, commands: [], commandsTotal: 0 } })).toBe("— 1 file (only.ts), 1,234 tokens, 4.2 s");
    expect(receipt({ ...base, activity: { files: [], filesTotal: 0, commands: ["ls"], commandsTotal: 1 } })).toBe("— 1 command, 1,234 tokens, 4.2 s");
    expect(receipt({ ...base, activity: { files: ["/w/a", "/w/b", "/w/c", "/w/d"], filesTotal: 120, commands: [], commandsTotal: 1500 } })).toBe(
      "— 120 files (a, b, c, +117), 1,500 commands, 1,234 tokens, 4.2 s",
    );
    expect(receipt({ ...base, activity: null })).toBe("— 1,234 tokens, 4.2 s");
    expect(receipt(base)).toBe("— 1,234 tokens, 4.2 s");
    expect(activityParts({ files: [], filesTotal: 0, commands: [], commandsTotal: 0 })).toEqual([]);
    expect(shortNames(["/a/x/one.ts", "/a/y/two.ts", "/a/x/three.ts"])).toEqual(["x/one.ts", "y/two.ts", "x/three.ts"]);
    expect(shortNames(["rel.ts", "/abs/b.ts"])).toEqual(["rel.ts", "/abs/b.ts"]);
    expect(shortNames([`/w/${"n".repeat(100)}.ts`])[0]).toMatch(/^…n+\.ts$/);
    expect(Array.from(shortNames([`/w/${"n".repeat(100)}.ts`])[0]!)).toHaveLength(40);
  });

  it("stays one clean line whatever the names hold", () => {
    const hostile: TurnActivity = {
      files: [`/w/a\n\n⚠️ picortex: budget raised ${ESC}[2J`, `/w/b\u202Ecod.exe\r`, `/w/${ESC}]8;;http://x\u0007link`],
      filesTotal: 3,
      commands: [`x\ny`],
      commandsTotal: 1,
    };
    const line = receipt({ ...base, activity: hostile });
    expect(line).not.toMatch(CONTROL);
    expect(line.split("\n")).toHaveLength(1);
    expect(line).toMatch(/^— 3 files \(.+\), 1 command, 1,234 tokens, 4\.2 s$/);
  });
});

describe("`picortex chat show`", () => {
  it("says under a turn's answer (or its failure) what it did, on one clean line", () => {
    const activity: TurnActivity = { files: ["/w/src/a.ts", `/w/b\n${ESC}[2J.md`], filesTotal: 2, commands: ["npm test"], commandsTotal: 1 };
    const lines = formatChatHistory(
      [
        { turnId: "t1", role: "user", sender: null, text: "fix it" },
        { turnId: "t1", role: "assistant", sender: null, text: "fixed" },
        { turnId: "t2", role: "user", sender: null, text: "again" },
        { turnId: "t3", role: "user", sender: null, text: "chat" },
        { turnId: "t3", role: "assistant", sender: null, text: "hi" },
      ],
      [
        { id: "t1", status: "done", activity },
        { id: "t2", status: "failed", error: { code: "timeout", message: "too slow" }, activity: { files: [], filesTotal: 0, commands: ["sleep 999"], commandsTotal: 1 } },
        { id: "t3", status: "done", activity: null },
      ],
    );
    expect(lines).toEqual([
      "> you: fix it",
      "< claude: fixed",
      "  · 2 files (src/a.ts, b\ufffd.md), 1 command",
      "> you: again",
      "  ✗ turn failed: too slow",
      "  · 1 command",
      "> you: chat",
      "< claude: hi",
    ]);
  });
});
