import { spawn } from "node:child_process";
import type { ChatHost } from "../host/chat-host.js";
import { createStreamJsonReader, type TurnResult } from "./stream-json.js";
import { terminateGroup } from "./terminate.js";
import { TurnError } from "../errors.js";
import type { ToolUse } from "../activity.js";

export interface TurnHooks {
  onSpawn?(pid: number): void;
  onInit?(): void;
  onText?(text: string): void;
  /** A tool call Claude made (engine: recorded as the turn's activity). */
  onToolUse?(use: ToolUse): void;
}

export interface ProcessTurnOptions {
  host: ChatHost;
  chatId: string;
  flags: string[];
  prompt: string;
  timeoutMs: number;
  graceMs: number;
}

export interface ProcessOutcome {
  result?: TurnResult;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  timedOut: boolean;
  reaped: boolean;
}

/**
 * One cold turn: spawn `claude -p` for this chat (argv only, detached into its own
 * process group), prompt on stdin then closed, stream-json parsed as it arrives, and a
 * wall-clock timeout that terminates the whole group.
 */
export function runColdTurn(o: ProcessTurnOptions, hooks: TurnHooks = {}): Promise<ProcessOutcome> {
  return new Promise((resolve, reject) => {
    const spec = o.host.spawnSpec(o.chatId);
    let child;
    try {
      child = spawn(spec.command, [...spec.args, ...o.flags], { cwd: spec.cwd, env: spec.env, detached: true, stdio: ["pipe", "pipe", "pipe"] });
    } catch (err) {
      reject(new TurnError("spawn_failed", `could not start ${spec.command}: ${(err as Error).message}`, { cause: err }));
      return;
    }
    let result: TurnResult | undefined;
    let stderr = "";
    let timedOut = false;
    let reaped = true;
    let terminating: Promise<void> | undefined;
    const reader = createStreamJsonReader({
      onInit: () => hooks.onInit?.(),
      onText: (t) => hooks.onText?.(t),
      onToolUse: (u) => hooks.onToolUse?.(u),
      onResult: (r) => {
        result = r;
      },
    });
    child.once("error", (err) => reject(new TurnError("spawn_failed", `could not start ${spec.command}: ${err.message}`, { cause: err })));
    if (child.pid) hooks.onSpawn?.(child.pid);
    child.stdout.on("data", (c: Buffer) => reader.feed(c));
    child.stderr.on("data", (c: Buffer) => {
      if (stderr.length < 16_384) stderr += c.toString();
    });
    const timer = setTimeout(() => {
      timedOut = true;
      terminating = terminateGroup(child, o.graceMs, () => o.host.reapAll(o.chatId, child.pid)).then((ok) => {
        reaped = ok;
        // Unreapable: report now instead of waiting for a close that may never come.
        if (!ok) resolve({ result, code: null, signal: null, stderr, timedOut, reaped });
      });
    }, o.timeoutMs);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      reader.end();
      void (terminating ?? Promise.resolve()).then(() => resolve({ result, code, signal, stderr, timedOut, reaped }));
    });
    child.stdin.on("error", () => {});
    child.stdin.end(o.prompt);
  });
}
