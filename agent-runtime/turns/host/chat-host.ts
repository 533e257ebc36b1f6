/**
 * Where and as whom a chat's `claude` runs. Two implementations share one API:
 * host mode (a Linux user per chat, through the scoped sudoers rules) and local mode
 * (the current user, a private HOME per chat: weaker isolation, no sudo needed).
 */
import type { ProvisionEvent } from "../domain.js";

export type { ProvisionEvent, ProvisionStep } from "../domain.js";

export interface ChatFiles {
  /** The per-chat gateway token, read by the CLI through `apiKeyHelper`. */
  token: string;
  /** Loopback URL of the runtime's key gateway. */
  gatewayUrl: string;
  /** The chat's brain MCP endpoint and token (host mode, turns/host/chat-brain.ts); none when the brain is off. */
  brain?: { url: string; token: string };
}

export interface SpawnSpec {
  command: string;
  /** Arguments before the claude flags (host mode: the sudo prefix ending in the CLI path). */
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

export interface ChatHost {
  readonly mode: "host" | "local";
  readonly claudePath: string;
  provision(chatId: string, files: ChatFiles, progress: (e: ProvisionEvent) => void): Promise<void>;
  /**
   * Removes the chat's user/home; with `archiveTo`, first writes a .tar.gz of the home
   * there. Resolves to whether an archive was written: false when nothing of the chat was
   * left on the host (provisioning failed half-way, or an operator removed it by hand).
   */
  remove(chatId: string, archiveTo: string | undefined): Promise<{ archived: boolean }>;
  spawnSpec(chatId: string): SpawnSpec;
  /** The chat's gateway token file, as its own user reads it (apiKeyHelper, the approvals' headersHelper). */
  tokenFile(chatId: string): string;
  /** The chat's Claude settings as JSON (what provisioning writes to its settings.json), for `--settings`. */
  claudeSettings(chatId: string, gatewayUrl: string, env?: Record<string, string>): string;
  /** The MCP servers the runtime gives the chat (its brain), for `--mcp-config`. */
  mcpServers(chatId: string, gatewayUrl: string): Record<string, unknown>;
  /** Kills every process belonging to the chat (host mode: as the chat user). */
  reapAll(chatId: string, pid?: number | null): Promise<void>;
  /**
   * Points an existing chat's settings at the gateway's current URL (local mode, where
   * `--port 0` or a changed port would otherwise strand chats). Host mode keeps the
   * configured port fixed, so it does not need this.
   */
  refreshGateway?(chatId: string, gatewayUrl: string): void;
  /**
   * Host mode, at start: a ready chat whose Linux user is missing (the server was replaced
   * and the data volume kept its home) gets the user back, with the uid that owns the
   * home. Resolves to whether it had to.
   */
  readopt?(chatId: string): Promise<boolean>;
  /**
   * Whether the transcript already holds `text` (local mode only). A warm process
   * writes its transcript 50-300 ms after it reports the result, so a process killed in
   * that window would lose the turn from Claude's memory; the runner waits for it.
   */
  transcriptHas?(chatId: string, sessionId: string, text: string): boolean;
  /**
   * Why the session's transcript is unusable (e.g. "3 of 40 lines unreadable"), or
   * undefined when it is fine or the runtime cannot read it (host mode).
   */
  transcriptDamage?(chatId: string, sessionId: string): string | undefined;
  /** Whether the session's transcript exists; undefined when the runtime cannot look (host mode). */
  transcriptExists(chatId: string, sessionId: string): boolean | undefined;
}

/** The CLI's settings for a chat: the token comes from a file only its owner can read. */
export function renderClaudeSettings(tokenPath: string, gatewayUrl: string, tmpDir?: string, extraEnv: Record<string, string> = {}): string {
  if (!/^[A-Za-z0-9/_.-]+$/.test(tokenPath)) throw new Error(`token path ${tokenPath} has characters unsafe in apiKeyHelper`);
  // Host mode: the chat's own 0700 temp dir, so its files never sit in a shared /tmp
  // (where a later chat could find them) and the CLI's per-uid dir lives there too.
  const tmp = tmpDir ? { TMPDIR: tmpDir, CLAUDE_CODE_TMPDIR: tmpDir } : {};
  return (
    JSON.stringify(
      {
        // Run by the CLI through a shell: `cat` of a fixed path keeps the token out of argv.
        apiKeyHelper: `cat ${tokenPath}`,
        env: {
          ANTHROPIC_BASE_URL: gatewayUrl,
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
          DISABLE_AUTOUPDATER: "1",
          DISABLE_TELEMETRY: "1",
          DISABLE_ERROR_REPORTING: "1",
          ...tmp,
          ...extraEnv,
        },
      },
      null,
      2,
    ) + "\n"
  );
}

/** The transcript path the CLI uses: `<config dir>/projects/<cwd with / and . as ->/<session>.jsonl`. */
export function transcriptPath(configDir: string, cwd: string, sessionId: string): string {
  return `${configDir}/projects/${cwd.replace(/[^A-Za-z0-9]/g, "-")}/${sessionId}.jsonl`;
}
