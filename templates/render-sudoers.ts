/**
 * The sudoers drop-in: the ONLY privileges the runtime user and the deploy admin get.
 *
 * Every argument list is an anchored POSIX ERE (sudo >= 1.9.10: `^…$` matches the whole
 * argument string joined by single spaces). The patterns are built from the constants
 * in agent-runtime/host/contract.ts, the same ones the runtime's argv builders use,
 * so rules and callers cannot drift. tests/infra/sudoers-escalation.test.ts installs
 * this file on a real machine and proves both the allowed argv and the refusals.
 */
import {
  AGENT_RUNTIME_DIR,
  AGENT_USER,
  BIN,
  CHAT_ID_SUDOERS_REGEX,
  CHAT_USER_HELPER_COMMANDS,
  CHAT_USER_HELPER_PATH,
  RELEASE_ARGS_REGEX,
  RELEASE_HELPER_PATH,
  TMUX_PATH,
  linuxNameProblem,
} from "../agent-runtime/host/contract.js";
import { safePathProblem } from "./validators.js";

export interface SudoersVars {
  runtimeUser: string;
  adminUser: string;
  opsGroup: string;
  chatGroup: string;
  chatsRoot: string;
  claudePath: string;
  /** Defaults to RELEASE_HELPER_PATH; tests point it at a stand-in. */
  releaseHelperPath?: string;
  /** Defaults to CHAT_USER_HELPER_PATH; tests point it at a scratch copy. */
  chatUserHelperPath?: string;
  /** The portal agent's account (AGENT_USER) and its tmux socket dir (AGENT_RUNTIME_DIR). */
  agentUser?: string;
  agentRuntimeDir?: string;
}

export function renderSudoers(vars: SudoersVars): string {
  const agentUser = vars.agentUser ?? AGENT_USER;
  const agentRuntimeDir = vars.agentRuntimeDir ?? AGENT_RUNTIME_DIR;
  for (const name of [vars.runtimeUser, vars.adminUser, vars.opsGroup, vars.chatGroup, agentUser]) {
    const problem = linuxNameProblem(name);
    if (problem) throw new Error(`sudoers: ${problem}`);
  }
  const releaseHelperPath = vars.releaseHelperPath ?? RELEASE_HELPER_PATH;
  const chatUserHelperPath = vars.chatUserHelperPath ?? CHAT_USER_HELPER_PATH;
  for (const path of [vars.chatsRoot, vars.claudePath, releaseHelperPath, chatUserHelperPath, agentRuntimeDir]) {
    // Safe paths contain no regex metacharacters, so they can be embedded verbatim.
    const problem = safePathProblem(path);
    if (problem) throw new Error(`sudoers: ${problem}`);
  }
  const chatUserArgs = `^(${CHAT_USER_HELPER_COMMANDS.join("|")}) ${CHAT_ID_SUDOERS_REGEX}$`;

  const lines = [
    "# picortex: the only privileges the agent runtime and the deploy admin have.",
    "# Rendered by templates/render-sudoers.ts from agent-runtime/host/: change the",
    "# renderer, never this file on the host. Checked with `visudo -cf`, installed",
    "# root:root 0440 under a name without dots (or @includedir skips it).",
    "#",
    "# Arguments are anchored regular expressions (sudo >= 1.9.10): `^...$` must match the",
    "# whole argument string. Sudo joins the arguments with spaces before matching, so a",
    "# regex cannot tell one argument from several: root commands are therefore wrappers",
    "# that check their own argv and build every argv they run (no useradd, userdel or",
    "# chmod is reachable directly).",
    "",
    "# Create or delete a chat user: the helper takes the chat id alone, allocates a uid",
    "# that is never reused, and on delete removes everything the uid owned.",
    `Cmnd_Alias PICORTEX_CHAT_USER = ${chatUserHelperPath} ${chatUserArgs}`,
    "# Run as a chat user (never root): a turn (claude), reaping a timed-out turn's processes",
    "# (pkill), unpacking settings into / archiving the home (tar). As the chat user these",
    "# can only touch what that user owns.",
    `Cmnd_Alias PICORTEX_CLAUDE = ${vars.claudePath}`,
    `Cmnd_Alias PICORTEX_CHAT_TOOLS = ${BIN.pkill}, ${BIN.tar}`,
    "# The portal's tmux as the agent, its socket only. NOEXEC: the agent owns the server",
    "# and `detach-client -E` would make our client exec outside its sandbox.",
    `Cmnd_Alias PICORTEX_AGENT_TMUX = ${TMUX_PATH} ^-S ${agentRuntimeDir}/tmux[.]sock( .*)?$`,
    "# The deploy helper, with the host contract's arguments only.",
    `Cmnd_Alias PICORTEX_RELEASE = ${releaseHelperPath} ${RELEASE_ARGS_REGEX}`,
    "",
    `%${vars.opsGroup} ALL=(root) NOPASSWD: PICORTEX_CHAT_USER`,
    "# Run-as targets are members of the chat group only (pc-<id> users have it as their",
    "# primary group); no `-g` other than the target's own groups. CWD=* lets the turn",
    "# runner start claude in the chat's fixed workspace (`sudo -D`, runTurnPrefix): the",
    "# runtime cannot enter the 0700 home itself, and --resume is keyed by the cwd.",
    `${vars.runtimeUser} ALL=(%${vars.chatGroup}) CWD=* NOPASSWD: PICORTEX_CLAUDE`,
    `${vars.runtimeUser} ALL=(%${vars.chatGroup}) NOPASSWD: PICORTEX_CHAT_TOOLS`,
    `${vars.runtimeUser} ALL=(${agentUser}) NOPASSWD:NOEXEC: PICORTEX_AGENT_TMUX`,
    `${vars.adminUser} ALL=(root) NOPASSWD: PICORTEX_RELEASE`,
    "",
  ];
  // The reasons stay in this renderer; the host gets the header that points here and the
  // rules (user_data is limited to 32 KiB). `#include`-style directives have no space.
  const header = lines.findIndex((l) => !l.startsWith("#"));
  return lines.filter((l, i) => i < header || !(l === "#" || l.startsWith("# "))).join("\n");
}
