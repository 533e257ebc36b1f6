import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { BIN, assertChatId } from "../../host/contract.js";
import { runArgv, HOST_COMMAND_ENV } from "../../host/run-argv.js";
import { writeFileAtomic } from "../../store/atomic-file.js";
import { renderClaudeSettings, transcriptPath, type ChatFiles, type ChatHost, type ProvisionEvent, type SpawnSpec } from "./chat-host.js";
import { TurnError } from "../errors.js";
import { claudeJsonPath, writeMcpServer, type McpServerSpec } from "../../cli/brain-mcp.js";

/**
 * Local mode: every chat runs as the current user, with its own HOME, config dir and
 * workspace under <dataDir>/chats/<id>. Chats cannot corrupt each other's Claude
 * state, but they are NOT isolated from each other or from you (same Unix user).
 */
export class LocalChatHost implements ChatHost {
  readonly mode = "local" as const;

  constructor(
    readonly claudePath: string,
    private readonly chatsDir: string,
    /** The brain MCP server for a chat (cli/brain-mcp.ts), written into its Claude config; none when the brain is off. */
    private readonly brainMcp?: (chatId: string) => McpServerSpec,
  ) {}

  home(chatId: string): string {
    return join(this.chatsDir, assertChatId(chatId));
  }

  private configDir(chatId: string): string {
    return join(this.home(chatId), ".claude");
  }

  workspace(chatId: string): string {
    return join(this.home(chatId), "workspace");
  }

  async provision(chatId: string, files: ChatFiles, progress: (e: ProvisionEvent) => void): Promise<void> {
    progress({ step: "create_user", progress: 0.1, message: "local mode: using the current user with a private HOME (weaker isolation)" });
    mkdirSync(this.workspace(chatId), { recursive: true, mode: 0o700 });
    progress({ step: "install_cli", progress: 0.4, message: `checking ${this.claudePath}` });
    const v = await runArgv([this.claudePath, "--version"], { timeoutMs: 30_000 }).catch((err: Error) => ({ code: -1, stdout: "", stderr: err.message }));
    if (v.code !== 0) {
      throw new TurnError("provision_failed", `Claude Code CLI at ${this.claudePath} does not run (${v.stderr.trim() || `exit ${v.code}`}); install it or set turns.claudePath.`);
    }
    progress({ step: "install_cli", progress: 0.5, message: `Claude Code ${v.stdout.trim().split(/\s/)[0]} available` });
    progress({ step: "configure_api", progress: 0.7, message: "writing Claude settings (gateway URL, per-chat token helper)" });
    const tokenPath = this.tokenFile(chatId);
    writeFileAtomic(tokenPath, files.token + "\n", 0o600);
    writeFileAtomic(join(this.configDir(chatId), "settings.json"), renderClaudeSettings(tokenPath, files.gatewayUrl), 0o600);
    // The brain's record/recall tools, by absolute path (user-scope file of this chat's config dir).
    if (this.brainMcp) writeMcpServer(claudeJsonPath(this.configDir(chatId)), "brain", this.brainMcp(chatId));
    progress({ step: "complete", progress: 1, message: `chat ${chatId} is ready (local mode)` });
  }

  tokenFile(chatId: string): string {
    return join(this.configDir(chatId), "picortex-token");
  }

  mcpServers(chatId: string): Record<string, unknown> {
    return this.brainMcp ? { brain: this.brainMcp(chatId) } : {};
  }

  claudeSettings(chatId: string, gatewayUrl: string, env: Record<string, string> = {}): string {
    return JSON.stringify(JSON.parse(renderClaudeSettings(this.tokenFile(chatId), gatewayUrl, undefined, env)));
  }

  refreshGateway(chatId: string, gatewayUrl: string): void {
    const tokenPath = this.tokenFile(chatId);
    const settingsPath = join(this.configDir(chatId), "settings.json");
    if (!existsSync(tokenPath)) return;
    const wanted = renderClaudeSettings(tokenPath, gatewayUrl);
    const current = existsSync(settingsPath) ? readFileSync(settingsPath, "utf8") : "";
    if (current !== wanted) writeFileAtomic(settingsPath, wanted, 0o600);
  }

  async remove(chatId: string, archiveTo: string | undefined): Promise<{ archived: boolean }> {
    const home = this.home(chatId);
    if (!existsSync(home)) return { archived: false };
    if (archiveTo) {
      mkdirSync(dirname(archiveTo), { recursive: true, mode: 0o700 });
      // Private from its first byte, and renamed into place only once complete.
      const partial = `${archiveTo}.partial`;
      rmSync(partial, { force: true });
      closeSync(openSync(partial, "wx", 0o600));
      const r = await runArgv([BIN.tar, "--create", "--gzip", "--file", partial, "--directory", home, "."], { timeoutMs: 10 * 60_000 });
      if (r.code !== 0) throw new TurnError("provision_failed", `archiving ${home} failed: ${r.stderr.trim()}`);
      renameSync(partial, archiveTo);
    }
    rmSync(home, { recursive: true, force: true });
    return { archived: archiveTo !== undefined };
  }

  spawnSpec(chatId: string): SpawnSpec {
    const home = this.home(chatId);
    return {
      command: this.claudePath,
      args: [],
      cwd: this.workspace(chatId),
      // Built from scratch: the runtime's own environment (and any key in it) never reaches a chat.
      env: { ...HOST_COMMAND_ENV, PATH: `${dirname(this.claudePath)}:${HOST_COMMAND_ENV.PATH}`, HOME: home, CLAUDE_CONFIG_DIR: this.configDir(chatId) },
    };
  }

  async reapAll(_chatId: string, pid?: number | null): Promise<void> {
    // Only the recorded process group, and only if it is still a claude process (pid reuse).
    if (!pid) return;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!cmdline.includes("claude")) return;
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone already
    }
  }

  transcriptHas(chatId: string, sessionId: string, text: string): boolean {
    try {
      const transcript = readFileSync(transcriptPath(this.configDir(chatId), this.workspace(chatId), sessionId), "utf8");
      return transcript.includes(JSON.stringify(text).slice(1, -1));
    } catch {
      return false;
    }
  }

  transcriptDamage(chatId: string, sessionId: string): string | undefined {
    let text: string;
    try {
      text = readFileSync(transcriptPath(this.configDir(chatId), this.workspace(chatId), sessionId), "utf8");
    } catch {
      return undefined;
    }
    const lines = text.split("\n").filter((l) => l.trim() !== "");
    // The last line may be cut by a crash mid-write; Claude Code skips that one itself.
    let bad = 0;
    lines.forEach((l, i) => {
      try {
        JSON.parse(l);
      } catch {
        if (i < lines.length - 1) bad++;
      }
    });
    return bad > 0 ? `${bad} of ${lines.length} lines of its transcript are unreadable` : undefined;
  }

  transcriptExists(chatId: string, sessionId: string): boolean {
    return existsSync(transcriptPath(this.configDir(chatId), this.workspace(chatId), sessionId));
  }
}
