/**
 * systemd-tmpfiles entries: directories and the empty credential file that must exist
 * with exact owners and modes on every boot (idempotent, unlike one-off mkdir).
 */
import { dirname } from "node:path/posix";
import { ANTHROPIC_KEY_PATH, BRIDGE_CREDENTIALS_DIR, CHAT_USER_STATE_DIR } from "../agent-runtime/host/contract.js";
import { AGENT_BRAIN_HEADERS_PATH, AGENT_TOKEN_PATH } from "../agent-runtime/host/agent-key.js";

export function renderTmpfiles(vars: { chatsRoot: string; adminUser: string }): string {
  return [
    "# picortex: rendered by templates/render-tmpfiles.ts. Type Path Mode User Group Age",
    `d ${dirname(vars.chatsRoot)} 0755 root root -`,
    "# Chat homes live here; 0711 so chat users cannot list each other.",
    `d ${vars.chatsRoot} 0711 root root -`,
    "# The chat-user helper's uid record (root only; a chat uid is never handed out twice).",
    `d ${CHAT_USER_STATE_DIR} 0700 root root -`,
    `d ${dirname(ANTHROPIC_KEY_PATH)} 0700 root root -`,
    "# Empty until the operator installs the key; the runtime reports a missing key clearly.",
    `f ${ANTHROPIC_KEY_PATH} 0600 root root -`,
    `f ${AGENT_TOKEN_PATH} 0600 root root -`,
    `d ${BRIDGE_CREDENTIALS_DIR} 0700 root root -`,
    `f ${AGENT_BRAIN_HEADERS_PATH} 0600 root root -`,
    "# Where deploys upload release tarballs for picortex-release install.",
    `d /home/${vars.adminUser}/incoming 0700 ${vars.adminUser} ${vars.adminUser} -`,
    "",
  ].join("\n");
}
