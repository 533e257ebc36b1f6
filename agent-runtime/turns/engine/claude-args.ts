import type { TurnsConfig } from "../../config/turns.js";
import { APPROVALS_TOOL_ID } from "../approvals.js";

export interface SessionChoice {
  sessionId: string;
  /** `--resume` when the transcript exists, else `--session-id` (reusing it would fail). */
  resume: boolean;
}

/**
 * The CLI flags of a turn (never a shell string). The prompt is not here: it goes on
 * stdin, which keeps it out of argv (visible in `ps`) and avoids the 3 s empty-stdin wait.
 */
export function claudeTurnFlags(
  config: Pick<TurnsConfig, "permissionMode" | "allowedTools">,
  session: SessionChoice,
  warm: boolean,
  /** The chat's approvals (turns/approvals.ts): its `--mcp-config` and unasked tools; unset: no one to ask. */
  approvals?: { mcpConfig: string; allowedTools?: readonly string[] },
): string[] {
  const flags = ["-p"];
  if (warm) flags.push("--input-format", "stream-json");
  flags.push("--output-format", "stream-json", "--verbose");
  flags.push(session.resume ? "--resume" : "--session-id", session.sessionId);
  // `dontAsk` denies what allowedTools does not cover without asking anyone; with approvers,
  // `default` mode asks the permission-prompt tool instead (measured with the CLI: dontAsk
  // never calls it). allowedTools still run without asking. bypassPermissions asks nothing.
  const asks = approvals !== undefined && config.permissionMode === "dontAsk";
  flags.push("--permission-mode", asks ? "default" : config.permissionMode);
  const unasked = asks ? (approvals.allowedTools ?? config.allowedTools) : config.allowedTools;
  if (config.permissionMode === "dontAsk" && unasked.length) flags.push("--allowedTools", unasked.join(","));
  if (asks) flags.push("--permission-prompt-tool", APPROVALS_TOOL_ID, "--mcp-config", approvals.mcpConfig);
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
