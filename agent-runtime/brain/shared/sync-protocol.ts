import { z } from "zod";
import { wireEntrySchema } from "./entry.js";

/** The wire contract of `POST /v1/brain/push` and `/v1/brain/pull`, shared by server and client. */
export const MAX_PUSH_ENTRIES = 200;
export const MAX_PULL_LIMIT = 500;
/** 200 entries of up to ~40 KB text each, with headroom; anything bigger is rejected with 413. */
export const PUSH_BODY_LIMIT = 10 * 1024 * 1024;
export const PULL_BODY_LIMIT = 4 * 1024;

export const pushRequestSchema = z
  .object({
    /** Same key = same batch: the server answers a repeat with its first answer and applies nothing twice. */
    idempotencyKey: z.string().regex(/^[A-Za-z0-9_-]{16,128}$/, "must be 16-128 URL-safe characters"),
    entries: z.array(wireEntrySchema).min(1).max(MAX_PUSH_ENTRIES),
  })
  .strict();
export type PushRequest = z.infer<typeof pushRequestSchema>;

export const pushResponseSchema = z.object({
  /** Entries whose version became the server's current one. */
  applied: z.number().int().nonnegative(),
  /** Entries the server already had at this or a newer version. */
  ignored: z.number().int().nonnegative(),
  /**
   * The ignored entries whose server version is strictly newer than the one pushed, with
   * that version and its sequence number, so the client never silently drops its edit
   * (absent from servers older than this field: the client then treats none as newer).
   */
  newer: z.array(z.object({ entryId: z.string(), version: z.string(), seq: z.number().int().nonnegative() })).max(MAX_PUSH_ENTRIES).optional(),
  /** The server's highest sequence after this push. */
  seq: z.number().int().nonnegative(),
  replayed: z.boolean(),
});
export type PushResponse = z.infer<typeof pushResponseSchema>;

export const pullRequestSchema = z
  .object({
    /** The last sequence number this client applied (0 for everything). */
    cursor: z.number().int().nonnegative(),
    limit: z.number().int().min(1).max(MAX_PULL_LIMIT).default(MAX_PULL_LIMIT),
  })
  .strict();
export type PullRequest = z.input<typeof pullRequestSchema>;

export const pullResponseSchema = z.object({
  entries: z.array(wireEntrySchema),
  /** Sequence of the last entry in this page (or the request's cursor when empty). */
  cursor: z.number().int().nonnegative(),
  hasMore: z.boolean(),
  /**
   * The server's highest sequence. A client whose cursor is above it is talking to a
   * server that lost data (restored from an older backup, or replaced): it starts over
   * and pushes everything it has, so the server is rebuilt from its clients.
   */
  head: z.number().int().nonnegative(),
  /** Random per server database; a change means the cursor belongs to another server (same recovery). */
  serverId: z.string().min(1).max(64),
});
export type PullResponse = z.infer<typeof pullResponseSchema>;

/** How a client reaches a sync server: HTTP in production, in-process in property tests. */
export interface SyncTransport {
  push(request: PushRequest): Promise<PushResponse>;
  pull(request: PullRequest): Promise<PullResponse>;
  /** The server's wall clock (ms), when the transport can tell; used to correct a skewed replica's updatedAt. */
  serverTime?(): Promise<number | undefined>;
}
