import type { TurnsConfig } from "../../config/turns.js";
import { APPROVALS_TOOL_ID } from "../approvals.js";

export interface SessionChoice {
  sessionId: string;
  /** `--resume` when the transcript exists, else `--session-id` (reusing it would fail). */
  resume: boolean;
}

/**
 * What a turn's flags depend on besides the session (module.ts builds it per turn).
 * - `settings`: the chat's Claude settings (key helper path, gateway URL, env) passed with
 *   `--settings`, and `--setting-sources ""` so that no settings file the chat's own user can
 *   write (its ~/.claude/settings.json, its workspace's .claude/) is read: a prompt-injected
 *   agent could otherwise allow itself any tool or add a hook that approves everything.
 * - `mcpConfig`: the MCP servers the runtime gives the chat (its brain; the approval tool when
 *   it asks), since no user-scope config is read either.
 * - `allowedTools`: the tools that run without asking, over turns.allowedTools (a bridged chat
 *   under bridges.toolsWithoutApproval).
 * - `ask`: the chat asks its approvers (turns/approvals.ts) for everything else.
 */
export interface TurnPolicy {
  settings?: string;
  mcpConfig?: string;
  allowedTools?: readonly string[];
  ask?: boolean;
}

/**
 * The CLI flags of a turn (never a shell string). The prompt is not here: it goes on
 * stdin, which keeps it out of argv (visible in `ps`) and avoids the 3 s empty-stdin wait.
 */
export function claudeTurnFlags(config: Pick<TurnsConfig, "permissionMode" | "allowedTools">, session: SessionChoice, warm: boolean, policy: TurnPolicy = {}): string[] {
  const flags = ["-p"];
  if (warm) flags.push("--input-format", "stream-json");
  flags.push("--output-format", "stream-json", "--verbose");
  flags.push(session.resume ? "--resume" : "--session-id", session.sessionId);
  if (policy.settings !== undefined) flags.push("--setting-sources", "", "--settings", policy.settings);
  if (policy.mcpConfig !== undefined) flags.push("--mcp-config", policy.mcpConfig);
  // `dontAsk` denies what allowedTools does not cover without asking anyone; with approvers,
  // `default` mode asks the permission-prompt tool instead (measured with the CLI: dontAsk
  // never calls it). allowedTools still run without asking. bypassPermissions asks nothing.
  const asks = policy.ask === true && config.permissionMode === "dontAsk";
  flags.push("--permission-mode", asks ? "default" : config.permissionMode);
  const unasked = policy.allowedTools ?? config.allowedTools;
  if (config.permissionMode === "dontAsk" && unasked.length) flags.push("--allowedTools", unasked.join(","));
  if (asks) flags.push("--permission-prompt-tool", APPROVALS_TOOL_ID);
  return flags;
}

/** The user line a warm (`--input-format stream-json`) process reads for one turn. */
export function streamJsonUserLine(text: string): string {
  return JSON.stringify({ type: "user", message: { role: "user", content: text } }) + "\n";
}

/** What the CLI says when the session flag was the wrong one; the runner switches and retries. */
export function sessionMismatch(stderr: string, resultText: string): "in_use" | "not_found" | undefined {
  const all = `${stderr}\n${resultText}`;
  if (/already in use/i.test(all)) return "in_use";
  if (/No conversation found/i.test(all)) return "not_found";
  return undefined;
}
