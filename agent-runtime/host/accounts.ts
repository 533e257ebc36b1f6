/**
 * Host facts about the service accounts and root helpers besides the chat users
 * (those are in chat-identity.ts). A leaf module: the renderers under templates/ and
 * the runtime import these, so names, paths and ranges are spelled out once.
 */

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
export const AGENT_UNIT = "picortex-agent.service";
/** The tmux session the agent unit creates and the portal attaches to (portal.session). */
export const AGENT_SESSION = "picortex";
export const TMUX_PATH = "/usr/bin/tmux";

/** The root helper that creates and deletes chat users (it builds every argv itself). */
export const CHAT_USER_HELPER_PATH = "/usr/local/sbin/picortex-chat-user";
/** Its root-only state: the uid allocation record (never handed out twice). */
export const CHAT_USER_STATE_DIR = "/var/lib/picortex-chat-users";
/**
 * Chat uids come from this range only, and each is used once. Above useradd's UID_MAX
 * (60000), so no other account is ever given one; below the subordinate-id ranges that
 * start at 100000; 65534 (nobody) is outside it.
 */
export const CHAT_UID_MIN = 70000;
export const CHAT_UID_MAX = 99999;
