/**
 * The exact privileged argv the runtime may run for a chat, built from the host
 * contract (contract.ts: the chat id grammar, Linux user, paths and binaries). The
 * sudoers renderer (templates/render-sudoers.ts) builds its anchored regular
 * expressions from the same constants, so the rules and the callers cannot drift apart.
 */
import { BIN, CHAT_USER_HELPER_PATH, DEFAULT_CHATS_ROOT, assertChatId, chatHome, chatUser, chatWorkspace } from "./contract.js";

/**
 * Exact argv for each privileged operation (run as `sudo -n -- <argv>`). Only the root
 * helper (templates/host/picortex-chat-user.sh) runs as root; it takes the chat id alone
 * and builds every useradd/userdel argv itself, owns uid allocation (a uid is never
 * reused) and removes everything a deleted chat's uid owned.
 */
export const privilegedArgv = {
  createUser(chatId: string, helperPath: string = CHAT_USER_HELPER_PATH): string[] {
    return [helperPath, "create", assertChatId(chatId)];
  },
  deleteUser(chatId: string, helperPath: string = CHAT_USER_HELPER_PATH): string[] {
    return [helperPath, "delete", assertChatId(chatId)];
  },
};

/**
 * Argv prefix to run a command as the chat's user. `-H` sets HOME to the chat home,
 * `-n` fails instead of prompting, and sudo's env_reset keeps the runtime's
 * environment (and its secrets) away from the chat.
 */
export function runAsChatPrefix(chatId: string): string[] {
  return [BIN.sudo, "-n", "-H", "-u", chatUser(chatId), "--"];
}

// ---------------------------------------------------------------------------
// Turn runner additions (issue 3). Everything below runs AS the chat user (never
// root) through the PICORTEX_AS_CHAT rule, so it can only touch what that user owns.

/**
 * Argv to run a turn: `sudo -n -H -u pc-<id> -D <workspace> -- <claude> ...`.
 * `-D` needs the sudoers rule for the claude path to carry `CWD=*` (sudo refuses
 * `-D` otherwise, even for root): the runtime cannot enter the 0700 home itself, and
 * sudo would otherwise keep the runtime's cwd, breaking `--resume` (keyed by cwd).
 */
export function runTurnPrefix(chatId: string, claudePath: string, chatsRoot = DEFAULT_CHATS_ROOT): string[] {
  return [BIN.sudo, "-n", "-H", "-u", chatUser(chatId), "-D", chatWorkspace(chatId, chatsRoot), "--", claudePath];
}

export const asChatArgv = {
  /**
   * Unpacks the chat's Claude settings and token (a tar stream on stdin) into its home,
   * as the chat user, so the runtime never writes into (or follows links inside) a
   * directory the chat controls.
   */
  unpackIntoHome(chatId: string, chatsRoot = DEFAULT_CHATS_ROOT): string[] {
    return [...runAsChatPrefix(chatId), BIN.tar, "--extract", "--no-same-owner", "--directory", chatHome(chatId, chatsRoot), "--file", "-"];
  },
  /** Streams the chat home as a gzip tar on stdout (archiving on delete). */
  archiveHome(chatId: string, chatsRoot = DEFAULT_CHATS_ROOT): string[] {
    return [...runAsChatPrefix(chatId), BIN.tar, "--create", "--gzip", "--directory", chatHome(chatId, chatsRoot), "--file", "-", "."];
  },
  /** Kills every process of the chat user (a timed-out turn, a stale warm process). */
  killAll(chatId: string): string[] {
    return [...runAsChatPrefix(chatId), BIN.pkill, "-KILL", "-U", chatUser(chatId)];
  },
  /** Prints the CLI version as the chat user: proves the chat can execute it. */
  claudeVersion(chatId: string, claudePath: string): string[] {
    return [...runAsChatPrefix(chatId), claudePath, "--version"];
  },
};
