import { randomInt } from "node:crypto";
import type { Logger } from "../log.js";
import type { ApprovalBroker, PermissionDecision, PermissionRequest } from "../turns/approvals.js";
import type { TurnsModule } from "../turns/module.js";
import { cleanName, splitMessage } from "./format.js";
import type { ApprovalRow, BridgeStore, LinkRow, Platform } from "./store.js";

/**
 * Tool approvals asked in the chat (issue 17 item 8). A turn's CLI asks (turns/approvals.ts);
 * the request goes to the linked platform chat, naming its approvers; only a named approver's
 * `/approve <id>` (once, or for the rest of the Claude session) or `/deny <id>` decides it,
 * and an unanswered request is denied when it expires. Every request and decision is a row,
 * so a decision is made once and a restart cannot leave one half-applied.
 */

/** Requests one chat may have waiting at once; more are denied at once (a looping agent cannot flood the approvers). */
export const MAX_PENDING_PER_CHAT = 5;
/** How much of a tool's input the request shows. */
const PREVIEW_MAX = 1500;
const CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789";

export interface ApprovalsOptions {
  /** How long a request waits for a decision. */
  timeoutMs: number;
  /** The sender ids ("tg:42", "wh:alice") that may decide in this platform chat; empty: nobody, so no approvals. */
  approversOf(platform: Platform, platformChatId: string): readonly string[];
  /** A platform's message limit, for splitting the request. */
  maxMessage(platform: Platform): number;
  /** Tools that run without asking in a chat with approvers (bridges.toolsWithoutApproval). */
  allowedTools?: readonly string[];
}

interface Waiter {
  chatId: string;
  input: Record<string, unknown>;
  resolve(d: PermissionDecision): void;
  timer: NodeJS.Timeout;
}

export type ApprovalCommand = "approve" | "deny";

export class BridgeApprovals implements ApprovalBroker {
  private readonly waiting = new Map<string, Waiter>();
  readonly allowedTools: readonly string[] | undefined;

  constructor(
    private readonly store: BridgeStore,
    private readonly turns: Pick<TurnsModule, "chats">,
    private readonly log: Logger,
    private readonly opts: ApprovalsOptions,
    /** Wakes the delivery loop after a message went into the outbox. */
    private readonly wake: () => void,
  ) {
    this.allowedTools = opts.allowedTools;
  }

  /** Requests a previous run left pending have no one waiting any more: expired, and said so. */
  start(): void {
    for (const row of this.store.pendingApprovals()) {
      this.store.tx(() => {
        if (this.store.settleApproval(row.id, "expired", null, null)) this.say(row, `⌛ Approval ${row.id} lapsed: the runtime restarted while it waited, so ${row.tool} was not run.`);
      });
    }
    this.wake();
  }

