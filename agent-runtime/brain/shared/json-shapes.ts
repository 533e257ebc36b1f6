import type { BrainEntry } from "./entry.js";
import type { RecallResult } from "./repository.js";

/**
 * The stable JSON shapes of `--json` output and MCP structured content. Agents parse
 * these; add fields, never rename or remove them.
 */
export function entryJson(e: BrainEntry) {
  return {
    id: e.entryId,
    workspaceId: e.workspaceId,
    projectId: e.projectId,
    agent: e.agent,
    kind: e.kind,
    title: e.title,
    summary: e.summary,
    conclusion: e.conclusion,
    tags: e.tags,
    refs: e.refs,
    confidence: e.confidence,
    status: e.status,
    supersededBy: e.supersededBy,
    createdAt: new Date(e.createdAt).toISOString(),
    updatedAt: new Date(e.updatedAt).toISOString(),
    version: e.version,
  };
}

export function recallJson(query: string, r: RecallResult) {
  return {
    query,
    matched: r.matched,
    ...(r.rankedWindow ? { rankedWindow: r.rankedWindow } : {}),
    ...(r.warning ? { warning: r.warning } : {}),
    results: r.hits.map((h) => ({ ...entryJson(h.entry), rank: h.rank })),
  };
}
