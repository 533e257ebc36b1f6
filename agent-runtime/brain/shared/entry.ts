import { z } from "zod";
import { HLC_PATTERN } from "./hlc.js";

/** What an entry records: `experiment` is the compounding unit (tried X, saw Y). */
export const ENTRY_KINDS = ["experiment", "decision", "insight", "note"] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

/** `superseded` entries are hidden from recall unless asked for; `deleted` is a tombstone. */
export const ENTRY_STATUSES = ["active", "superseded", "deleted"] as const;
export type EntryStatus = (typeof ENTRY_STATUSES)[number];

/** Ids are exact keys in every path (no prefix matching): a short, safe alphabet. */
export const idSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, "must be 1-128 characters of letters, digits, '.', '_', ':', '/' or '-', starting with a letter or digit");

const textField = (max: number) => z.string().max(max);

/**
 * One entry as it is stored and as it travels over the wire. `version` is the hybrid
 * logical clock of the last write (it embeds the writer's node id, so two versions are
 * never equal unless they are the same write); newest version wins on every replica.
 */
export const wireEntrySchema = z
  .object({
    entryId: idSchema,
    workspaceId: idSchema,
    projectId: idSchema,
    agent: textField(128),
    kind: z.enum(ENTRY_KINDS),
    title: textField(500),
    summary: textField(20_000),
    conclusion: textField(20_000),
    tags: z.array(z.string().min(1).max(64)).max(64),
    refs: z.array(z.string().min(1).max(256)).max(64),
    confidence: z.number().min(0).max(1).nullable(),
    status: z.enum(ENTRY_STATUSES),
    supersededBy: idSchema.nullable(),
    createdAt: z.number().int().nonnegative(),
    updatedAt: z.number().int().nonnegative(),
    version: z.string().regex(HLC_PATTERN, "must be a hybrid logical clock value"),
  })
  .strict();

export type BrainEntry = z.infer<typeof wireEntrySchema>;

/** What a caller supplies to record an entry; everything else is assigned by the service. */
export const recordInputSchema = z
  .object({
    title: z.string().trim().min(1, "title is required").max(500),
    summary: textField(20_000).default(""),
    conclusion: textField(20_000).default(""),
    kind: z.enum(ENTRY_KINDS).default("note"),
    agent: textField(128).optional(),
    tags: z.array(z.string().trim().min(1).max(64)).max(64).default([]),
    refs: z.array(z.string().trim().min(1).max(256)).max(64).default([]),
    confidence: z.number().min(0).max(1).nullable().default(null),
  })
  .strict();

export type RecordInput = z.input<typeof recordInputSchema>;

/** Splits a comma list from the CLI (`--tags a,b`) into trimmed, non-empty items. */
export function splitList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
