import { PicortexError } from "../errors.js";

/**
 * One error type for everything that can go wrong with a chat or a turn. `code` is
 * stable (API clients and tests match on it); the message says what to do.
 */
export type TurnErrorCode =
  | "timeout"
  | "claude_failed"
  | "claude_exited"
  | "spawn_failed"
  | "budget_exceeded"
  | "interrupted"
  | "chat_not_ready"
  | "provision_failed"
  | "unreapable"
  | "not_configured";

export class TurnError extends PicortexError {
  declare readonly code: TurnErrorCode;

  constructor(code: TurnErrorCode, message: string, options?: { cause?: unknown }) {
    super("failed", code, message, options);
  }
}
