import { createHash } from "node:crypto";

/**
 * What a turn did: the files Claude Code's tools changed and the commands it ran, read from
 * the `tool_use` blocks of its stream-json output (issue 17: "end each turn with one compact
 * receipt: files touched, commands run…"). Pure: the engine feeds an `ActivityRecorder`, the
 * store keeps its `summary()` as JSON on the turn, and `parseActivity` reads it back.
 *
 * A turn is untrusted input (the model chooses paths and commands, and a prompt can steer it),
 * so everything here is bounded: at most ACTIVITY_LIMITS.files files and .commands commands
 * are kept, each value is cut to a fixed length, control characters (ANSI escapes, newlines,
 * bidi overrides) never survive, and the totals say how many there were in all.
 */

export interface TurnActivity {
  /** Files changed by Edit, MultiEdit, Write and NotebookEdit: distinct, first use first, at most `ACTIVITY_LIMITS.files`. */
  files: string[];
  /** How many distinct files were changed (may exceed `files.length`). */
  filesTotal: number;
  /** Bash commands, first line each, in order, at most `ACTIVITY_LIMITS.commands`. */
  commands: string[];
  /** How many Bash commands were run (may exceed `commands.length`). */
  commandsTotal: number;
}

/** One `tool_use` content block of an assistant message. */
export interface ToolUse {
  id?: string;
  name: string;
  input: unknown;
}

export const ACTIVITY_LIMITS = {
  /** Files kept on a turn. */
  files: 50,
  /** Commands kept on a turn. */
  commands: 50,
  /** Characters kept of a path. */
  fileChars: 512,
  /** Characters kept of a command's first line. */
  commandChars: 200,
  /**
   * Tool uses remembered while a turn runs (for dedup and for denials reported at its end);
   * past this the totals still count, without dedup.
   */
  tracked: 10_000,
} as const;

/** The tools that change a file, and the input field naming it. */
const FILE_TOOLS: Readonly<Record<string, string>> = { Edit: "file_path", MultiEdit: "file_path", Write: "file_path", NotebookEdit: "notebook_path" };
const COMMAND_TOOLS: ReadonlySet<string> = new Set(["Bash"]);

/** ANSI CSI and OSC sequences (colour, cursor moves, window titles, hyperlinks). */
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u009b[0-?]*[ -/]*[@-~]/g;
/** Control characters, zero-width and bidi controls, line and paragraph separators. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;
const LINE_BREAK = /\r\n|[\n\r\u000b\u000c\u0085\u2028\u2029]/;

/** A recorded value as data: escapes removed, tabs as spaces, any other control as U+FFFD. */
export function cleanValue(s: string): string {
  return s.replace(ANSI, "").replace(/\t/g, " ").replace(UNSAFE, "\ufffd");
}

/** At most `max` characters (code points, never half a surrogate pair), "…" marking a cut. */
export function cutTo(s: string, max: number): string {
  const chars = Array.from(s);
  return chars.length > max ? chars.slice(0, max - 1).join("") + "…" : s;
}

/** A Bash command as recorded: its first non-blank line, "…" when more follows, cut to the limit. */
export function commandLine(command: string): string {
  const lines = command.split(LINE_BREAK).map((l) => cleanValue(l).trim());
  const first = lines.findIndex((l) => l.length > 0);
  if (first < 0) return "";
  const more = lines.slice(first + 1).some((l) => l.length > 0);
  const line = more ? `${lines[first]} …` : lines[first]!;
  return cutTo(line, ACTIVITY_LIMITS.commandChars);
}

function filePath(path: string): string {
  return cutTo(cleanValue(path).trim(), ACTIVITY_LIMITS.fileChars);
}

/** `value` is what is kept (cut to the limit); `key` tells files apart by their whole path. */
type Entry = { kind: "file" | "command"; value: string; key: string; denied?: boolean };

function entryOf(use: ToolUse): Entry | undefined {
  const input = use.input && typeof use.input === "object" ? (use.input as Record<string, unknown>) : undefined;
  if (!input) return undefined;
  const field = Object.hasOwn(FILE_TOOLS, use.name) ? FILE_TOOLS[use.name]! : undefined;
  if (field) {
    const raw = input[field];
    const value = typeof raw === "string" ? filePath(raw) : "";
    // Two long paths that differ only past the cut are two files.
    return value ? { kind: "file", value, key: createHash("sha256").update(String(raw)).digest("base64") } : undefined;
  }
  if (COMMAND_TOOLS.has(use.name)) {
    const raw = input.command;
    const value = typeof raw === "string" ? commandLine(raw) : "";
    return value ? { kind: "command", value, key: "" } : undefined;
  }
  return undefined;
}

/** Collects one turn's tool uses as they stream in; bounded whatever the turn does. */
export class ActivityRecorder {
  private readonly uses = new Map<string, Entry>();
  private overflowFiles = 0;
  private overflowCommands = 0;
  private anonymous = 0;

