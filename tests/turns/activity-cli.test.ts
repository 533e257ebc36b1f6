/**
 * A turn's activity from the real Claude Code CLI (issue 17's receipt: "files touched, commands
 * run"): the fake Messages API makes the real `claude` call Bash and Write, the CLI runs them in
 * the chat's workspace, and the turn's API JSON lists the command and the file, cold and warm.
 * A turn that fails after a command keeps what it did; a tool call the CLI refused (not in
 * allowedTools) is left out: it did nothing.
 */
import { receiptOf } from "../support/receipt-of.js";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createChat, sendTurn, startTestRuntime } from "./helpers.js";


describe("a turn's activity, recorded from the real Claude Code CLI", { timeout: 300_000 }, () => {
  for (const runner of ["cold", "warm"] as const) {
    it(`lists the command a ${runner} turn ran and the file it wrote, in the turn's API JSON and its receipt`, async () => {
      const rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: runner === "warm" }, allowedTools: ["Read", "Write", "Bash"] } });
      try {
        const id = `act-${runner}`;
        await createChat(rt, id);
        const ws = join(rt.dataDir, "chats", id, "workspace");
        const prompt = `make the files (${runner})`;
        // The model calls Bash, then (after its result) Write, then answers.
        rt.fake.enqueue(
          { forText: prompt, toolUse: { name: "Bash", input: { command: "echo hi > f.txt", description: "write f.txt" } } },
          { forText: prompt, toolUse: { name: "Write", input: { file_path: join(ws, "notes.md"), content: "written by the turn\n" } } },
        );
        const t = await rt.waitTurn(id, await sendTurn(rt, id, prompt));
        expect(t.status, JSON.stringify(t)).toBe("done");
        expect(t.runner).toBe(runner);
        // The tools really ran, in the chat's workspace.
        const results = rt.fake.messageRequests().flatMap((r) => r.toolResults ?? []);
        expect(results.filter((r) => r.isError), JSON.stringify(results)).toEqual([]);
        expect(readFileSync(join(ws, "f.txt"), "utf8")).toBe("hi\n");
        expect(readFileSync(join(ws, "notes.md"), "utf8")).toBe("written by the turn\n");
        expect(t.activity).toEqual({ files: [join(ws, "notes.md")], filesTotal: 1, commands: ["echo hi > f.txt"], commandsTotal: 1 });
        // The same in the chat's turn list (what `picortex chat show --json` prints).
        const list = await rt.call("GET", `/v1/chats/${id}/turns`);
        expect(list.json.turns.find((x: any) => x.id === t.id).activity).toEqual(t.activity);
        expect(receiptOf(t)).toMatch(/^— 1 file \(notes\.md\), 1 command, [\d,]+ tokens, [\d.]+ s$/);

        // A turn that only talks records nothing.
        const quiet = await rt.waitTurn(id, await sendTurn(rt, id, "just answer"));
        expect(quiet.status, JSON.stringify(quiet)).toBe("done");
        expect(quiet.activity).toBeNull();
        expect(receiptOf(quiet)).toMatch(/^— [\d,]+ tokens, [\d.]+ s$/);
      } finally {
        await rt.close();
      }
    });
  }

  it("a turn that fails after running a command keeps what it did", async () => {
    const rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: false }, allowedTools: ["Bash"] } });
    try {
      await createChat(rt, "act-failed");
      const ws = join(rt.dataDir, "chats", "act-failed", "workspace");
      const prompt = "run it, then fail";
      rt.fake.enqueue(
        { forText: prompt, toolUse: { name: "Bash", input: { command: "echo ran > ran.txt" } } },
        { forText: prompt, error: { status: 400, type: "invalid_request_error", message: "refused after the tool ran" } },
      );
      const t = await rt.waitTurn("act-failed", await sendTurn(rt, "act-failed", prompt));
      expect(t.status, JSON.stringify(t)).toBe("failed");
      expect(t.error.code).toBe("claude_failed");
      expect(readFileSync(join(ws, "ran.txt"), "utf8")).toBe("ran\n");
      expect(t.activity).toEqual({ files: [], filesTotal: 0, commands: ["echo ran > ran.txt"], commandsTotal: 1 });
    } finally {
      await rt.close();
    }
  });

  it("leaves out a command the CLI refused (Bash not allowed): it did nothing", async () => {
    const rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: false }, allowedTools: ["Read"] } });
    try {
      await createChat(rt, "act-denied");
      const ws = join(rt.dataDir, "chats", "act-denied", "workspace");
      const prompt = "try the command";
      rt.fake.enqueue({ forText: prompt, toolUse: { name: "Bash", input: { command: "echo no > denied.txt" } } });
      const t = await rt.waitTurn("act-denied", await sendTurn(rt, "act-denied", prompt));
      expect(t.status, JSON.stringify(t)).toBe("done");
      // The CLI refused it (its tool result is an error) and the file was never written.
      const results = rt.fake.messageRequests().flatMap((r) => r.toolResults ?? []);
      expect(results.some((r) => r.isError), JSON.stringify(results)).toBe(true);
      expect(existsSync(join(ws, "denied.txt"))).toBe(false);
      expect(t.activity).toBeNull();
    } finally {
      await rt.close();
    }
  });
});
