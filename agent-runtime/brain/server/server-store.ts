import type { Db } from "../../store/database.js";
import { migrate } from "../../store/database.js";
import { generateToken, hashToken, secretsEqual } from "../../http/auth.js";
import { ENTRY_COLUMNS_SQL, entryToRow, rowToEntry, upsertSql, type EntryRow } from "../shared/entry-row.js";
import { idSchema } from "../shared/entry.js";
import { isPoisoned, versionProblem } from "../shared/hlc.js";
import { BrainError } from "../shared/errors.js";
import { pullRequestSchema, type PullRequest, type PullResponse, type PushRequest, type PushResponse } from "../shared/sync-protocol.js";

/**
 * The sync server's state in the runtime database: the workspace's entries at their
 * newest version, each stamped with a server-assigned sequence number that only grows.
 * Pull cursors are sequence numbers, so a pull never misses a row written concurrently,
 * late (an offline client's old edit) or with an equal timestamp.
 */
export const SERVER_MIGRATIONS = [
  `CREATE TABLE brain_server_entries (${ENTRY_COLUMNS_SQL},
     seq INTEGER NOT NULL UNIQUE,
     PRIMARY KEY (workspace_id, entry_id)
   ) STRICT;
   CREATE INDEX brain_server_entries_pull ON brain_server_entries (workspace_id, seq);
   -- server_id is random per database: a client seeing a different one knows its cursor is meaningless here.
   CREATE TABLE brain_server_state (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL, server_id TEXT NOT NULL) STRICT;
   INSERT INTO brain_server_state (id, last_seq, server_id) VALUES (1, 0, lower(hex(randomblob(12))));
   CREATE TABLE brain_push_receipts (
     workspace_id TEXT NOT NULL,
     idempotency_key TEXT NOT NULL,
     response TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (workspace_id, idempotency_key)
   ) STRICT;
   CREATE INDEX brain_push_receipts_age ON brain_push_receipts (created_at);
   CREATE TABLE brain_tokens (
     token_id TEXT PRIMARY KEY,
     token_hash TEXT NOT NULL UNIQUE,
     workspace_id TEXT NOT NULL,
     label TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     revoked_at INTEGER
   ) STRICT;`,
  // Per-chat tokens (host mode): a chat's brain MCP credential, usable only on the chats'
  // MCP endpoint (never for push/pull), revoked when the chat is deleted or re-provisioned.
  `ALTER TABLE brain_tokens ADD COLUMN chat_id TEXT;
   CREATE INDEX brain_tokens_chat ON brain_tokens (chat_id) WHERE chat_id IS NOT NULL;`,
];

/** Receipts older than this are dropped; a client retrying a batch does so within seconds. */
const RECEIPT_TTL_MS = 7 * 24 * 3600 * 1000;

export interface TokenInfo {
  tokenId: string;
  workspaceId: string;
  label: string;
  createdAt: number;
  revokedAt: number | null;
  /** Set for a chat's MCP token (host mode); such a token is refused by push/pull. */
  chatId?: string;
}


export class BrainServerStore {
  private readonly upsert;

