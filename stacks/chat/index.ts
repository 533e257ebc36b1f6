/** `pulumi up` entry of the per-chat stack: the program is stacks/chat/program.ts. */
import { chatStackProgram } from "./program.js";

const out = chatStackProgram();

export const workspaceStack = out.workspaceStack;
export const chatId = out.chatId;
export const linuxUser = out.linuxUser;
export const chatStatus = out.chatStatus;
