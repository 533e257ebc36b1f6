import type { BrainEntry } from "./entry.js";
import type { RecallResult } from "./repository.js";
import type { SyncStatus } from "../client/sync-client.js";

/** Human-readable renderings. JSON output never goes through here; its shapes are in cli.ts. */
const date = (ms: number) => new Date(ms).toISOString().replace("T", " ").slice(0, 16);

function wrap(text: string, indent: string, width = 96): string {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = "";
  for (const w of words) {
    if (line && line.length + w.length + 1 > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.map((l) => indent + l).join("\n");
}

/** One entry for recall: the conclusion first, because that is what a planner needs. */
export function formatHit(e: BrainEntry): string {
  const headline = wrap(e.conclusion || e.title, "  ").replace(/^ {2}/, "• ");
  const superseded = e.status === "superseded" ? `, superseded by ${e.supersededBy}` : "";
  const meta = `  ${e.title}  [${e.kind}${superseded}] ${e.agent} · ${date(e.updatedAt)} · ${e.entryId}`;
  const summary = e.summary ? wrap(e.summary, "    ") : "";
  const tags = e.tags.length ? `  tags: ${e.tags.join(", ")}` : "";
  return [headline, meta, summary, tags].filter(Boolean).join("\n");
}

export function formatRecall(query: string, result: RecallResult, scope: string): string {
  if (result.hits.length === 0) return `No brain entries${query ? ` for "${query}"` : ""} in ${scope}.${result.warning ? `\n${result.warning}` : ""}`;
  let note = result.matched === "any-term" ? " (no entry had every word; showing entries with any of them)" : "";
  if (result.rankedWindow) note += ` (a broad query: ranked the newest ${result.rankedWindow} matches; add words to narrow it)`;
  return [`${result.hits.length} from ${scope}${note}:`, ...result.hits.map((h) => formatHit(h.entry))].join("\n\n");
}

export function formatListLine(e: BrainEntry): string {
  return `${e.entryId}  ${date(e.updatedAt)}  ${e.kind.padEnd(10)} ${e.status === "superseded" ? "(superseded) " : ""}${e.title}`;
}

export function formatEntry(e: BrainEntry): string {
  const rows: Array<[string, string]> = [
    ["id", e.entryId],
    ["title", e.title],
    ["kind", e.kind],
    ["status", e.status + (e.supersededBy ? ` (by ${e.supersededBy})` : "")],
    ["conclusion", e.conclusion],
    ["summary", e.summary],
    ["agent", e.agent],
    ["project", e.projectId],
    ["workspace", e.workspaceId],
    ["tags", e.tags.join(", ")],
    ["refs", e.refs.join(", ")],
    ["confidence", e.confidence === null ? "" : String(e.confidence)],
    ["created", date(e.createdAt)],
    ["updated", date(e.updatedAt)],
    ["version", e.version],
  ];
  return rows
    .filter(([, v]) => v !== "")
    .map(([k, v]) => `${k.padEnd(11)} ${v}`)
    .join("\n");
}

export function formatStatus(s: SyncStatus & { dbPath: string; workspaceId: string; projectId: string; serverUrl: string | null; entries: number }): string {
  return [
    `database    ${s.dbPath}`,
    `workspace   ${s.workspaceId}`,
    `project     ${s.projectId}`,
    `entries     ${s.entries}`,
    `server      ${s.serverUrl ?? "(none configured: local only)"}`,
    `pending     ${s.pending} entr${s.pending === 1 ? "y" : "ies"} to push`,
    `last sync   ${s.lastSyncAt ? date(s.lastSyncAt) : "never"}`,
    `pull cursor ${s.cursor}`,
    ...(s.lastError ? [`last error  ${s.lastError}`] : []),
  ].join("\n");
}