  constructor(
    readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {
    migrate(db, "brain-server", SERVER_MIGRATIONS);
    this.upsert = db.prepare(upsertSql("brain_server_entries", ["seq"]));
  }

  /** Applies a batch newest-wins; entries must belong to the caller's workspace. Idempotent per key. */
  push(workspaceId: string, request: PushRequest): PushResponse {
    const now = this.now();
    for (const e of request.entries) {
      if (e.workspaceId !== workspaceId) {
        throw new BrainError("invalid_input", `Entry ${e.entryId} belongs to workspace ${e.workspaceId}, but this token is for ${workspaceId}.`);
      }
      // A version far in the future would win every later write and drag every replica's
      // clock with it (up to the end of the encoding, where the next version sorts lower).
      const problem = versionProblem(e.version, now);
      if (problem) {
        throw new BrainError(
          "invalid_input",
          `Entry ${e.entryId}: ${problem.replace("this clock", "the server clock")}. Check the pushing machine's clock; the next \`picortex brain sync\` with a correct clock re-stamps such entries.`,
        );
      }
    }
    const selectVersion = this.db.prepare("SELECT version, seq FROM brain_server_entries WHERE workspace_id = ? AND entry_id = ?");
    return this.db.transaction((): PushResponse => {
      const receipt = this.db
        .prepare("SELECT response FROM brain_push_receipts WHERE workspace_id = ? AND idempotency_key = ?")
        .get(workspaceId, request.idempotencyKey) as { response: string } | undefined;
      if (receipt) return { ...(JSON.parse(receipt.response) as PushResponse), replayed: true };
      let seq = (this.db.prepare("SELECT last_seq FROM brain_server_state WHERE id = 1").get() as { last_seq: number }).last_seq;
      let applied = 0;
      let ignored = 0;
      const newer: NonNullable<PushResponse["newer"]> = [];
      for (const entry of request.entries) {
        const current = selectVersion.get(workspaceId, entry.entryId) as { version: string; seq: number } | undefined;
        // A stored version beyond the skew bound (written before versions were bounded) is
        // poisoned: any acceptable version replaces it, so the entry can be edited again.
        if (current && current.version >= entry.version && !isPoisoned(current.version, now)) {
          ignored++;
          if (current.version > entry.version) newer.push({ entryId: entry.entryId, version: current.version, seq: current.seq });
          continue;
        }
        seq += 1;
        this.upsert.run({ ...entryToRow(entry), seq });
        applied++;
      }
      this.db.prepare("UPDATE brain_server_state SET last_seq = ? WHERE id = 1").run(seq);
      const response: PushResponse = { applied, ignored, ...(newer.length ? { newer } : {}), seq, replayed: false };
      this.db
        .prepare("INSERT INTO brain_push_receipts (workspace_id, idempotency_key, response, created_at) VALUES (?, ?, ?, ?)")
        .run(workspaceId, request.idempotencyKey, JSON.stringify(response), now);
      this.db.prepare("DELETE FROM brain_push_receipts WHERE created_at < ?").run(now - RECEIPT_TTL_MS);
      return response;
    })();
  }

  /** Entries of the workspace with a sequence above the cursor, in sequence order. */
  pull(workspaceId: string, request: PullRequest): PullResponse {
    const { cursor, limit } = pullRequestSchema.parse(request);
    const rows = this.db
      .prepare("SELECT * FROM brain_server_entries WHERE workspace_id = ? AND seq > ? ORDER BY seq LIMIT ?")
      .all(workspaceId, cursor, limit + 1) as Array<EntryRow & { seq: number }>;
    const page = rows.slice(0, limit);
    const state = this.db.prepare("SELECT last_seq, server_id FROM brain_server_state WHERE id = 1").get() as { last_seq: number; server_id: string };
    return {
      head: state.last_seq,
      serverId: state.server_id,
      entries: page.map(rowToEntry),
      cursor: page.length > 0 ? page[page.length - 1]!.seq : cursor,
      hasMore: rows.length > limit,
    };
  }

  /** Issues a token for one workspace. Only its SHA-256 is stored; the token is returned once. */
  createToken(workspaceId: string, label = ""): { token: string; info: TokenInfo } {
    idSchema.parse(workspaceId);
    const token = generateToken("pcb_");
    const info: TokenInfo = { tokenId: generateToken().slice(0, 12), workspaceId, label, createdAt: this.now(), revokedAt: null };
    this.db
      .prepare("INSERT INTO brain_tokens (token_id, token_hash, workspace_id, label, created_at) VALUES (?, ?, ?, ?, ?)")
      .run(info.tokenId, hashToken(token), workspaceId, label, info.createdAt);
    return { token, info };
  }

  /** The active token row with this secret, or undefined. */
  private activeToken(token: string): { workspace_id: string; chat_id: string | null } | undefined {
    const hash = hashToken(token);
    const row = this.db.prepare("SELECT token_hash, workspace_id, revoked_at, chat_id FROM brain_tokens WHERE token_hash = ?").get(hash) as
      | { token_hash: string; workspace_id: string; revoked_at: number | null; chat_id: string | null }
      | undefined;
    // The lookup is by hash, so its timing reveals nothing about the token; compare anyway.
    if (!row || row.revoked_at !== null || !secretsEqual(hash, row.token_hash)) return undefined;
    return row;
  }

  /** The workspace a sync token grants, or undefined for an unknown, revoked or chat token. */
  authenticate(token: string): string | undefined {
    const row = this.activeToken(token);
    return row && row.chat_id === null ? row.workspace_id : undefined;
  }

  /**
   * Issues a chat's brain token (host mode): scoped to one workspace and one chat, for the
   * chats' MCP endpoint only. Any earlier token of the chat is revoked in the same
   * transaction (a re-provisioned chat gets a fresh one). Only the hash is stored.
   */
  createChatToken(workspaceId: string, chatId: string): string {
    idSchema.parse(workspaceId);
    const token = generateToken("pcm_");
    const now = this.now();
    this.db.transaction(() => {
      this.db.prepare("UPDATE brain_tokens SET revoked_at = ? WHERE chat_id = ? AND revoked_at IS NULL").run(now, chatId);
      this.db
        .prepare("INSERT INTO brain_tokens (token_id, token_hash, workspace_id, label, created_at, chat_id) VALUES (?, ?, ?, ?, ?, ?)")
        .run(generateToken().slice(0, 12), hashToken(token), workspaceId, `chat ${chatId}`, now, chatId);
    })();
    return token;
  }

  /** The workspace and chat a chat token grants, or undefined (unknown, revoked, or a sync token). */
  authenticateChat(token: string): { workspaceId: string; chatId: string } | undefined {
    const row = this.activeToken(token);
    return row && row.chat_id !== null ? { workspaceId: row.workspace_id, chatId: row.chat_id } : undefined;
  }

  /** Revokes every active token of a chat; returns how many. */
  revokeChatTokens(chatId: string): number {
    return this.db.prepare("UPDATE brain_tokens SET revoked_at = ? WHERE chat_id = ? AND revoked_at IS NULL").run(this.now(), chatId).changes;
  }

  listTokens(): TokenInfo[] {
    const rows = this.db.prepare("SELECT token_id, workspace_id, label, created_at, revoked_at, chat_id FROM brain_tokens ORDER BY created_at").all() as Array<{
      token_id: string;
      workspace_id: string;
      label: string;
      created_at: number;
      revoked_at: number | null;
      chat_id: string | null;
    }>;
    return rows.map((r) => ({
      tokenId: r.token_id,
      workspaceId: r.workspace_id,
      label: r.label,
      createdAt: r.created_at,
      revokedAt: r.revoked_at,
      ...(r.chat_id !== null ? { chatId: r.chat_id } : {}),
    }));
  }

  revokeToken(tokenId: string): boolean {
    return this.db.prepare("UPDATE brain_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL").run(this.now(), tokenId).changes === 1;
  }
}
