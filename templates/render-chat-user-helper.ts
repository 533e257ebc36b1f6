/**
 * The root helper that creates and deletes chat users (templates/host/picortex-chat-user.sh),
 * with the host facts filled in from agent-runtime/host/ so the helper, the sudoers rule
 * and the runtime's argv cannot drift. Pure: the template text is passed in.
 */
import { readFileSync } from "node:fs";
import { CHAT_ID_ERE, CHAT_ID_MAX_LENGTH, CHAT_ID_MIN_LENGTH, CHAT_USER_PREFIX, CHAT_UID_MAX, CHAT_UID_MIN, CHAT_USER_STATE_DIR, linuxNameProblem } from "../agent-runtime/host/contract.js";
import { safePathProblem } from "./validators.js";
import { stripShellComments } from "./shell-script.js";

export interface ChatUserHelperVars {
  chatsRoot: string;
  chatGroup: string;
  /** Defaults to CHAT_USER_STATE_DIR; tests point it at a scratch dir. */
  stateDir?: string;
  /** Defaults to CHAT_UID_MIN/MAX; tests use a range of their own. */
  uidMin?: number;
  uidMax?: number;
}

export function loadChatUserHelperTemplate(): string {
  return readFileSync(new URL("./host/picortex-chat-user.sh", import.meta.url), "utf8");
}

export function renderChatUserHelper(vars: ChatUserHelperVars, template: string = loadChatUserHelperTemplate()): string {
  const stateDir = vars.stateDir ?? CHAT_USER_STATE_DIR;
  for (const path of [vars.chatsRoot, stateDir]) {
    const problem = safePathProblem(path);
    if (problem) throw new Error(`chat user helper: ${problem}`);
  }
  const groupProblem = linuxNameProblem(vars.chatGroup);
  if (groupProblem) throw new Error(`chat user helper: ${groupProblem}`);
  const uidMin = vars.uidMin ?? CHAT_UID_MIN;
  const uidMax = vars.uidMax ?? CHAT_UID_MAX;
  if (!Number.isInteger(uidMin) || !Number.isInteger(uidMax) || uidMin < 1000 || uidMax < uidMin || uidMax > 2 ** 31 - 2) {
    throw new Error(`chat user helper: invalid uid range ${uidMin}-${uidMax} (integers, 1000 <= min <= max)`);
  }
  const values: Record<string, string> = {
    CHATS_ROOT: vars.chatsRoot,
    CHAT_GROUP: vars.chatGroup,
    CHAT_USER_PREFIX,
    CHAT_ID_ERE,
    CHAT_ID_MIN: String(CHAT_ID_MIN_LENGTH),
    CHAT_ID_MAX: String(CHAT_ID_MAX_LENGTH),
    CHAT_UID_MIN: String(uidMin),
    CHAT_UID_MAX: String(uidMax),
    STATE_DIR: stateDir,
  };
  const out = template.replace(/@([A-Z_]+)@/g, (whole, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`chat user helper template: unknown placeholder ${whole}`);
    return v;
  });
  return stripShellComments(out, "templates/host/picortex-chat-user.sh");
}