  /** A `tool_use` block. The same block reported twice (same id) counts once. */
  add(use: ToolUse): void {
    const entry = entryOf(use);
    if (!entry) return;
    const id = typeof use.id === "string" && use.id ? `id:${use.id}` : `#${this.anonymous++}`;
    if (this.uses.has(id)) return;
    if (this.uses.size >= ACTIVITY_LIMITS.tracked) {
      if (entry.kind === "file") this.overflowFiles++;
      else this.overflowCommands++;
      return;
    }
    this.uses.set(id, entry);
  }

  /** Tool uses the CLI refused (the result's `permission_denials`): they did nothing. */
  deny(ids: Iterable<string>): void {
    for (const id of ids) {
      const e = this.uses.get(`id:${id}`);
      if (e) e.denied = true;
    }
  }

  /** The bounded summary to store; null when the turn changed no file and ran no command. */
  summary(): TurnActivity | null {
    const files = new Map<string, string>();
    const commands: string[] = [];
    let commandsTotal = this.overflowCommands;
    for (const e of this.uses.values()) {
      if (e.denied) continue;
      if (e.kind === "file") {
        if (!files.has(e.key)) files.set(e.key, e.value);
      } else {
        commandsTotal++;
        if (commands.length < ACTIVITY_LIMITS.commands) commands.push(e.value);
      }
    }
    const filesTotal = files.size + this.overflowFiles;
    if (filesTotal === 0 && commandsTotal === 0) return null;
    return { files: [...files.values()].slice(0, ACTIVITY_LIMITS.files), filesTotal, commands, commandsTotal };
  }
}

function count(v: unknown, atLeast: number): number | undefined {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= atLeast ? v : undefined;
}

function strings(v: unknown, max: number, chars: number): string[] | undefined {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) return undefined;
  return (v as string[]).slice(0, max).map((x) => cutTo(cleanValue(x), chars));
}

/**
 * A stored activity value (JSON text, or already parsed) read back. Anything damaged (not
 * JSON, wrong shape, negative or impossible counts) reads as null, "nothing recorded", never
 * an error; what it returns is bounded and clean even if the stored value was not.
 */
export function parseActivity(raw: unknown): TurnActivity | null {
  let v: unknown = raw;
  if (typeof raw === "string") {
    try {
      v = JSON.parse(raw);
    } catch {
      return null;
    }
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const files = strings(o.files, ACTIVITY_LIMITS.files, ACTIVITY_LIMITS.fileChars);
  const commands = strings(o.commands, ACTIVITY_LIMITS.commands, ACTIVITY_LIMITS.commandChars);
  if (!files || !commands) return null;
  const filesTotal = count(o.filesTotal, files.length);
  const commandsTotal = count(o.commandsTotal, commands.length);
  if (filesTotal === undefined || commandsTotal === undefined) return null;
  if (filesTotal === 0 && commandsTotal === 0) return null;
  return { files, filesTotal, commands, commandsTotal };
}

/** The value stored on a turn (null: nothing recorded). */
export function serializeActivity(a: TurnActivity | null | undefined): string | null {
  return a && (a.filesTotal > 0 || a.commandsTotal > 0) ? JSON.stringify(a) : null;
}

/** How many files a compact line names before "+N". */
const NAMED_FILES = 3;
const NAME_CHARS = 40;

/**
 * Short names for a few paths: relative to the directory they share ("src/a.ts", "b.md"),
 * a lone file by its base name; each one line of clean text, cut from the left when long.
 */
export function shortNames(paths: string[]): string[] {
  const parts = paths.map((p) => cleanValue(p).replace(/\/+$/, "").split("/"));
  let common = 0;
  if (parts.length > 0) {
    const dirs = parts.map((p) => p.slice(0, -1));
    const shortest = Math.min(...dirs.map((d) => d.length));
    while (common < shortest && dirs.every((d) => d[common] === dirs[0]![common])) common++;
  }
  return parts.map((p) => {
    const name = p.slice(Math.min(common, p.length - 1)).join("/") || "/";
    const chars = Array.from(name);
    return chars.length > NAME_CHARS ? "…" + chars.slice(-(NAME_CHARS - 1)).join("") : name;
  });
}

/**
 * The compact description of a turn's activity, e.g. ["2 files (src/a.ts, b.md)", "3 commands"];
 * parts that are zero are left out. Each part is one line (names are data, cleaned).
 */
export function activityParts(a: TurnActivity | null | undefined): string[] {
  const parts: string[] = [];
  const clean = parseActivity(a ?? null);
  if (!clean) return parts;
  if (clean.filesTotal > 0) {
    const named = shortNames(clean.files.slice(0, NAMED_FILES));
    const more = clean.filesTotal - named.length;
    const list = named.length ? ` (${named.join(", ")}${more > 0 ? `, +${more}` : ""})` : "";
    parts.push(`${clean.filesTotal.toLocaleString("en-US")} file${clean.filesTotal === 1 ? "" : "s"}${list}`);
  }
  if (clean.commandsTotal > 0) parts.push(`${clean.commandsTotal.toLocaleString("en-US")} command${clean.commandsTotal === 1 ? "" : "s"}`);
  return parts;
}
