import { randomBytes } from "node:crypto";
import { z } from "zod";
import { BrainError } from "./errors.js";
import { recordInputSchema, type BrainEntry, type EntryKind, type RecordInput } from "./entry.js";
import { versionCeiling, type HybridLogicalClock } from "./hlc.js";
import type { BrainRepository, RecallResult } from "./repository.js";

/** Who is writing and where: resolved once at the entry point (see config/brain.ts). */
export interface BrainIdentity {
  workspaceId: string;
  projectId: string;
  agent: string;
  /**
   * The credential fixes the agent name (a host chat's brain token records as `chat-<id>`):
   * a record naming another agent is refused, so one chat cannot write as another.
   */
  agentFixed?: boolean;
  /** Called before every write that adds an entry (a credential's record quota); throws to refuse it. */
  beforeRecord?: () => void;
}

export interface RecallOptions {
  /** Widen from this repo (project) to the whole workspace (org). */
  org?: boolean;
  agent?: string;
  kind?: EntryKind;
  tags?: string[];
  since?: number;
  /** Include superseded entries. */
  all?: boolean;
  limit?: number;
}

/** Ids sort roughly by creation time and are unique without coordination. */
export function newEntryId(now: number): string {
  return `${now.toString(36)}-${randomBytes(6).toString("hex")}`;
}

const limitSchema = z.number().int().min(1).max(1000);

/** record / recall / list / show / supersede / delete over a repository, stamping every write with the HLC. */
export class BrainService {
  constructor(
    readonly repo: BrainRepository,
    readonly clock: HybridLogicalClock,
    readonly identity: BrainIdentity,
    private readonly now: () => number = Date.now,
  ) {
    // A restarted process must never issue a version older than one it already stored.
    // Versions beyond the skew bound (a clock that once ran ahead) are not followed; sync re-stamps them.
    const max = repo.maxVersion(versionCeiling(now()));
    if (max) clock.observe(max);
  }

  private build(input: RecordInput): BrainEntry {
    const parsed = recordInputSchema.safeParse(input);
    if (!parsed.success) {
      const first = parsed.error.issues[0]!;
      throw new BrainError("invalid_input", `Invalid entry: ${first.path.join(".") || "(root)"}: ${first.message}`);
    }
    const v = parsed.data;
    if (this.identity.agentFixed && v.agent !== undefined && v.agent !== this.identity.agent) {
      throw new BrainError("invalid_input", `This brain credential records as ${JSON.stringify(this.identity.agent)}; leave "agent" out (it cannot name ${JSON.stringify(v.agent)}).`);
    }
    this.identity.beforeRecord?.();
    const now = this.now();
    return {
      entryId: newEntryId(now),
      workspaceId: this.identity.workspaceId,
      projectId: this.identity.projectId,
      agent: v.agent ?? this.identity.agent,
      kind: v.kind,
      title: v.title,
      summary: v.summary,
      conclusion: v.conclusion,
      tags: [...new Set(v.tags)],
      refs: [...new Set(v.refs)],
      confidence: v.confidence,
      status: "active",
      supersededBy: null,
      createdAt: now,
      updatedAt: now,
      version: this.clock.tick(),
    };
  }

  record(input: RecordInput): BrainEntry {
    const entry = this.build(input);
    this.repo.saveLocal(entry);
    return entry;
  }

  show(entryId: string): BrainEntry {
    const entry = this.repo.get(this.identity.workspaceId, entryId);
    if (!entry) throw new BrainError("not_found", `No brain entry with id ${entryId} in workspace ${this.identity.workspaceId}.`);
    return entry;
  }

  recall(query: string, options: RecallOptions = {}): RecallResult {
    return this.repo.recall(query, this.filters(options, 10));
  }

  list(options: RecallOptions = {}): BrainEntry[] {
    return this.repo.list(this.filters(options, 20));
  }

  /** Marks `entryId` superseded by an existing entry, or by a new one recorded in the same transaction. */
  supersede(entryId: string, by: { entryId: string } | { record: RecordInput }): { superseded: BrainEntry; replacement: BrainEntry } {
    const old = this.show(entryId);
    if (old.status === "deleted") throw new BrainError("conflict", `Entry ${entryId} is deleted and cannot be superseded.`);
    const replacement = "entryId" in by ? this.show(by.entryId) : this.build(by.record);
    if (replacement.entryId === old.entryId) throw new BrainError("invalid_input", "An entry cannot supersede itself.");
    const superseded: BrainEntry = {
      ...old,
      status: "superseded",
      supersededBy: replacement.entryId,
      updatedAt: this.now(),
      version: this.clock.tick(),
    };
    this.repo.saveLocalAll("record" in by ? [replacement, superseded] : [superseded]);
    return { superseded, replacement };
  }

  /** Deletes as a tombstone (content cleared) so the delete replicates instead of the entry reappearing. */
  remove(entryId: string): BrainEntry {
    const old = this.show(entryId);
    const tombstone: BrainEntry = {
      ...old,
      title: "",
      summary: "",
      conclusion: "",
      tags: [],
      refs: [],
      confidence: null,
      status: "deleted",
      updatedAt: this.now(),
      version: this.clock.tick(),
    };
    this.repo.saveLocal(tombstone);
    return tombstone;
  }

  /** Applies an edit to an existing entry (used by tests and future `edit`); newest version wins on sync. */
  update(entryId: string, patch: Partial<Pick<BrainEntry, "title" | "summary" | "conclusion" | "tags" | "refs" | "confidence" | "kind">>): BrainEntry {
    const old = this.show(entryId);
    if (old.status === "deleted") throw new BrainError("conflict", `Entry ${entryId} is deleted.`);
    const next: BrainEntry = { ...old, ...patch, updatedAt: this.now(), version: this.clock.tick() };
    this.repo.saveLocal(next);
    return next;
  }

  private filters(o: RecallOptions, defaultLimit: number) {
    const limit = o.limit ?? defaultLimit;
    if (!limitSchema.safeParse(limit).success) throw new BrainError("invalid_input", `--limit must be an integer from 1 to 1000 (got ${limit}).`);
    return {
      workspaceId: this.identity.workspaceId,
      projectId: o.org ? undefined : this.identity.projectId,
      agent: o.agent,
      kind: o.kind,
      tags: o.tags,
      since: o.since,
      includeSuperseded: o.all,
      limit,
    };
  }
}
