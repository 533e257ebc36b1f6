/**
 * Tool approvals from the chat (issue 17 item 8), end to end: real `claude -p` turns against
 * the fake Messages API, which asks for a Bash tool the chat's rules do not allow; the CLI
 * calls picortex's permission-prompt tool; the request goes to the Telegram group (fake Bot
 * API) naming its approver; only that approver's /approve lets the command run.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BridgesModule } from "../../agent-runtime/bridges/module.js";
import type { TestRuntime } from "../turns/helpers.js";
import { runPicortex } from "../support/run-picortex.js";
import { startTelegramRuntime, waitChatReady } from "./telegram-runtime.js";
import { startFakeTelegram, type FakeTelegram } from "./fake-telegram.js";

const TOKEN = "123456789:AAtestTOKENabcdefghijklmnopqrstuvwx";
const GROUP = -1001000000001; // Alice approves here
const OTHER = -1001000000002; // Bob approves here ("*"), Alice does not
const NONE = -1001000000003; // listed with no approvers: never asks
const alice = { id: 2001, name: "Alice" };
const bob = { id: 2002, name: "Bob" };
const carol = { id: 2003, name: "Carol" }; // a group admin, not an approver

describe("tool approvals from a Telegram group (fake Bot API, real claude CLI)", { timeout: 300_000 }, () => {
  let tg: FakeTelegram;
  let rt: TestRuntime;
  let bridges: BridgesModule;
  let scratch: string;
  const said = (chatId: number, pattern: RegExp) => tg.sent.filter((s) => s.chatId === String(chatId) && pattern.test(s.text));
  const repliesTo = (messageId: number) => tg.sent.filter((s) => s.replyTo === messageId);
  const lastResult = () => rt.fake.messageRequests().at(-1)!.toolResults!.at(-1)!;

  /** Asks the agent in `group`; the model (fake API) answers with a Bash call of `command`. */
  async function askToRun(group: number, command: string, from = alice) {
    rt.fake.enqueue({ toolUse: { name: "Bash", input: { command, description: "a command the chat's rules do not allow" } } });
    return tg.groupMessage(group, from, `@picortex_test_bot please run ${command}`);
  }

  async function approvalRequest(group: number, before: number): Promise<{ id: string; text: string }> {
    await tg.waitFor(() => said(group, /^🔐 Approval /).length > before, 120_000, "the approval request");
    const text = said(group, /^🔐 Approval /).at(-1)!.text;
    return { id: /^🔐 Approval ([a-z0-9]{5}):/.exec(text)![1]!, text };
  }

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), "pcx-approvals-"));
    tg = await startFakeTelegram({ token: TOKEN });
    tg.admins.set(String(GROUP), [carol.id]);
    ({ rt, bridges } = await startTelegramRuntime(tg, TOKEN, {
      // The brain on: its tools must stay offered when no settings file is read (--mcp-config).
      extra: { brain: { enabled: true } },
      bridges: {
        approvalTimeoutSeconds: 10,
        // Bash is in turns.allowedTools (the default) but not among the tools a linked chat runs unasked.
        toolsWithoutApproval: ["Read", "Glob", "Grep"],
        telegram: { approvers: { [String(GROUP)]: [alice.id], [String(NONE)]: [], "*": [bob.id] } },
      },
    }));
    // Both members have spoken, so the request can name them.
    for (const [group, who] of [
      [GROUP, alice],
      [GROUP, bob],
      [OTHER, bob],
      [NONE, alice],
    ] as const)
      tg.groupMessage(group, who, "hello");
    for (const id of ["tg-n1001000000001", "tg-n1001000000002", "tg-n1001000000003"]) await waitChatReady(rt, id);
  });
  afterAll(async () => {
    await rt?.close();
    await tg?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("asks the named approver, refuses anyone else (a group admin included), and runs the command once Alice approves", async () => {
    const marker = join(scratch, "approved-once");
    const before = said(GROUP, /^🔐/).length;
    const ask = await askToRun(GROUP, `touch ${marker}`, bob);
    const req = await approvalRequest(GROUP, before);
    expect(req.text).toContain(`│ $ touch ${marker}`);
    expect(req.text).toMatch(/Approver: Alice\. Reply \/approve [a-z0-9]{5} \(once\)/);
    expect(req.text).toMatch(/Expires in 10 s\.$/);

    const byBob = tg.groupMessage(GROUP, bob, `/approve ${req.id}`);
    const byCarol = tg.groupMessage(GROUP, carol, `/approve@picortex_test_bot ${req.id} session`);
    await tg.waitFor(() => repliesTo(byBob.messageId).length === 1 && repliesTo(byCarol.messageId).length === 1, 60_000, "refusals");
    expect(repliesTo(byBob.messageId)[0]!.text).toBe(`Only Alice can decide approval ${req.id} here.`);
    expect(repliesTo(byCarol.messageId)[0]!.text).toBe(`Only Alice can decide approval ${req.id} here.`);
    expect(existsSync(marker)).toBe(false);

    const byAlice = tg.groupMessage(GROUP, alice, `/approve ${req.id}`);
    await tg.waitFor(() => repliesTo(ask.messageId).length === 1, 120_000, "the turn's reply");
    expect(repliesTo(byAlice.messageId)[0]!.text).toBe(`✅ Approved once by Alice: Bash [${req.id}].`);
    expect(existsSync(marker)).toBe(true);
    expect(lastResult()).toEqual({ text: "(Bash completed with no output)", isError: false });
    const row = bridges.core.store.getApproval(req.id)!;
    expect([row.status, row.scope, row.decided_by, row.tool, row.subject]).toEqual(["approved", "once", "tg:2001", "Bash", `touch ${marker}`]);
    // "once" means once: the same command asks again.
    const again = said(GROUP, /^🔐/).length;
    await askToRun(GROUP, `touch ${marker}`, bob);
    const second = await approvalRequest(GROUP, again);
    expect(second.id).not.toBe(req.id);
    tg.groupMessage(GROUP, alice, `/deny ${second.id}`);
    await tg.waitFor(() => bridges.core.store.getApproval(second.id)?.status === "denied", 60_000, "denied");
  });

  it("a session approval covers the same command for the rest of the session, and nothing else", async () => {
    const marker = join(scratch, "approved-session");
    const before = said(GROUP, /^🔐/).length;
    const first = await askToRun(GROUP, `touch ${marker}`);
    const req = await approvalRequest(GROUP, before);
    tg.groupMessage(GROUP, alice, `/approve ${req.id} session`);
    await tg.waitFor(() => repliesTo(first.messageId).length === 1, 120_000, "the first reply");
    expect(existsSync(marker)).toBe(true);
    rmSync(marker);

    const same = await askToRun(GROUP, `touch ${marker}`);
    await tg.waitFor(() => repliesTo(same.messageId).length === 1, 120_000, "the second reply");
    expect(existsSync(marker)).toBe(true);
    expect(said(GROUP, /^🔐/).length).toBe(before + 1); // not asked again

    const other = await askToRun(GROUP, `touch ${marker}-other`);
    const next = await approvalRequest(GROUP, before + 1);
    expect(next.text).toContain(`│ $ touch ${marker}-other`);
    tg.groupMessage(GROUP, alice, `/deny ${next.id} not that one`);
    await tg.waitFor(() => repliesTo(other.messageId).length === 1, 120_000, "the third reply");
    expect(existsSync(`${marker}-other`)).toBe(false);
    expect(lastResult()).toEqual({ text: "Denied by Alice: not that one.", isError: true });
  });

  it("an unanswered request expires: the tool is denied and the group told", async () => {
    const marker = join(scratch, "expired");
    const before = said(GROUP, /^🔐/).length;
    const ask = await askToRun(GROUP, `touch ${marker}`);
    const req = await approvalRequest(GROUP, before);
    await tg.waitFor(() => repliesTo(ask.messageId).length === 1, 120_000, "the reply after expiry");
    expect(existsSync(marker)).toBe(false);
    expect(lastResult()).toEqual({ text: "No approver decided in time; the tool was not run.", isError: true });
    expect(said(GROUP, new RegExp(`^⌛ Approval ${req.id} expired`))).toHaveLength(1);
    // A late approval changes nothing.
    const late = tg.groupMessage(GROUP, alice, `/approve ${req.id}`);
    await tg.waitFor(() => repliesTo(late.messageId).length === 1, 60_000, "the late answer");
    expect(repliesTo(late.messageId)[0]!.text).toBe(`Approval ${req.id} was already expired.`);
  });

  it("an approval is decided only in its own chat: an approver of another group cannot reach it", async () => {
    const marker = join(scratch, "cross-chat");
    const before = said(GROUP, /^🔐/).length;
    const ask = await askToRun(GROUP, `touch ${marker}`);
    const req = await approvalRequest(GROUP, before);
    // Bob approves in OTHER ("*"); from there he names GROUP's request.
    const cross = tg.groupMessage(OTHER, bob, `/approve ${req.id}`);
    await tg.waitFor(() => repliesTo(cross.messageId).length === 1, 60_000, "the cross-chat answer");
    expect(repliesTo(cross.messageId)[0]!.text).toBe(`There is no approval ${req.id} in this chat.`);
    tg.groupMessage(GROUP, alice, `/deny ${req.id}`);
    await tg.waitFor(() => repliesTo(ask.messageId).length === 1, 120_000, "the reply");
    expect(existsSync(marker)).toBe(false);
  });

  it("the chat's own settings cannot approve for it: an allow rule or a hook in a file its user writes is not read", async () => {
    const home = join(rt.dataDir, "chats", "tg-n1001000000001");
    const userSettings = join(home, ".claude", "settings.json");
    const saved = readFileSync(userSettings, "utf8");
    const hook = { hooks: { PreToolUse: [{ matcher: "Bash", hooks: [{ type: "command", command: `echo '{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow"}}'` }] }] } };
    writeFileSync(userSettings, JSON.stringify({ ...JSON.parse(saved), permissions: { allow: ["Bash"], defaultMode: "bypassPermissions" }, ...hook }));
    mkdirSync(join(home, "workspace", ".claude"), { recursive: true });
    writeFileSync(join(home, "workspace", ".claude", "settings.local.json"), JSON.stringify({ permissions: { allow: ["Bash"] }, ...hook }));
    try {
      const marker = join(scratch, "self-allowed");
      const before = said(GROUP, /^🔐/).length;
      const ask = await askToRun(GROUP, `touch ${marker}`);
      const req = await approvalRequest(GROUP, before); // still asked
      tg.groupMessage(GROUP, alice, `/deny ${req.id}`);
      await tg.waitFor(() => repliesTo(ask.messageId).length === 1, 120_000, "the reply");
      expect(existsSync(marker)).toBe(false);
      // The brain's tools (user-scope MCP config, not a settings file) are still offered.
      expect(rt.fake.messageRequests().some((r) => r.toolNames?.includes("mcp__brain__brain_recall"))).toBe(true);
    } finally {
      writeFileSync(userSettings, saved);
      rmSync(join(home, "workspace", ".claude"), { recursive: true, force: true });
    }
  });

  it("the agent cannot approve itself by calling the approval tool", async () => {
    const before = said(GROUP, /^🔐/).length;
    rt.fake.enqueue({ toolUse: { name: "mcp__picortex__approve", input: { tool_name: "Bash", input: { command: "id" } } } });
    const ask = tg.groupMessage(GROUP, alice, "@picortex_test_bot approve yourself");
    await tg.waitFor(() => repliesTo(ask.messageId).length === 1, 120_000, "the reply");
    expect(lastResult().isError).toBe(true);
    expect(said(GROUP, /^🔐/).length).toBe(before); // no one was asked
  });

  it("`picortex bridges` shows the bot, the linked groups and the approvals waiting", async () => {
    const before = said(GROUP, /^🔐/).length;
    const ask = await askToRun(GROUP, `touch ${join(scratch, "status")}`);
    const req = await approvalRequest(GROUP, before);
    const run = (args: string[]) => runPicortex(["bridges", "--url", rt.url, "--data-dir", rt.dataDir, ...args], { env: { PATH: process.env.PATH } });
    const json = await run(["--json"]);
    expect(json.status, json.stderr).toBe(0);
    const s = JSON.parse(json.stdout);
    expect(s.telegram).toMatchObject({ state: "polling", username: "picortex_test_bot" });
    expect(s.approvals).toEqual({ pending: 1, active: true });
    expect(s.links.map((l: any) => l.chatId).sort()).toEqual(["tg-n1001000000001", "tg-n1001000000002", "tg-n1001000000003"]);
    const text = await run([]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^telegram  polling as @picortex_test_bot/);
    expect(text.stdout).toContain("1 approval waiting");
    expect(text.stdout).toMatch(/telegram  -1001000000001 +tg-n1001000000001 +addressed/);
    expect(text.stdout).toContain("          approvers: Alice (tg:2001)\n");
    expect(text.stdout).toContain("run without approval: Read, Glob, Grep");
    expect(s.links.find((l: any) => l.platformChatId === String(NONE)).approvers).toEqual([]);
    // Who am I, for the approvers list: anyone may ask.
    const who = tg.groupMessage(OTHER, bob, "/whoami");
    await tg.waitFor(() => repliesTo(who.messageId).length === 1, 60_000, "whoami");
    expect(repliesTo(who.messageId)[0]!.text).toBe("Bob: your id is tg:2002 (in bridges.telegram.approvers write 2002). This chat is -1001000000002, linked to picortex chat tg-n1001000000002.");
    tg.groupMessage(GROUP, alice, `/deny ${req.id}`);
    await tg.waitFor(() => repliesTo(ask.messageId).length === 1, 120_000, "the reply");
  });

  it("a linked chat without approvers never asks, and runs only toolsWithoutApproval: losing approvers denies more, never allows more", async () => {
    const marker = join(scratch, "no-approvers");
    const ask = await askToRun(NONE, `touch ${marker}`); // Bash: in turns.allowedTools, not in toolsWithoutApproval
    await tg.waitFor(() => repliesTo(ask.messageId).length === 1, 120_000, "the reply");
    expect(existsSync(marker)).toBe(false);
    expect(lastResult().text).toMatch(/don't ask mode/);
    expect(said(NONE, /^🔐/)).toEqual([]);
    const list = tg.groupMessage(NONE, alice, "/approve");
    await tg.waitFor(() => repliesTo(list.messageId).length === 1, 60_000, "the answer");
    expect(repliesTo(list.messageId)[0]!.text).toMatch(/no approvers/);
  });
});
