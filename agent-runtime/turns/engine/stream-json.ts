/**
 * Reads the CLI's `--output-format stream-json --verbose` output: one JSON object per
 * line. Only the parts the runner needs are typed; unknown lines are ignored.
 */
import type { ToolUse } from "../activity.js";

export interface TurnResult {
  isError: boolean;
  subtype: string;
  text: string;
  sessionId?: string;
  usage: { input: number; output: number };
  /** Ids of the tool uses the CLI refused (`permission_denials`): they did nothing. */
  deniedToolUseIds: string[];
}

export interface StreamJsonHandlers {
  onInit?(sessionId: string | undefined): void;
  onText?(text: string): void;
  /** Each `tool_use` block of an assistant message (the tool, its input; not yet its outcome). */
  onToolUse?(use: ToolUse): void;
  onResult?(result: TurnResult): void;
}

function assistantText(message: unknown): string {
  const content = (message as { content?: unknown })?.content;
  if (!Array.isArray(content)) return "";
  return content
    .filter((b): b is { type: string; text: string } => !!b && (b as { type?: string }).type === "text")
    .map((b) => String(b.text))
    .join("");
}

/** The `tool_use` blocks of an assistant message. */
function toolUses(message: unknown): ToolUse[] {
  const content = (message as { content?: unknown })?.content;
  if (!Array.isArray(content)) return [];
  const uses: ToolUse[] = [];
  for (const b of content as unknown[]) {
    const block = b as { type?: unknown; id?: unknown; name?: unknown; input?: unknown } | null;
    if (block?.type !== "tool_use" || typeof block.name !== "string") continue;
    uses.push({ id: typeof block.id === "string" ? block.id : undefined, name: block.name, input: block.input });
  }
  return uses;
}

function deniedIds(denials: unknown): string[] {
  if (!Array.isArray(denials)) return [];
  return denials.map((d) => (d as { tool_use_id?: unknown } | null)?.tool_use_id).filter((id): id is string => typeof id === "string");
}

/** Splits a byte stream into lines and dispatches the events; returns the feed function. */
export function createStreamJsonReader(handlers: StreamJsonHandlers): { feed(chunk: Buffer | string): void; end(): void } {
  let buffered = "";
  const handleLine = (line: string) => {
    if (!line.trim()) return;
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // a stray non-JSON line (e.g. a warning) is not part of the protocol
    }
    if (msg.type === "system" && msg.subtype === "init") handlers.onInit?.(msg.session_id as string | undefined);
    else if (msg.type === "assistant") {
      const text = assistantText(msg.message);
      if (text) handlers.onText?.(text);
      if (handlers.onToolUse) for (const use of toolUses(msg.message)) handlers.onToolUse(use);
    } else if (msg.type === "result") {
      const usage = (msg.usage ?? {}) as Record<string, number>;
      handlers.onResult?.({
        isError: msg.is_error === true,
        subtype: String(msg.subtype ?? ""),
        text: typeof msg.result === "string" ? msg.result : "",
        sessionId: msg.session_id as string | undefined,
        usage: {
          input: (usage.input_tokens ?? 0) + (usage.cache_creation_input_tokens ?? 0) + (usage.cache_read_input_tokens ?? 0),
          output: usage.output_tokens ?? 0,
        },
        deniedToolUseIds: deniedIds(msg.permission_denials),
      });
    }
  };
  return {
    feed(chunk) {
      buffered += chunk.toString();
      let i: number;
      while ((i = buffered.indexOf("\n")) >= 0) {
        handleLine(buffered.slice(0, i));
        buffered = buffered.slice(i + 1);
      }
    },
    end() {
      if (buffered) handleLine(buffered);
      buffered = "";
    },
  };
}
