/**
 * The host contract: every name, path, binary and rule a picortex workspace host depends
 * on, spelled out once. The renderers (templates/), the runtime (agent-runtime/), the
 * components (components/), the doctor (scripts/doctor/) and the tests all import these;
 * none of them writes a host path or a name rule of its own.
 *
 * A leaf module: it imports nothing from the project (and nothing but types from Node),
 * so anything may depend on it, including the bundled doctor that runs on a host.
 *
 * The two root helpers written in shell (templates/host/picortex-release.sh and
 * picortex-chat-user.sh) cannot import it: the chat-user helper is rendered from it
 * (placeholders), and tests/deploy/release-privilege.test.ts checks the release
 * helper's defaults against it.
 */

// ---------------------------------------------------------------------------
// Name rules

/**
 * Linux user and group names picortex creates or accepts: lowercase, starting with a
 * letter, at most 31 characters, no dots (sudoers-safe). The unanchored source is for
 * patterns that embed a name (e.g. `user@host`).
 */
export const LINUX_NAME_SOURCE = "[a-z][a-z0-9_-]{0,30}";
export const LINUX_NAME_PATTERN = new RegExp(`^${LINUX_NAME_SOURCE}$`);

export function linuxNameProblem(name: string): string | null {
  if (!LINUX_NAME_PATTERN.test(name)) {
    return `"${name.slice(0, 40)}" is not a valid user/group name: use 1-31 characters, lowercase letters, digits, "_" or "-", starting with a letter`;
  }
  return null;
}

/** Chat ids: 2-24 characters, lowercase letters, digits and single hyphens, starting with a letter. */
export const CHAT_ID_MIN_LENGTH = 2;
export const CHAT_ID_MAX_LENGTH = 24;
const CHAT_ID_TAIL = `{${CHAT_ID_MIN_LENGTH - 1},${CHAT_ID_MAX_LENGTH - 1}}`;
export const CHAT_ID_PATTERN = new RegExp(`^[a-z](?:[a-z0-9]|-(?=[a-z0-9]))${CHAT_ID_TAIL}$`);
/** What sudoers may match for an id: a superset of CHAT_ID_PATTERN with no `.`, `/` or space. */
export const CHAT_ID_SUDOERS_REGEX = `[a-z][a-z0-9-]${CHAT_ID_TAIL}`;
/**
 * CHAT_ID_PATTERN for bash's `=~` (POSIX ERE, no lookahead), with the length checked
 * apart: the chat-user helper (templates/host/picortex-chat-user.sh) is rendered with it.
 */
export const CHAT_ID_ERE = "^[a-z]([a-z0-9]|-[a-z0-9])*$";
/** Every chat's Linux user is this prefix + its id; no other account may start with it. */
export const CHAT_USER_PREFIX = "pc-";

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

/** A release is named by its content hash: 12-64 lowercase hex characters (scripts/bundle.ts). */
export const RELEASE_HASH_SOURCE = "[a-f0-9]{12,64}";
export const RELEASE_HASH_PATTERN = new RegExp(`^${RELEASE_HASH_SOURCE}$`);

// ---------------------------------------------------------------------------
// Accounts and groups

/** The runtime service's system user (no login; its home is STATE_DIR). */
export const RUNTIME_USER = "picortex";
/** The deploy account's default name: the operator's SSH key, ops group, no general sudo. */
export const DEFAULT_ADMIN_USER = "pcadmin";
/** Primary group of every chat user; the run-as rules target its members only. */
export const CHAT_GROUP = "picortex-chats";
/** Members may manage chat users through the scoped drop-in: the runtime user and the admin. */
export const OPS_GROUP = "picortex-ops";

/**
 * Builds and checks a release's native modules in `picortex-release install`. Its own
 * account, running nothing else: root takes the staging tree back with `chown -R`, and
 * no process of another principal (the runtime, the agent) may own or race it. The
 * release helper's default (templates/host/picortex-release.sh) must equal this.
 */
export const BUILD_USER = "picortex-build";

/**
 * The portal's agent (its tmux server, the tmux clients the portal attaches, and the
 * `claude` inside) runs as this account: no sudo, not in the ops group, no access to the
 * runtime's state dir, token files or chat homes.
 */
export const AGENT_USER = "picortex-agent";
/** The agent's home (its Claude settings and workspace live here; 0700). */
export const AGENT_HOME = "/var/lib/picortex-agent";
/** The agent's tmux socket dir (RuntimeDirectory of the agent unit; 0700, the agent's). */
export const AGENT_RUNTIME_DIR = "/run/picortex-agent";
export const AGENT_TMUX_SOCKET = `${AGENT_RUNTIME_DIR}/tmux.sock`;
/** The tmux session the agent unit creates and the portal attaches to (portal.session). */
export const AGENT_SESSION = "picortex";