  close(): void {
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.resolve({ behavior: "deny", message: "The picortex runtime is stopping; the tool was not run." });
      this.waiting.delete(id);
    }
  }

  /** The approvers of one linked platform chat, with their names as last seen there. */
  approversOf(link: LinkRow): Array<{ id: string; name: string }> {
    return this.opts.approversOf(link.platform, link.platform_chat_id).map((id) => ({ id, name: this.nameOf(link, id) }));
  }

  /** The link whose approvers a chat asks: its first linked platform chat that names any. */
  private target(chatId: string): { link: LinkRow; approvers: readonly string[] } | undefined {
    for (const link of this.store.linksOfChat(chatId)) {
      const approvers = this.opts.approversOf(link.platform, link.platform_chat_id);
      if (approvers.length) return { link, approvers };
    }
    return undefined;
  }

  enabledFor(chatId: string): boolean {
    return this.target(chatId) !== undefined;
  }

  async decide(req: PermissionRequest, signal: AbortSignal): Promise<PermissionDecision> {
    const t = this.target(req.chatId);
    if (!t) return { behavior: "deny", message: "This chat has no approvers (bridges.*.approvers); the tool was not run." };
    const sessionId = this.turns.chats.find(req.chatId)?.sessionId ?? null;
    const subject = approvalSubject(req.toolName, req.input);
    if (sessionId && this.store.hasGrant(req.chatId, sessionId, req.toolName, subject)) return { behavior: "allow", updatedInput: req.input };
    if (signal.aborted) return { behavior: "deny", message: "The request was withdrawn." };
    const mine = [...this.waiting.values()].filter((w) => w.chatId === req.chatId).length;
    if (mine >= MAX_PENDING_PER_CHAT)
      return { behavior: "deny", message: `This chat already has ${mine} approval requests waiting (at most ${MAX_PENDING_PER_CHAT}); the tool was not run. Wait for the approvers.` };
    const id = this.newCode();
    const now = Date.now();
    const row: Omit<ApprovalRow, "status" | "scope" | "decided_by" | "decided_at"> = {
      id,
      chat_id: req.chatId,
      session_id: sessionId,
      platform: t.link.platform,
      platform_chat_id: t.link.platform_chat_id,
      tool: req.toolName,
      subject,
      created_at: now,
      expires_at: now + this.opts.timeoutMs,
    };
    const names = t.approvers.map((a) => this.nameOf(t.link, a));
    this.store.tx(() => {
      this.store.insertApproval(row);
      this.say(row, requestText(id, req.toolName, req.input, names, this.opts.timeoutMs));
    });
    this.wake();
    this.log.info("approval requested", { chatId: req.chatId, approval: id, tool: req.toolName });
    return new Promise<PermissionDecision>((resolve) => {
      const timer = setTimeout(() => this.lapse(id, "expired"), this.opts.timeoutMs);
      timer.unref();
      this.waiting.set(id, { chatId: req.chatId, input: req.input, resolve, timer });
      signal.addEventListener("abort", () => this.lapse(id, "withdrawn"), { once: true });
    });
  }

  /** Expired or withdrawn (the turn ended first): denied, and the chat told. */
  private lapse(id: string, status: "expired" | "withdrawn"): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    const row = this.store.getApproval(id);
    let settled = false;
    this.store.tx(() => {
      settled = this.store.settleApproval(id, status, null, null);
      if (settled && row)
        this.say(
          row,
          status === "expired"
            ? `⌛ Approval ${id} expired with no decision: ${row.tool} was not run.`
            : `Approval ${id} is withdrawn: the turn that asked ended before a decision.`,
        );
    });
    this.wake();
    w.resolve({ behavior: "deny", message: status === "expired" ? "No approver decided in time; the tool was not run." : "The request was withdrawn." });
  }

  /**
   * `/approve <id> [once|session]`, `/deny <id> [reason]`, or either alone (lists what waits).
   * Runs inside the bridge's ingest transaction; the waiting turn resumes after it commits.
   */
  command(link: LinkRow, senderId: string, name: ApprovalCommand, args: string): string {
    const [id, ...rest] = args.split(/\s+/).filter(Boolean);
    const approvers = this.opts.approversOf(link.platform, link.platform_chat_id);
    if (!id) {
      const open = this.store.pendingApprovals().filter((r) => r.platform === link.platform && r.platform_chat_id === link.platform_chat_id);
      if (!approvers.length) return "This chat has no approvers, so its agent never asks; tools outside its rules are denied.";
      const who = `Approvers here: ${approvers.map((a) => this.nameOf(link, a)).join(", ")}.`;
      return open.length ? `${who}\nWaiting: ${open.map((r) => `${r.id} (${r.tool})`).join(", ")}. Use /approve <id>, /approve <id> session or /deny <id>.` : `${who}\nNothing is waiting for approval.`;
    }
    const row = this.store.getApproval(id.toLowerCase());
    if (!row || row.platform !== link.platform || row.platform_chat_id !== link.platform_chat_id) return `There is no approval ${cleanName(id, 16)} in this chat.`;
    // Named approvers only: not whoever is in the group, not a group admin, not a display name.
    if (!approvers.includes(senderId)) return `Only ${approvers.map((a) => this.nameOf(link, a)).join(", ") || "the configured approvers"} can decide approval ${row.id} here.`;
    if (row.status !== "pending") return `Approval ${row.id} was already ${row.status === "approved" ? `approved${row.scope === "session" ? " for the session" : ""}` : row.status}.`;
    const w = this.waiting.get(row.id);
    const by = this.nameOf(link, senderId);
    if (!w) {
      // Pending in the table but no turn waits (it ended in the same instant): nothing to run.
      this.store.settleApproval(row.id, "withdrawn", null, senderId);
      return `Approval ${row.id} is no longer waiting: the turn that asked has ended.`;
    }
    if (name === "deny") {
      this.store.settleApproval(row.id, "denied", null, senderId);
      this.release(row.id, w, { behavior: "deny", message: `Denied by ${by}${rest.length ? `: ${rest.join(" ").slice(0, 300)}` : ""}.` });
      return `❌ Denied by ${by}: ${row.tool} [${row.id}] will not run.`;
    }
    const scope = rest[0]?.toLowerCase() === "session" ? "session" : rest.length === 0 || rest[0]?.toLowerCase() === "once" ? "once" : undefined;
    if (!scope) return `Use /approve ${row.id} (once) or /approve ${row.id} session (this and identical requests for the rest of the session).`;
    this.store.settleApproval(row.id, "approved", scope, senderId);
    if (scope === "session" && row.session_id)
      this.store.addGrant({ chat_id: row.chat_id, session_id: row.session_id, tool: row.tool, subject: row.subject, granted_by: senderId, approval_id: row.id });
    this.release(row.id, w, { behavior: "allow", updatedInput: w.input });
    return scope === "session"
      ? `✅ Approved by ${by} for the rest of this session: ${row.tool} ${describeSubject(row.tool, row.subject)} [${row.id}].`
      : `✅ Approved once by ${by}: ${row.tool} [${row.id}].`;
  }

  /** Resolves after the current transaction (a microtask): the decision is committed before the tool runs. */
  private release(id: string, w: Waiter, d: PermissionDecision): void {
    this.waiting.delete(id);
    clearTimeout(w.timer);
    queueMicrotask(() => w.resolve(d));
  }

  private say(row: Pick<ApprovalRow, "id" | "platform" | "platform_chat_id">, text: string): void {
    const key = `ap_${row.id}_${Date.now().toString(36)}_${randomInt(1e9).toString(36)}`;
    this.store.enqueueReply(key, row.platform, row.platform_chat_id, null, splitMessage(text, this.opts.maxMessage(row.platform)));
  }

  private nameOf(link: LinkRow, senderId: string): string {
    return cleanName(this.store.senderName(link.platform, link.platform_chat_id, senderId) ?? senderId, 32);
  }

  private newCode(): string {
    for (;;) {
      let code = "";
      for (let i = 0; i < 5; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
      if (!this.store.getApproval(code)) return code;
    }
  }
}

