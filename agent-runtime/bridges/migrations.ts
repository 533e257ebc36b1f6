/** The bridges module's tables (store/database.ts `migrate`, module "bridges"). */
export const BRIDGES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE bridge_links (
    platform TEXT NOT NULL,              -- telegram | webhook
    platform_chat_id TEXT NOT NULL,
    chat_id TEXT NOT NULL,               -- the picortex chat
    title TEXT,
    mode TEXT NOT NULL,                  -- addressed | all
    paused INTEGER NOT NULL DEFAULT 0,
    privacy_notice_sent INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (platform, platform_chat_id)
  ) STRICT;
  CREATE INDEX bridge_links_chat ON bridge_links(chat_id);
  -- Every inbound update, deduplicated by the platform's id. status: context | queued | command | ignored
  CREATE TABLE bridge_inbound (
    platform TEXT NOT NULL,
    update_id TEXT NOT NULL,
    platform_chat_id TEXT NOT NULL,
    message_id TEXT,
    sender_id TEXT,
    sender_name TEXT,
    kind TEXT NOT NULL,                  -- message | edit | member | rename | migrate
    text TEXT NOT NULL,
    status TEXT NOT NULL,
    turn_id TEXT,                        -- the turn this message (as context or trigger) went into
    created_at INTEGER NOT NULL,
    PRIMARY KEY (platform, update_id)
  ) STRICT;
  CREATE INDEX bridge_inbound_pending ON bridge_inbound(platform, platform_chat_id, turn_id);
  -- Turns the bridge queued; outboxed once their reply chunks are in bridge_outbox.
  CREATE TABLE bridge_turns (
    turn_id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    platform_chat_id TEXT NOT NULL,
    reply_to TEXT,
    sender_id TEXT,
    outboxed INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX bridge_turns_pending ON bridge_turns(outboxed);
  -- Reply chunks: delivered at least once, marked sent only after the platform confirmed.
  CREATE TABLE bridge_outbox (
    turn_id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    platform TEXT NOT NULL,
    platform_chat_id TEXT NOT NULL,
    reply_to TEXT,
    text TEXT NOT NULL,
    status TEXT NOT NULL,                -- pending | sent | failed
    platform_message_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    PRIMARY KEY (turn_id, chunk)
  ) STRICT;
  CREATE INDEX bridge_outbox_due ON bridge_outbox(status, next_attempt_at);
  CREATE TABLE bridge_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;
  `,
  // Per-member caps (issue 17): NULL follows bridges.memberBudgetTokens, 0 is "no cap", N tokens per member.
  `ALTER TABLE bridge_links ADD COLUMN member_cap INTEGER;`,
  // A reply too long for a few messages goes as a file: `text` is its caption, `document` the file (issue 17).
  `ALTER TABLE bridge_outbox ADD COLUMN document TEXT;`,
  // Tool approvals asked of a chat's named approvers (issue 17 item 8), and "this session" grants.
  `
  CREATE TABLE bridge_approvals (
    id TEXT PRIMARY KEY,                 -- the short code shown in the chat (/approve <id>)
    chat_id TEXT NOT NULL,
    session_id TEXT,                     -- the chat's Claude session when asked
    platform TEXT NOT NULL,
    platform_chat_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    subject TEXT NOT NULL,               -- what a "session" grant covers (a command, a file, or the tool)
    status TEXT NOT NULL,                -- pending | approved | denied | expired | withdrawn
    scope TEXT,                          -- once | session, when approved
    decided_by TEXT,                     -- the approver's sender id
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_at INTEGER
  ) STRICT;
  CREATE INDEX bridge_approvals_pending ON bridge_approvals(status, chat_id);
  CREATE TABLE bridge_approval_grants (
    chat_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    subject TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    approval_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (chat_id, session_id, tool, subject)
  ) STRICT;
  `,
];