/**
 * Chat uids come from this range only, and each is used once. Above useradd's UID_MAX
 * (60000), so no other account is ever given one; below the subordinate-id ranges that
 * start at 100000; 65534 (nobody) is outside it.
 */
export const CHAT_UID_MIN = 70000;
export const CHAT_UID_MAX = 99999;

/** Login shells: service accounts get none; the admin and chat users get bash. */
export const NOLOGIN_SHELL = "/usr/sbin/nologin";
export const LOGIN_SHELL = "/bin/bash";

// ---------------------------------------------------------------------------
// Binaries (absolute: sudoers rules and argv name them exactly)

export const BIN = {
  useradd: "/usr/sbin/useradd",
  userdel: "/usr/sbin/userdel",
  chmod: "/usr/bin/chmod",
  sudo: "/usr/bin/sudo",
  pkill: "/usr/bin/pkill",
  tar: "/usr/bin/tar",
  getent: "/usr/bin/getent",
  id: "/usr/bin/id",
  node: "/usr/bin/node",
  nft: "/usr/sbin/nft",
} as const;
/** The portal agent's tmux (the sudoers rule names this path). */
export const TMUX_PATH = "/usr/bin/tmux";
/** The Claude Code CLI as production installs it (npm --global --prefix /usr/local). */
export const DEFAULT_CLAUDE_PATH = "/usr/local/bin/claude";

// ---------------------------------------------------------------------------
// Root helpers

/** The root helper that creates and deletes chat users (it builds every argv itself). */
export const CHAT_USER_HELPER_PATH = "/usr/local/sbin/picortex-chat-user";
/** Subcommands of the chat-user helper (the sudoers rule allows exactly these). */
export const CHAT_USER_HELPER_COMMANDS = ["create", "delete"] as const;
/** Its root-only state: the uid allocation record (never handed out twice). */
export const CHAT_USER_STATE_DIR = "/var/lib/picortex-chat-users";

/** The deploy helper (templates/host/picortex-release.sh), the admin's one sudo entry point. */
export const RELEASE_HELPER_PATH = "/usr/local/sbin/picortex-release";
export const RELEASE_VERBS = ["install", "activate", "rollback", "status", "uninstall"] as const;
/** Arguments the admin may pass to the release helper (the sudoers rule, anchored). */
export const RELEASE_ARGS_REGEX = `^(${RELEASE_VERBS.join("|")})( ${RELEASE_HASH_SOURCE})?$`;

// ---------------------------------------------------------------------------
// Paths

/** Releases: `releases/<hash>` and the `current` symlink, all root's. */
export const RELEASES_ROOT = "/opt/picortex";
export const CURRENT_RELEASE_LINK = `${RELEASES_ROOT}/current`;
/** What `current` points at: `releases/<hash>` (relative) or the absolute path. */
export const CURRENT_RELEASE_TARGET_PATTERN = new RegExp(`^(${RELEASES_ROOT}/)?releases/${RELEASE_HASH_SOURCE}$`);
/** The runtime's entry point in the active release. */
export const RELEASE_ENTRY = `${CURRENT_RELEASE_LINK}/picortex.mjs`;

/** Root-owned configuration. */
export const CONFIG_DIR = "/etc/picortex";
export const RUNTIME_CONFIG_PATH = `${CONFIG_DIR}/runtime.json`;
export const CREDENTIALS_DIR = `${CONFIG_DIR}/credentials`;
/** The real Anthropic key (root 0600); the runtime unit gets it through LoadCredential. */
export const ANTHROPIC_KEY_PATH = `${CREDENTIALS_DIR}/anthropic-api-key`;
/** The one-time tailnet join key, deleted right after `tailscale up`. */
export const TAILSCALE_AUTH_KEY_PATH = `${CREDENTIALS_DIR}/tailscale-auth-key`;
/**
 * The messaging bridges' secrets (issue 17 item 6): one root 0700 folder the deploy fills
 * (picortex-release, from the stack's secrets) and the runtime unit loads whole with
 * `LoadCredential=bridges:<dir>`, so each file reaches the runtime as
 * `$CREDENTIALS_DIRECTORY/bridges_<file>`; a bridge added later needs no unit change.
 */
