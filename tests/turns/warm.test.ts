import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { renameSync } from "node:fs";
import { join } from "node:path";
import { createChat, sendTurn, startTestRuntime, type TestRuntime } from "./helpers.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("warm chats: one long-lived streaming claude per active chat (real claude)", { timeout: 240_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ mode: "local", turns: { maxParallel: 2, warm: { enabled: true, maxWarm: 1, idleSeconds: 600, minIdleToEvictSeconds: 0 } } });
    await createChat(rt, "w-one");
    await createChat(rt, "w-two");
  });
  afterAll(async () => rt?.close());

  it("serves a chat's first and resumed turns from one process, carrying the earlier messages", async () => {
    const t1 = await rt.waitTurn("w-one", await sendTurn(rt, "w-one", "warm first"));
    expect(t1.status, JSON.stringify(t1)).toBe("done");
    expect(t1.runner).toBe("warm");
    const pid1 = rt.turns.warm!.list().find((w) => w.chatId === "w-one")!.pid!;
    const t2 = await rt.waitTurn("w-one", await sendTurn(rt, "w-one", "warm second"));
    expect(t2.status).toBe("done");
    expect(t2.reply).toContain("warm second");
    expect(rt.turns.warm!.list().find((w) => w.chatId === "w-one")!.pid).toBe(pid1);
    expect(rt.fake.messageRequests().at(-1)!.userTexts).toEqual(["warm first", "warm second"]);
  });

  it("evicts the least recently used chat at max-warm; the evicted chat resumes cold-started with no lost or duplicated message", async () => {
    const pidOne = rt.turns.warm!.list().find((w) => w.chatId === "w-one")!.pid!;
    const b = await rt.waitTurn("w-two", await sendTurn(rt, "w-two", "two first"));
    expect(b.status).toBe("done");
    expect(rt.turns.warm!.list().map((w) => w.chatId)).toEqual(["w-two"]);
    // The evicted process winds down in the background (stdin closed, then the group).
    for (let i = 0; i < 200 && alive(pidOne); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive(pidOne)).toBe(false);
    const t3 = await rt.waitTurn("w-one", await sendTurn(rt, "w-one", "warm third"));
    expect(t3.status, JSON.stringify(t3)).toBe("done");
    expect(rt.fake.messageRequests().at(-1)!.userTexts).toEqual(["warm first", "warm second", "warm third"]);
  });

  it("a warm process that dies between turns: the next turn resumes with --resume, nothing lost", async () => {
    const w = rt.turns.warm!.list().find((x) => x.chatId === "w-one")!;
    process.kill(-w.pid!, "SIGKILL");
    for (let i = 0; i < 50 && rt.turns.warm!.has("w-one"); i++) await new Promise((r) => setTimeout(r, 50));
    const t4 = await rt.waitTurn("w-one", await sendTurn(rt, "w-one", "after the crash"));
    expect(t4.status, JSON.stringify(t4)).toBe("done");
    // Killed right after its result, the process may not have saved "warm third" yet
    // (it writes 50-300 ms later); then the runtime recaps it from the durable history.
    const texts = rt.fake.messageRequests().at(-1)!.userTexts!;
    const last = texts.at(-1)!;
    expect(last.endsWith("after the crash")).toBe(true);
    // A kill can also land between the two writes: the prompt saved, the reply not. The
    // model then knows the question but not its answer, so it gets the recap too.
    if (last === "after the crash") expect(texts).toEqual(["warm first", "warm second", "warm third", "after the crash"]);
    else {
      expect(texts.slice(0, 2)).toEqual(["warm first", "warm second"]);
      expect(last).toMatch(/^\[picortex: your process stopped before it saved the last exchange[\s\S]*warm third[\s\S]*reply #\d+: warm third/);
    }
  });

  it("a hang on a warm chat times out, kills the process and the chat keeps working", async () => {
    rt.turns.engine["config"].turnTimeoutSeconds = 30; // per-instance knob, so other tests keep the default
    rt.fake.enqueue({ hang: true });
    const t = await rt.waitTurn("w-two", await sendTurn(rt, "w-two", "hangs warm"));
    expect(t.status).toBe("failed");
    expect(t.error.code).toBe("timeout");
    expect(rt.turns.warm!.has("w-two")).toBe(false);
    const next = await rt.waitTurn("w-two", await sendTurn(rt, "w-two", "two after hang"));
    expect(next.status, JSON.stringify(next)).toBe("done");
  });

  it("a warm process started without approvals is replaced when the chat gets approvers, and the new one asks", async () => {
    const t0 = await rt.waitTurn("w-one", await sendTurn(rt, "w-one", "before approvers"));
    expect(t0.runner).toBe("warm");
    const pid0 = rt.turns.warm!.list().find((w) => w.chatId === "w-one")!.pid!;
    const asked: string[] = [];
    rt.turns.setApprovals({
      policyFor: (chatId: string) => (chatId === "w-one" ? { ask: true, timeoutMs: 60_000 } : undefined),
      decide: async (req) => {
        asked.push(req.toolName);
        return { behavior: "deny", message: "not now" };
      },
    });
    try {
      // WebSearch is outside the default allowedTools: asked only by a process started with the approval tool.
      rt.fake.enqueue({ toolUse: { name: "WebSearch", input: { query: "picortex approvals" } } });
      const t1 = await rt.waitTurn("w-one", await sendTurn(rt, "w-one", "now with approvers"));
      expect(t1.status, JSON.stringify(t1)).toBe("done");
      expect(t1.runner).toBe("warm");
      expect(asked, JSON.stringify([pid0, rt.turns.warm!.list(), rt.fake.messageRequests().at(-1)!.toolResults, rt.fake.messageRequests().at(-1)!.userTexts])).toEqual(["WebSearch"]);
      expect(rt.turns.warm!.list().find((w) => w.chatId === "w-one")!.pid).not.toBe(pid0);
      expect(rt.fake.messageRequests().at(-1)!.userTexts!.slice(-2)).toEqual(["before approvers", "now with approvers"]);
    } finally {
      rt.turns.setApprovals({ policyFor: () => undefined, decide: async () => ({ behavior: "deny", message: "off" }) });
    }
  });
});

