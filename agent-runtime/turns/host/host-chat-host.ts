import { createWriteStream, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { finished } from "node:stream/promises";
import { BIN, chatHome, chatTmpDir, chatUser, chatWorkspace, CHAT_USER_HELPER_PATH } from "../../host/contract.js";
import { asChatArgv, privilegedArgv, runTurnPrefix } from "../../host/chat-identity.js";
import { runArgv, HOST_COMMAND_ENV, type ArgvResult } from "../../host/run-argv.js";
import { renderClaudeSettings, type ChatFiles, type ChatHost, type ProvisionEvent, type SpawnSpec } from "./chat-host.js";
import { buildTar } from "./tar-stream.js";
import { renderChatBrainClaudeJson, renderChatBrainHeaders } from "./chat-brain.js";
import { TurnError } from "../errors.js";

const SUDO_N = [BIN.sudo, "-n", "--"];

function describe(argv: readonly string[], r: ArgvResult): string {
  const why = r.stderr.trim().split("\n").slice(-3).join(" | ") || `exit ${r.code ?? r.signal}`;
  return `\`${argv.slice(0, 6).join(" ")}${argv.length > 6 ? " …" : ""}\` failed: ${why}`;
}

/**
 * Host mode: each chat is the Linux user pc-<id> with a 0700 home under chatsRoot.
 * The only root step is the chat-user helper (`sudo -n -- picortex-chat-user
 * create|delete <id>`): it allocates a uid that is never reused, makes the home 0700 at
 * once, and on delete kills the uid's processes and removes everything it owned. All
 * else runs as the chat user. The sudoers drop-in allows exactly these argv.
 */
export class HostChatHost implements ChatHost {
  readonly mode = "host" as const;

  constructor(
    readonly claudePath: string,
    private readonly chatsRoot: string,
    private readonly chatUserHelper: string = CHAT_USER_HELPER_PATH,
  ) {}

  private async must(argv: string[], input?: Buffer): Promise<ArgvResult> {
    const r = await runArgv(argv, { input, timeoutMs: 60_000 });
    if (r.code !== 0) throw new TurnError("provision_failed", describe(argv, r));
    return r;
  }

  async provision(chatId: string, files: ChatFiles, progress: (e: ProvisionEvent) => void): Promise<void> {
    progress({ step: "create_user", progress: 0.1, message: `creating Linux user pc-${chatId}` });
    await this.must([...SUDO_N, ...privilegedArgv.createUser(chatId, this.chatUserHelper)]);
    try {
      progress({ step: "install_cli", progress: 0.4, message: `checking that pc-${chatId} can run ${this.claudePath}` });
      const version = await this.must(asChatArgv.claudeVersion(chatId, this.claudePath));
      progress({ step: "install_cli", progress: 0.5, message: `Claude Code ${version.stdout.trim().split(/\s/)[0]} available` });
      progress({ step: "configure_api", progress: 0.7, message: "writing Claude settings (gateway URL, per-chat token helper)" });
      const tar = buildTar([
        { path: ".claude", mode: 0o700 },
        {
          path: ".claude/settings.json",
          mode: 0o600,
          content: renderClaudeSettings(this.tokenFile(chatId), files.gatewayUrl, chatTmpDir(chatId, this.chatsRoot)),
        },
        { path: ".claude/picortex-token", mode: 0o600, content: files.token + "\n" },
        ...(files.brain
          ? [
              // The brain's MCP tools (user scope), with the token in its own 0600 file.
              { path: ".claude/picortex-brain-headers", mode: 0o600, content: renderChatBrainHeaders(files.brain.token) },
              { path: ".claude.json", mode: 0o600, content: renderChatBrainClaudeJson(this.brainHeadersFile(chatId), files.brain.url) },
            ]
          : []),
        { path: "workspace", mode: 0o700 },
      ]);
      await this.must(asChatArgv.unpackIntoHome(chatId, this.chatsRoot), tar);
    } catch (err) {
      // Leave nothing half-made behind: the chat can be created again.
      await runArgv([...SUDO_N, ...privilegedArgv.deleteUser(chatId, this.chatUserHelper)]).catch(() => {});
      throw err;
    }
    progress({ step: "complete", progress: 1, message: `chat ${chatId} is ready (user pc-${chatId})` });
  }

  async remove(chatId: string, archiveTo: string | undefined): Promise<{ archived: boolean }> {
    // Trigger: the user is already gone (provisioning failed and rolled back, or removed by
    // hand). Why: every step below runs as, or on, that user and would fail with "unknown
    // user". Outcome: nothing to archive or delete; the chat is simply marked deleted.
    if (!(await this.userExists(chatId))) return { archived: false };
    await this.reapAll(chatId);
    if (archiveTo) {
      mkdirSync(dirname(archiveTo), { recursive: true, mode: 0o700 });
      // Written beside its final name and renamed once complete: a crash or timeout never
      // leaves a truncated archive under the name the database records.
      const partial = `${archiveTo}.partial`;
      rmSync(partial, { force: true });
      const out = createWriteStream(partial, { mode: 0o600, flags: "wx" });
      const argv = asChatArgv.archiveHome(chatId, this.chatsRoot);
      const r = await runArgv(argv, { stdoutTo: out, timeoutMs: 10 * 60_000 });
      await finished(out).catch(() => {});
      if (r.code !== 0) throw new TurnError("provision_failed", `archiving the workspace: ${describe(argv, r)}`);
      renameSync(partial, archiveTo);
    }
    // The helper kills every process of the uid, deletes the user and removes its home
    // and everything else the uid owned (shared temp dirs, IPC).
    const argv = [...SUDO_N, ...privilegedArgv.deleteUser(chatId, this.chatUserHelper)];
    const r = await runArgv(argv, { timeoutMs: 5 * 60_000 });
    if (r.code !== 0 && r.code !== 6 /* no such user: already gone */) throw new TurnError("provision_failed", describe(argv, r));
    return { archived: archiveTo !== undefined };
  }

  async readopt(chatId: string): Promise<boolean> {
    if (await this.userExists(chatId)) return false;
    // The helper's create re-adopts a home whose user is gone: same uid, home untouched.
    await this.must([...SUDO_N, ...privilegedArgv.createUser(chatId, this.chatUserHelper)]);
    return true;
  }

  /** `getent passwd` needs no privilege and reads NSS like sudo and userdel do. */
  private async userExists(chatId: string): Promise<boolean> {
    const r = await runArgv([BIN.getent, "passwd", chatUser(chatId)], { timeoutMs: 15_000 });
    if (r.code === 0) return true;
    if (r.code === 2) return false;
    throw new TurnError("provision_failed", describe([BIN.getent, "passwd", chatUser(chatId)], r));
  }

  tokenFile(chatId: string): string {
    return `${chatHome(chatId, this.chatsRoot)}/.claude/picortex-token`;
  }

  mcpServers(): Record<string, unknown> {
    return {}; // the brain is wired by BrainWiredChatHost
  }

  /** Where provisioning puts the brain's header file (headersHelper reads it as the chat). */
  brainHeadersFile(chatId: string): string {
    return `${chatHome(chatId, this.chatsRoot)}/.claude/picortex-brain-headers`;
  }

  claudeSettings(chatId: string, gatewayUrl: string, env: Record<string, string> = {}): string {
    return JSON.stringify(JSON.parse(renderClaudeSettings(this.tokenFile(chatId), gatewayUrl, chatTmpDir(chatId, this.chatsRoot), env)));
  }

  spawnSpec(chatId: string): SpawnSpec {
    const [command, ...args] = runTurnPrefix(chatId, this.claudePath, this.chatsRoot);
    // sudo resets the environment; the chat's own settings.json supplies the rest.
    return { command: command!, args, cwd: "/", env: { ...HOST_COMMAND_ENV } };
  }

  async reapAll(chatId: string): Promise<void> {
    // pkill exits 1 when nothing matched, which is the usual case.
    await runArgv(asChatArgv.killAll(chatId), { timeoutMs: 15_000 });
  }

  transcriptExists(): undefined {
    return undefined; // the home is 0700 and owned by the chat; the runtime cannot look
  }

  workspace(chatId: string): string {
    return chatWorkspace(chatId, this.chatsRoot);
  }
}
