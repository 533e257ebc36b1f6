/**
 * The single source of truth for how a chat maps onto the host: its id grammar,
 * Linux user, home, and the exact privileged argv the runtime may run. The sudoers
 * renderer (templates/, components/) builds its anchored regular expressions from
 * the same constants, so the rules and the callers cannot drift apart.
 */
import { CHAT_USER_HELPER_PATH } from "./accounts.js";

export const CHAT_ID_PATTERN = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,23}$/;
/** What sudoers may match for an id: a superset of CHAT_ID_PATTERN with no `.`, `/` or space. */
export const CHAT_ID_SUDOERS_REGEX = "[a-z][a-z0-9-]{1,23}";
export const CHAT_USER_PREFIX = "pc-";
export const CHAT_GROUP = "picortex-chats";
/** Members may manage chat users through the scoped drop-in: the runtime user and the admin. */
export const OPS_GROUP = "picortex-ops";
export const RUNTIME_USER = "picortex";
export const DEFAULT_CHATS_ROOT = "/srv/picortex/chats";
export const DEFAULT_CLAUDE_PATH = "/usr/local/bin/claude";

export const BIN = {
  useradd: "/usr/sbin/useradd",
  userdel: "/usr/sbin/userdel",
  chmod: "/usr/bin/chmod",
  sudo: "/usr/bin/sudo",
  pkill: "/usr/bin/pkill",
  tar: "/usr/bin/tar",
} as const;

export class InvalidChatIdError extends Error {
  constructor(readonly chatId: string) {
    super(
      `Invalid chat id ${JSON.stringify(chatId).slice(0, 40)}: use 2-24 characters, lowercase letters, digits and single hyphens, starting with a letter (e.g. "team-alpha").`,
    );
    this.name = "InvalidChatIdError";
  }
}

export function assertChatId(chatId: string): string {
  if (typeof chatId !== "string" || !CHAT_ID_PATTERN.test(chatId)) throw new InvalidChatIdError(String(chatId));
  return chatId;
}

export function chatUser(chatId: string): string {
  return CHAT_USER_PREFIX + assertChatId(chatId);
}

export function chatHome(chatId: string, chatsRoot = DEFAULT_CHATS_ROOT): string {
  return `${chatsRoot}/${assertChatId(chatId)}`;
}

/** Subcommands of the chat-user helper (the sudoers rule allows exactly these). */
export const CHAT_USER_HELPER_COMMANDS = ["create", "delete"] as const;

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

/** The chat's private temp dir (TMPDIR of its turns), made 0700 by the helper. */
export function chatTmpDir(chatId: string, chatsRoot = DEFAULT_CHATS_ROOT): string {
  return `${chatHome(chatId, chatsRoot)}/tmp`;
}

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

/** The chat's fixed working directory: transcripts are keyed by cwd, so it never moves. */
export function chatWorkspace(chatId: string, chatsRoot = DEFAULT_CHATS_ROOT): string {
  return `${chatHome(chatId, chatsRoot)}/workspace`;
}

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
