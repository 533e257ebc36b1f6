import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

export type Db = Database.Database;

/**
 * Opens a SQLite database in WAL mode with settings that favour durability:
 * `synchronous=FULL` so a committed row survives `kill -9` and power loss.
 */
export function openDatabase(path: string, opts: { exclusive?: boolean } = {}): Db {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new Database(path);
  // Exclusive locking keeps the WAL index in memory, so no -shm file has to be created:
  // the way to open (and serve reads from) a database on a full disk. Other processes
  // cannot open it meanwhile.
  try {
    if (opts.exclusive) db.pragma("locking_mode = EXCLUSIVE");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
  } catch (err) {
    db.close(); // never leave a half-opened connection holding a lock
    throw err;
  }
  return db;
}

/**
 * Applies a module's migrations in order, each in its own transaction, recording the
 * version reached per module so modules own their tables independently.
 */
export function migrate(db: Db, module: string, migrations: readonly string[]): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    module TEXT PRIMARY KEY,
    version INTEGER NOT NULL
  ) STRICT`);
  const row = db.prepare("SELECT version FROM schema_migrations WHERE module = ?").get(module) as
    | { version: number }
    | undefined;
  const current = row?.version ?? 0;
  if (current > migrations.length) {
    throw new Error(
      `Database schema for ${module} is at version ${current}, newer than this runtime knows (${migrations.length}). Upgrade the runtime.`,
    );
  }
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.prepare(
        "INSERT INTO schema_migrations (module, version) VALUES (?, ?) ON CONFLICT(module) DO UPDATE SET version = excluded.version",
      ).run(module, v + 1);
    })();
  }
}
