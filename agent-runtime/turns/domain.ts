/**
 * The turns module's domain objects. `store.ts` maps SQLite rows to these at its boundary,
 * so nothing above the store sees a column name or a 0/1 flag.
 */
import type { TurnActivity } from "./activity.js";

export type ProvisionStep = "queued" | "resume" | "create_user" | "install_cli" | "configure_api" | "complete";

/** One step of a chat's provisioning, as stored in its log and streamed to the creator. */
export interface ProvisionEvent {
  step: ProvisionStep;
  progress: number;
  message: string;
}

export type ChatStatus = "provisioning" | "ready" | "failed" | "deleted";
export type TurnStatus = "queued" | "running" | "done" | "failed" | "interrupted";

export interface Chat {
  id: string;
  status: ChatStatus;
  /** The chat's one Claude session (a uuid). */
  sessionId: string;
  /** A transcript exists (a turn reached Claude's init). */
  sessionStarted: boolean;
  /** sha256 of the per-chat gateway token. */
  tokenHash: string;
  budgetTokens: number | null;
  usedInputTokens: number;
  usedOutputTokens: number;
  provisionLog: ProvisionEvent[];
  provisionAttempts: number;
  /** Something the user should know about the chat (e.g. its transcript was damaged and replaced). */
  notice: string | null;
  error: string | null;
  archivePath: string | null;
  /** Epoch milliseconds. */
  createdAt: number;
  deletedAt: number | null;
}

export interface Turn {
  /** Global arrival order; a chat's order follows it. */
  seq: number;
  id: string;
  chatId: string;
  text: string;
  sender: string | null;
  status: TurnStatus;
  attempts: number;
  /** Queued again after a restart interrupted it (its prompt says so). */
  retryOfInterrupted: boolean;
  reply: string | null;
  errorCode: string | null;
  error: string | null;
  runner: string | null;
  pid: number | null;
  inputTokens: number | null;
  outputTokens: number | null;
  /** Files changed and commands run (bounded); null when nothing was recorded or the stored value is damaged. */
  activity: TurnActivity | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

export interface Message {
  id: number;
  chatId: string;
  turnId: string;
  role: "user" | "assistant";
  sender: string | null;
  text: string;
  createdAt: number;
}

export const FINISHED_TURN_STATUSES: ReadonlySet<TurnStatus> = new Set(["done", "failed", "interrupted"]);

/** Tokens the chat has used (input + output), as the budget counts them. */
export function usedTokens(chat: Pick<Chat, "usedInputTokens" | "usedOutputTokens">): number {
  return chat.usedInputTokens + chat.usedOutputTokens;
}

/**
 * The budget rule, in one place: a principal (a chat, the portal agent) with a budget may start
 * no more model work once its used tokens reach it. Returns the numbers when it is spent,
 * undefined while it is not (or there is no budget).
 */
export function overBudget(u: { used: number; budget: number | null }): { used: number; budget: number } | undefined {
  return u.budget !== null && u.used >= u.budget ? { used: u.used, budget: u.budget } : undefined;
}

/** `overBudget` for a chat. */
export function budgetSpent(chat: Pick<Chat, "budgetTokens" | "usedInputTokens" | "usedOutputTokens">): { used: number; budget: number } | undefined {
  return overBudget({ used: usedTokens(chat), budget: chat.budgetTokens });
}
