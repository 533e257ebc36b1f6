import { createHash, randomInt } from "node:crypto";
import type { Logger } from "../log.js";
import type { ApprovalBroker, ChatToolPolicy, PermissionDecision, PermissionRequest } from "../turns/approvals.js";
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
/** Requests one chat may post in RATE_WINDOW_MS; past it, tools are denied without asking anyone. */
export const MAX_REQUESTS_PER_WINDOW = 20;
const RATE_WINDOW_MS = 10 * 60_000;
/** Settled requests are kept this long (the audit of who approved what), then pruned at start. */
const KEEP_SETTLED_MS = 30 * 24 * 3600_000;
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
  /** A platform's caption limit when it takes files (a long input goes whole as one). */
  maxCaption?(platform: Platform): number | undefined;
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
  /** Decisions made inside the ingest transaction, released once it committed (or dropped). */
  private deferred: Array<{ id: string; decision: PermissionDecision }> = [];
  /** Request times per chat in the rate window. */
  private readonly recent = new Map<string, number[]>();
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
    this.store.pruneApprovals(Date.now() - KEEP_SETTLED_MS);
    for (const row of this.store.pendingApprovals()) {
      this.store.tx(() => {
        if (this.store.settleApproval(row.id, "expired", null, null)) this.say(row, `⌛ Approval ${row.id} lapsed: the runtime restarted while it waited, so ${oneLine(row.tool, 60)} was not run.`);
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

  /**
   * A chat a bridge links is governed: with approvers it asks them, and either way only
   * bridges.toolsWithoutApproval run unasked (when set), so a chat that loses its approvers (a
   * config change, a group id that changed) denies more, never allows more.
   */
  policyFor(chatId: string): ChatToolPolicy | undefined {
    if (this.store.linksOfChat(chatId).length === 0) return undefined;
    return { ask: this.target(chatId) !== undefined, allowedTools: this.allowedTools, timeoutMs: this.opts.timeoutMs };
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
    const now0 = Date.now();
    const times = (this.recent.get(req.chatId) ?? []).filter((t) => now0 - t < RATE_WINDOW_MS);
    if (times.length >= MAX_REQUESTS_PER_WINDOW) {
      this.log.warn("approval requests over the rate limit; denied without asking", { chatId: req.chatId, tool: req.toolName });
      return { behavior: "deny", message: `This chat asked for ${times.length} approvals in the last ${RATE_WINDOW_MS / 60_000} min, the most it may; the tool was not run and no one was asked.` };
    }
    times.push(now0);
    this.recent.set(req.chatId, times);
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
      this.sayChunks(row, requestChunks(id, req.toolName, req.input, names, this.opts.timeoutMs, this.opts.maxMessage(t.link.platform), this.opts.maxCaption?.(t.link.platform)));
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
      // Withdrawn (the turn ended first) is said only to whoever answers it later: one message per request.
      if (settled && row && status === "expired") this.say(row, `⌛ Approval ${id} expired with no decision: ${oneLine(row.tool, 60)} was not run.`);
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
      return open.length ? `${who}\nWaiting: ${open.map((r) => `${r.id} (${oneLine(r.tool, 60)})`).join(", ")}. Use /approve <id>, /approve <id> session or /deny <id>.` : `${who}\nNothing is waiting for approval.`;
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
      return `❌ Denied by ${by}: ${oneLine(row.tool, 60)} [${row.id}] will not run.`;
    }
    const scope = rest[0]?.toLowerCase() === "session" ? "session" : rest.length === 0 || rest[0]?.toLowerCase() === "once" ? "once" : undefined;
    if (!scope) return `Use /approve ${row.id} (once) or /approve ${row.id} session (this identical request again, for the rest of the session).`;
    this.store.settleApproval(row.id, "approved", scope, senderId);
    if (scope === "session" && row.session_id)
      this.store.addGrant({ chat_id: row.chat_id, session_id: row.session_id, tool: row.tool, subject: row.subject, granted_by: senderId, approval_id: row.id });
    this.release(row.id, w, { behavior: "allow", updatedInput: w.input });
    return scope === "session"
      ? `✅ Approved by ${by} for the rest of this session: ${oneLine(row.tool, 60)} ${describeSubject(row.tool, row.subject)} [${row.id}].`
      : `✅ Approved once by ${by}: ${oneLine(row.tool, 60)} [${row.id}].`;
  }

  /** Held until the ingest transaction committed (afterCommit): a decision rolled back never runs a tool. */
  private release(id: string, _w: Waiter, d: PermissionDecision): void {
    this.deferred.push({ id, decision: d });
  }

  /** The ingest transaction committed: the decisions it recorded reach their waiting turns. */
  afterCommit(): void {
    const done = this.deferred;
    this.deferred = [];
    for (const { id, decision } of done) {
      const w = this.waiting.get(id);
      if (!w) continue;
      this.waiting.delete(id);
      clearTimeout(w.timer);
      w.resolve(decision);
    }
  }

  /** The ingest transaction rolled back: its decisions never happened (the request still waits). */
  afterRollback(): void {
    this.deferred = [];
  }

  private say(row: Pick<ApprovalRow, "id" | "platform" | "platform_chat_id">, text: string): void {
    const key = `ap_${row.id}_${Date.now().toString(36)}_${randomInt(1e9).toString(36)}`;
    this.store.enqueueReply(key, row.platform, row.platform_chat_id, null, splitMessage(text, this.opts.maxMessage(row.platform)));
  }

  private sayChunks(row: Pick<ApprovalRow, "id" | "platform" | "platform_chat_id">, chunks: Array<string | { caption: string; document: string }>): void {
    const key = `ap_${row.id}_${Date.now().toString(36)}_${randomInt(1e9).toString(36)}`;
    this.store.enqueueReply(key, row.platform, row.platform_chat_id, null, chunks);
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

/** Subjects longer than this are stored as their hash (a grant key, not a copy of the input). */
const SUBJECT_MAX = 512;

/**
 * What a "this session" approval covers: this identical request again. For Bash the exact
 * command (as shown); for every other tool the exact input, as its hash (an edit's grant
 * covers the same edit, never new content for the same file).
 */
export function approvalSubject(tool: string, input: Record<string, unknown>): string {
  if (tool === "Bash" && typeof input.command === "string") {
    const command = input.command.trim();
    if (command.length <= SUBJECT_MAX) return command;
  }
  return `sha256:${createHash("sha256").update(canonicalJson(input)).digest("hex")}`;
}

/** JSON with keys sorted at every level: equal inputs hash equal whatever their key order. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") return `{${Object.keys(v as object).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(",")}}`;
  return JSON.stringify(v) ?? "null";
}

function describeSubject(tool: string, subject: string): string {
  if (subject.startsWith("sha256:")) return "(this exact input)";
  const shown = oneLine(subject, 120);
  return tool === "Bash" ? `\`${shown}\`` : shown;
}

/** Characters that change how text reads without showing: direction overrides, zero-width marks. */
const INVISIBLE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;
const HAS_INVISIBLE = new RegExp(INVISIBLE.source);

/** Shown as ⟨U+202E⟩: what runs is what the approver reads. */
function visible(s: string): string {
  return s.replace(INVISIBLE, (c) => `⟨U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`);
}

function oneLine(s: string, max: number): string {
  const t = visible(s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ")).trim();
  return t.length > max ? t.slice(0, max - 1) + "…" : t;
}

/** The tool input as the approver reads it: the command, or the file and the change; control characters dropped, invisible ones shown. */
function inputBody(tool: string, input: Record<string, unknown>): string {
  const str = (k: string) => (typeof input[k] === "string" ? (input[k] as string) : "");
  let body: string;
  if (tool === "Bash") body = `$ ${str("command")}${str("description") ? `\n# ${str("description")}` : ""}`;
  else if (tool === "Edit") body = `${str("file_path")}\n${diffLines(str("old_string"), str("new_string"))}`;
  else if (tool === "MultiEdit") {
    const edits = Array.isArray(input.edits) ? (input.edits as Array<Record<string, unknown>>) : [];
    body = `${str("file_path")} (${edits.length} edit${edits.length === 1 ? "" : "s"})\n${edits.map((e) => diffLines(String(e.old_string ?? ""), String(e.new_string ?? ""))).join("\n")}`;
  } else if (tool === "Write") body = `${str("file_path")} (new content, ${str("content").length} characters)\n${str("content")}`;
  else body = JSON.stringify(input, null, 1) ?? "";
  return visible(body.replace(/\r\n?/g, "\n").replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, ""));
}

/** Every line prefixed "│ ", so what the agent wrote can never pose as the runtime's own lines; cut at PREVIEW_MAX. */
function quoted(body: string, max = PREVIEW_MAX): { text: string; cut: boolean } {
  const all = body.split("\n").map((l) => `│ ${l}`).join("\n");
  if (all.length <= max) return { text: all, cut: false };
  const lines = all.slice(0, max).split("\n");
  // Keep whole lines; one very long first line is shown in part rather than not at all.
  if (lines.length > 1) lines.pop();
  return { text: `${lines.join("\n")}\n│ … (${body.length.toLocaleString("en-US")} characters in all)`, cut: true };
}

/** The preview a request shows (tests: what the approver reads). */
export function inputPreview(tool: string, input: Record<string, unknown>): string {
  return quoted(inputBody(tool, input)).text;
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

/**
 * The message(s) asking for an approval. An input too long to show whole goes along whole:
 * as a file on a platform that takes files (the caption asks to read it first), else in as
 * many messages as it takes before the question, so nothing runs that the approver could not read.
 */
export function requestChunks(
  id: string,
  tool: string,
  input: Record<string, unknown>,
  approverNames: readonly string[],
  timeoutMs: number,
  maxMessage: number,
  maxCaption?: number,
): Array<string | { caption: string; document: string }> {
  const body = inputBody(tool, input);
  const head = `🔐 Approval ${id}: the agent asks to run ${oneLine(tool, 60)}`;
  const warn = HAS_INVISIBLE.test(JSON.stringify(input)) ? "⚠️ The input holds invisible or direction-changing characters, shown here as ⟨U+…⟩." : undefined;
  const foot = `${approverNames.length === 1 ? "Approver" : "Approvers"}: ${approverNames.join(", ")}. Reply /approve ${id} (once), /approve ${id} session (this identical request again, for the rest of the session) or /deny ${id}. Expires in ${minutes(timeoutMs)}.`;
  const preview = quoted(body);
  if (!preview.cut) return splitMessage([head, warn, preview.text, foot].filter((l) => l !== undefined).join("\n"), maxMessage);
  if (maxCaption) {
    const caption = [head, warn, `The whole input (${body.length.toLocaleString("en-US")} characters) is in the attached file: read it before you approve.`, foot].filter((l) => l !== undefined).join("\n");
    return [{ caption: caption.slice(0, maxCaption), document: body }];
  }
  return splitMessage([head, warn, quoted(body, Number.MAX_SAFE_INTEGER).text, foot].filter((l) => l !== undefined).join("\n"), maxMessage);
}