export const BRIDGE_CREDENTIALS_DIR = `${CREDENTIALS_DIR}/bridges`;
export const BRIDGE_CREDENTIAL = "bridges";
export const BRIDGE_SECRET_FILES = { telegramBotToken: "telegram-bot-token", webhookSecret: "webhook-secret" } as const;
export const METADATA_GUARD_NFT_PATH = `${CONFIG_DIR}/metadata-guard.nft`;

/** Drop-in name: no dots and no trailing `~`, or `@includedir` silently skips it. */
export const SUDOERS_DROPIN_PATH = "/etc/sudoers.d/picortex";
export const SSHD_DROPIN_PATH = "/etc/ssh/sshd_config.d/10-picortex.conf";
export const TMPFILES_PATH = "/etc/tmpfiles.d/picortex.conf";
export const SYSTEMD_UNIT_DIR = "/etc/systemd/system";

/** The runtime's state (its StateDirectory, 0700): database, tokens, brain. */
export const STATE_DIR = "/var/lib/picortex";
/** Chat homes and other served data. */
export const SRV_DIR = "/srv/picortex";
/** Parent of every chat home (`<chatsRoot>/<id>`); root-owned 0711. */
export const DEFAULT_CHATS_ROOT = `${SRV_DIR}/chats`;
/** Where the data volume is mounted (SRV_DIR, STATE_DIR and the uid record are bind mounts from it). */
export const DATA_MOUNT = "/mnt/picortex-data";

/** The listen-address helper: writes the tailnet address for the runtime to bind. */
export const LISTEN_ADDRESS_SCRIPT_PATH = "/usr/local/lib/picortex/listen-address";
/** Its RuntimeDirectory under /run (holds listen.env). */
export const LISTEN_ENV_DIR = "picortex-listen";
export const LISTEN_ENV_PATH = `/run/${LISTEN_ENV_DIR}/listen.env`;

/** apt sources are staged here, outside /etc/apt, until their keys are verified. */
export const APT_STAGING_DIR = "/usr/local/share/picortex/apt";
export const NODESOURCE_KEYRING = "/usr/share/keyrings/picortex-nodesource.asc";
export const TAILSCALE_KEYRING = "/usr/share/keyrings/tailscale-archive-keyring.gpg";

/** The runtime's API port (loopback + tailnet address); the release helper's health check uses it too. */
export const DEFAULT_RUNTIME_PORT = 7420;

// ---------------------------------------------------------------------------
// systemd units

export const RUNTIME_UNIT = "picortex-runtime.service";
/** Where systemd puts the runtime unit's credentials (its $CREDENTIALS_DIRECTORY). */
export const RUNTIME_CREDENTIALS_DIR = `/run/credentials/${RUNTIME_UNIT}`;
/** A bridge secret as the runtime reads it. */
export function runtimeBridgeSecretPath(name: keyof typeof BRIDGE_SECRET_FILES): string {
  return `${RUNTIME_CREDENTIALS_DIR}/${BRIDGE_CREDENTIAL}_${BRIDGE_SECRET_FILES[name]}`;
}
export const LISTEN_ADDRESS_UNIT = "picortex-listen-address.service";
export const AGENT_UNIT = "picortex-agent.service";
export const METADATA_GUARD_UNIT = "picortex-metadata-guard.service";
/**
 * The runtime's listening sockets (API, then gateway), held by systemd (PID 1) from the
 * first activation on and across every restart of the runtime, on the dual-stack
 * wildcard: no other account can bind either port on any address
 * (templates/render-units.ts, agent-runtime/http/listen-fds.ts).
 */
export const RUNTIME_SOCKET_UNIT = "picortex-runtime.socket";

// ---------------------------------------------------------------------------
// Chat layout on the host

export function chatUser(chatId: string): string {
  return CHAT_USER_PREFIX + assertChatId(chatId);
}

export function chatHome(chatId: string, chatsRoot = DEFAULT_CHATS_ROOT): string {
  return `${chatsRoot}/${assertChatId(chatId)}`;
}

/** The chat's fixed working directory: transcripts are keyed by cwd, so it never moves. */
export function chatWorkspace(chatId: string, chatsRoot = DEFAULT_CHATS_ROOT): string {
  return `${chatHome(chatId, chatsRoot)}/workspace`;
}

/** The chat's private temp dir (TMPDIR of its turns), made 0700 by the helper. */
export function chatTmpDir(chatId: string, chatsRoot = DEFAULT_CHATS_ROOT): string {
  return `${chatHome(chatId, chatsRoot)}/tmp`;
}