/**
 * What a "this session" approval covers: the exact command for Bash, the file for the file
 * tools, the host for WebFetch, else the tool as a whole.
 */
export function approvalSubject(tool: string, input: Record<string, unknown>): string {
  const str = (k: string) => (typeof input[k] === "string" ? (input[k] as string) : undefined);
  if (tool === "Bash") return str("command")?.trim() ?? "";
  if (["Edit", "Write", "MultiEdit", "NotebookEdit", "Read"].includes(tool)) return str("file_path") ?? str("notebook_path") ?? "";
  if (tool === "WebFetch") {
    try {
      return new URL(str("url") ?? "").host;
    } catch {
      return "";
    }
  }
  return "*";
}

function describeSubject(tool: string, subject: string): string {
  if (subject === "*") return "(any use)";
  const shown = oneLine(subject, 120);
  return tool === "Bash" ? `\`${shown}\`` : shown;
}

function oneLine(s: string, max: number): string {
  const t = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ").trim();
  return t.length > max ? t.slice(0, max - 1) + "…" : t;
}

/**
 * The tool input as the approver sees it: the command, or the file and the change. Every line
 * is prefixed with "│ " and control characters are dropped, so what the agent wrote can never
 * pose as the runtime's own lines (a fake "✅ Approved" or instructions).
 */
export function inputPreview(tool: string, input: Record<string, unknown>): string {
  const str = (k: string) => (typeof input[k] === "string" ? (input[k] as string) : "");
  let body: string;
  if (tool === "Bash") body = `$ ${str("command")}${str("description") ? `\n# ${str("description")}` : ""}`;
  else if (tool === "Edit") body = `${str("file_path")}\n${diffLines(str("old_string"), str("new_string"))}`;
  else if (tool === "MultiEdit") {
    const edits = Array.isArray(input.edits) ? (input.edits as Array<Record<string, unknown>>) : [];
    body = `${str("file_path")} (${edits.length} edit${edits.length === 1 ? "" : "s"})\n${edits.map((e) => diffLines(String(e.old_string ?? ""), String(e.new_string ?? ""))).join("\n")}`;
  } else if (tool === "Write") body = `${str("file_path")} (new content, ${str("content").length} characters)\n${str("content")}`;
  else body = JSON.stringify(input, null, 1) ?? "";
  const clean = body.replace(/\r\n?/g, "\n").replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, "");
  let lines = clean.split("\n").map((l) => `│ ${l}`);
  let out = lines.join("\n");
  if (out.length > PREVIEW_MAX) {
    lines = out.slice(0, PREVIEW_MAX).split("\n");
    lines.pop();
    out = `${lines.join("\n")}\n│ … (${clean.length.toLocaleString("en-US")} characters in all)`;
  }
  return out;
}

function diffLines(oldText: string, newText: string): string {
  const minus = oldText ? oldText.split("\n").map((l) => `- ${l}`) : [];
  const plus = newText ? newText.split("\n").map((l) => `+ ${l}`) : [];
  return [...minus, ...plus].join("\n");
}

function minutes(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
}

/** The message asking for an approval. */
export function requestText(id: string, tool: string, input: Record<string, unknown>, approverNames: readonly string[], timeoutMs: number): string {
  return [
    `🔐 Approval ${id}: the agent asks to run ${oneLine(tool, 60)}`,
    inputPreview(tool, input),
    `${approverNames.length === 1 ? "Approver" : "Approvers"}: ${approverNames.join(", ")}. Reply /approve ${id} (once), /approve ${id} session (this and identical requests for the rest of the session) or /deny ${id}. Expires in ${minutes(timeoutMs)}.`,
  ].join("\n");
}
