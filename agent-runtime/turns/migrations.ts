/** The turns module's tables (applied with store/database.ts `migrate`, module "turns"). */
export const TURNS_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE turn_chats (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,            -- provisioning | ready | failed | deleted
    session_id TEXT NOT NULL,        -- the chat's one Claude session (uuid)
    session_started INTEGER NOT NULL DEFAULT 0, -- a transcript exists (first turn reached init)
    token_hash TEXT NOT NULL,        -- sha256 of the per-chat gateway token
    budget_tokens INTEGER,
    used_input_tokens INTEGER NOT NULL DEFAULT 0,
    used_output_tokens INTEGER NOT NULL DEFAULT 0,
    provision_log TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    archive_path TEXT,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
  ) STRICT;
  CREATE UNIQUE INDEX turn_chats_token ON turn_chats(token_hash);
  CREATE TABLE turn_turns (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, -- global arrival order; per-chat order follows it
    id TEXT NOT NULL UNIQUE,
    chat_id TEXT NOT NULL,
    text TEXT NOT NULL,
    sender TEXT,
    status TEXT NOT NULL,            -- queued | running | done | failed | interrupted
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_of_interrupted INTEGER NOT NULL DEFAULT 0,
    reply TEXT,
    error_code TEXT,
    error TEXT,
    runner TEXT,                     -- cold | warm
    pid INTEGER,
    input_tokens INTEGER,
    output_tokens INTEGER,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
  ) STRICT;
  CREATE INDEX turn_turns_queue ON turn_turns(status, seq);
  CREATE INDEX turn_turns_chat ON turn_turns(chat_id, seq);
  CREATE TABLE turn_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    role TEXT NOT NULL,              -- user | assistant
    sender TEXT,
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX turn_messages_chat ON turn_messages(chat_id, id);
  `,
  // 2: provisioning survives a crash: each attempt is counted before it touches the host,
  // so a restart resumes (rolls back, then redoes) a chat left `provisioning`, a bounded number of times.
  `ALTER TABLE turn_chats ADD COLUMN provision_attempts INTEGER NOT NULL DEFAULT 0;`,
  // 3: idempotency keys for turn and chat creation: a resent request gets the first one's result.
  `
  CREATE TABLE turn_idempotency (
    key TEXT NOT NULL,
    scope TEXT NOT NULL,             -- "chat" (creation) or "turn:<chat id>"
    request_hash TEXT NOT NULL,      -- sha256 of the request body: a different body with the same key is refused
    result_id TEXT NOT NULL,         -- the chat id or turn id the first request created
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
  ) STRICT;
  CREATE INDEX turn_idempotency_age ON turn_idempotency(created_at);
  `,
  // 4: a chat whose Claude transcript was damaged or lost gets a new session; the notice says so.
  `ALTER TABLE turn_chats ADD COLUMN notice TEXT;`,
  // 5: gateway usage of principals that are not chats (the portal agent, `@agent`).
  `
  CREATE TABLE turn_principal_usage (
    principal TEXT PRIMARY KEY,
    used_input_tokens INTEGER NOT NULL DEFAULT 0,
    used_output_tokens INTEGER NOT NULL DEFAULT 0
  ) STRICT;
  `,
  // 6: what a turn did (files changed, commands run), JSON from turns/activity.ts, bounded;
  // written in the same statement as the turn's outcome. NULL: nothing recorded.
  `ALTER TABLE turn_turns ADD COLUMN activity TEXT;`,
];
