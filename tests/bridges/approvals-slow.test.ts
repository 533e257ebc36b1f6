/**
 * An approver who takes longer than a minute (attacker review, stop 12): the real CLI gives up
 * on an MCP tool call after 60 s unless MCP_TOOL_TIMEOUT says otherwise, so every approval
 * after a minute was withdrawn while the request said "Expires in 5 min". The runtime now sets
 * MCP_TOOL_TIMEOUT above bridges.approvalTimeoutSeconds for chats with approvers.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BridgesModule } from "../../agent-runtime/bridges/module.js";
import type { TestRuntime } from "../turns/helpers.js";
import { startTelegramRuntime, waitChatReady } from "./telegram-runtime.js";
import { startFakeTelegram, type FakeTelegram } from "./fake-telegram.js";

const TOKEN = "123456789:AAtestTOKENabcdefghijklmnopqrstuvwx";
const GROUP = -1001000000001;
const alice = { id: 2001, name: "Alice" };
const CHAT = "tg-n1001000000001";

describe("a slow approver (real claude CLI, fake Bot API)", { timeout: 400_000 }, () => {
  let tg: FakeTelegram;
  let rt: TestRuntime;
  let bridges: BridgesModule;
  let scratch: string;
  const said = (pattern: RegExp) => tg.sent.filter((s) => s.chatId === String(GROUP) && pattern.test(s.text));
  const repliesTo = (messageId: number) => tg.sent.filter((s) => s.replyTo === messageId);
  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), "pcx-slow-"));
    tg = await startFakeTelegram({ token: TOKEN });
    ({ rt, bridges } = await startTelegramRuntime(tg, TOKEN, { bridges: { approvalTimeoutSeconds: 120, toolsWithoutApproval: ["Read"], telegram: { approvers: { [String(GROUP)]: [alice.id] } } } }));
    tg.groupMessage(GROUP, alice, "hello");
    await waitChatReady(rt, CHAT);
  });
  afterAll(async () => {
    await rt?.close();
    await tg?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("approved after 70 s, the command runs: the request still waited", async () => {
    const marker = join(scratch, "slow");
    const before = said(/^🔐/).length;
    rt.fake.enqueue({ toolUse: { name: "Bash", input: { command: `touch ${marker}` } } });
    const ask = tg.groupMessage(GROUP, alice, "@picortex_test_bot run it");
    await tg.waitFor(() => said(/^🔐/).length > before, 120_000, "the request");
    expect(said(/^🔐/).at(-1)!.text).toMatch(/Expires in 2 min\.$/);
    const id = /^🔐 Approval ([a-z0-9]{5}):/.exec(said(/^🔐/).at(-1)!.text)![1]!;
    await new Promise((r) => setTimeout(r, 70_000));
    expect(bridges.core.store.getApproval(id)!.status).toBe("pending");
    const ok = tg.groupMessage(GROUP, alice, `/approve ${id}`);
    await tg.waitFor(() => repliesTo(ask.messageId).length === 1 && repliesTo(ok.messageId).length === 1, 120_000, "the reply");
    expect(repliesTo(ok.messageId)[0]!.text).toBe(`✅ Approved once by Alice: Bash [${id}].`);
    expect(existsSync(marker)).toBe(true);
  });
});