describe("warm admission: a busy pool is not thrashed", { timeout: 240_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: true, maxWarm: 1, minIdleToEvictSeconds: 600 } } });
    await createChat(rt, "adm-hot");
    await createChat(rt, "adm-other");
  });
  afterAll(async () => rt?.close());

  it("runs another chat cold while the warm one was used recently, and keeps the warm one", async () => {
    const a = await rt.waitTurn("adm-hot", await sendTurn(rt, "adm-hot", "hot one"));
    expect(a.runner).toBe("warm");
    const pid = rt.turns.warm!.list()[0]!.pid;
    const b = await rt.waitTurn("adm-other", await sendTurn(rt, "adm-other", "other one"));
    expect(b.status).toBe("done");
    expect(b.runner).toBe("cold");
    expect(rt.turns.warm!.list().map((w) => [w.chatId, w.pid])).toEqual([["adm-hot", pid]]);
    const b2 = await rt.waitTurn("adm-other", await sendTurn(rt, "adm-other", "other two"));
    expect(b2.runner).toBe("cold");
    expect(rt.fake.messageRequests().at(-1)!.userTexts).toEqual(["other one", "other two"]);
  });
});

describe("warm chats under load: the transcript is written after the result", { timeout: 240_000 }, () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: true, maxWarm: 1, idleSeconds: 600 } } });
    await createChat(rt, "w-late");
  });
  afterAll(async () => rt?.close());

  it("a next turn that arrives before the live process wrote its transcript stays on that process, with no recap", async () => {
    const t1 = await rt.waitTurn("w-late", await sendTurn(rt, "w-late", "late first"));
    expect(t1.runner).toBe("warm");
    const pid = rt.turns.warm!.list()[0]!.pid;
    // Loaded CI writes the file seconds late; stand in for that by moving it away while
    // the process lives (it keeps the conversation in memory and writes a new file).
    const projects = join(rt.dataDir, "chats", "w-late", ".claude", "projects");
    let file: string | undefined;
    for (let i = 0; i < 100 && !file; i++) {
      const found = execFileSync("find", [projects, "-name", "*.jsonl"], { encoding: "utf8" }).trim();
      if (found) file = found.split("\n")[0];
      else await new Promise((r) => setTimeout(r, 50));
    }
    expect(file, "the warm process writes its transcript").toBeTruthy();
    renameSync(file!, `${file}.late`);
    const t2 = await rt.waitTurn("w-late", await sendTurn(rt, "w-late", "late second"));
    expect(t2.status, JSON.stringify(t2)).toBe("done");
    expect(t2.reply).not.toContain("[picortex:");
    expect(rt.turns.warm!.list().map((w) => [w.chatId, w.pid])).toEqual([["w-late", pid]]);
    expect(rt.fake.messageRequests().at(-1)!.userTexts).toEqual(["late first", "late second"]);
  });
});
