/**
 * How `picortex chat send` and `chat show` present turns (issue 16 items 2 and 3), kept out
 * of the command wiring so a reconnecting follower can feed one printer from several streams.
 *
 * - The reply is never lost: text streamed before the client subscribed is not replayed by
 *   the server, so when the first status the stream reports is already past `queued`, text
 *   is held back and the final event's `reply` is printed instead; when streaming did start
 *   at the beginning, only what the final reply adds beyond the streamed text is printed.
 * - Progress (queued / running, elapsed seconds) goes to stderr, only when stderr is a TTY
 *   and --json is off, like pulumi's status line; piped output carries the reply alone.
 * - Replies, messages, sender names and error messages are other people's text (a group
 *   member's, or the model's after reading a web page): printed through cli/terminal-text.ts,
 *   so escape sequences and direction characters never reach the terminal as such.
 */

import { activityParts, type TurnActivity } from "../turns/activity.js";
import { terminalJson, terminalLine, terminalText } from "./terminal-text.js";

export interface TurnView {
  id: string;
  status: string;
  reply?: string | null;
  error?: { code: string | null; message: string | null } | null;
  attempts?: number;
  /** What the turn did (files changed, commands run); see turns/activity.ts. */
  activity?: TurnActivity | null;
}

export interface TurnOutput {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Show a status line (stderr is a terminal and --json is off). */
  progress: boolean;
  json: boolean;
  now?: () => number;
}

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export class TurnPrinter {
  private streamed = "";
  /** Streaming from the turn's very first text: false once a stream started mid-turn. */
  private complete: boolean | undefined;
  private status = "queued";
  private attempt: number | undefined;
  private frame = 0;
  private lineShown = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly started: number;
  private final: TurnView | undefined;

  constructor(private readonly out: TurnOutput) {
    this.started = (out.now ?? Date.now)();
    if (out.progress && !out.json) {
      this.timer = setInterval(() => this.draw(), 120);
      this.timer.unref?.();
    }
  }

  /** Feeds one SSE event; returns the finished turn on the final `turn` event. */
  handle(event: string, data: any): TurnView | undefined {
    if (event === "status") {
      // The first status of a stream tells whether earlier text may have gone by unseen.
      if (this.complete === undefined) this.complete = data.status === "queued" && this.streamed === "";
      else if (data.status === "queued") this.complete = this.complete && this.streamed === "";
      this.status = data.status;
      if (typeof data.attempt === "number") this.attempt = data.attempt;
      this.draw();
      return undefined;
    }
    if (event === "text") {
      if (this.complete === undefined) this.complete = false;
      if (this.complete && !this.out.json) {
        this.clearLine();
        this.out.stdout(terminalText(String(data.text ?? "")));
      }
      this.streamed += data.text;
      this.status = "running";
      return undefined;
    }
    if (event === "turn") {
      this.final = data as TurnView;
      this.finish();
      return this.final;
    }
    return undefined;
  }

  private finish(): void {
    this.stop();
    const t = this.final!;
    if (this.out.json) return this.out.stdout(terminalJson(t) + "\n");
    const reply = t.reply ?? "";
    if (t.status === "done") {
      const shown = this.complete ? this.streamed : "";
      if (reply.startsWith(shown)) this.out.stdout(terminalText(reply.slice(shown.length)));
      else if (shown === "") this.out.stdout(terminalText(reply));
      // else: the streamed text already is the reply as the runtime sent it.
      if (reply === "" && shown === "") this.out.stderr("picortex chat: the turn finished with an empty reply\n");
      else this.out.stdout("\n");
    } else {
      if (this.complete && this.streamed !== "") this.out.stdout("\n");
      this.out.stderr(`picortex chat: turn ${terminalLine(String(t.status))}: ${terminalLine(t.error?.message ?? "no reply")}\n`);
    }
  }

  /** Stops the status line (also on errors and Ctrl-C). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clearLine();
  }

  private draw(): void {
    if (!this.out.progress || this.out.json || this.final) return;
    if (this.complete && this.streamed !== "") return; // the reply itself is the progress now
    const secs = Math.floor(((this.out.now ?? Date.now)() - this.started) / 1000);
    const what = this.status === "queued" ? "queued, waiting for the chat's earlier turns" : this.status === "running" ? `running${this.attempt && this.attempt > 1 ? ` (attempt ${this.attempt})` : ""}` : this.status;
    this.out.stderr(`\r\x1b[2K${FRAMES[this.frame++ % FRAMES.length]} ${what} ${secs}s`);
    this.lineShown = true;
  }

  private clearLine(): void {
    if (this.lineShown) this.out.stderr("\r\x1b[2K");
    this.lineShown = false;
  }
}

export interface MessageView {
  turnId: string | null;
  role: "user" | "assistant";
  sender: string | null;
  text: string;
}

/**
 * `chat show` lines: each message, a failed or interrupted turn said as such, and what a
 * turn did (files changed, commands run: one clean line) after its answer or its failure.
 */
export function formatChatHistory(messages: MessageView[], turns: TurnView[]): string[] {
  const byId = new Map(turns.map((t) => [t.id, t]));
  const lines: string[] = [];
  const answered = new Set(messages.filter((m) => m.role === "assistant").map((m) => m.turnId));
  const did = (t: TurnView) => {
    const parts = activityParts(t.activity);
    if (parts.length) lines.push(`  · ${parts.join(", ")}`);
  };
  for (const msg of messages) {
    lines.push(`${msg.role === "user" ? `> ${terminalLine(msg.sender ?? "you")}` : "< claude"}: ${terminalText(msg.text)}`);
    const t = msg.turnId ? byId.get(msg.turnId) : undefined;
    if (!t) continue;
    if (msg.role === "assistant") {
      did(t);
      continue;
    }
    if (answered.has(t.id)) continue;
    if (t.status === "failed" || t.status === "interrupted") {
      lines.push(`  ✗ turn ${t.status}: ${terminalLine(t.error?.message ?? "no reply")}`);
      did(t);
    } else if (t.status === "queued" || t.status === "running") lines.push(`  … turn ${t.status}`);
  }
  return lines;
}

/**
 * What the runtime says stands in the way of this chat's turns (e.g. no Anthropic key is
 * configured), from the chat view's `warnings` (strings, or `{message}` objects).
 * `chat create` prints them so a chat that cannot answer is never created silently.
 */
export function chatWarnings(chat: unknown): string[] {
  const w = (chat as { warnings?: unknown } | null)?.warnings;
  if (!Array.isArray(w)) return [];
  return w
    .map((x) => (typeof x === "string" ? x : typeof (x as { message?: unknown })?.message === "string" ? (x as { message: string }).message : undefined))
    .filter((x): x is string => typeof x === "string" && x.length > 0)
    .map(terminalLine);
}
