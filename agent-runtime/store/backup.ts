import Database from "better-sqlite3";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { PicortexError } from "../errors.js";

/** A backup or restore that cannot be done; the message says why and what to do. */
/** A backup or restore refused (a bad file, a wrong kind of database): state to fix, exit 2. */
export class BackupError extends PicortexError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("config", "state", message, options);
  }
}

function quickCheck(db: Database.Database): string[] {
  try {
    const rows = db.pragma("quick_check(5)") as Array<{ quick_check: string }>;
    return rows.map((r) => r.quick_check).filter((r) => r !== "ok");
  } catch (err) {
    return [(err as Error).message];
  }
}

/**
 * Copies a live SQLite database (WAL included: every committed row) to `target` with
 * SQLite's online backup API, which readers and writers may keep using meanwhile.
 * The copy is written beside the target and renamed into place, so a failed or
 * interrupted backup never leaves a half-written file under the target's name.
 */
export async function backupDatabase(source: string, target: string): Promise<{ bytes: number; pages: number }> {
  if (!existsSync(source) || statSync(source).size === 0) throw new BackupError(`Nothing to back up: ${source} is missing or empty.`);
  const out = resolve(target);
  mkdirSync(dirname(out), { recursive: true, mode: 0o700 });
  const tmp = join(dirname(out), `.${basename(out)}.${randomBytes(6).toString("hex")}.tmp`);
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    const meta = await db.backup(tmp);
    const copy = new Database(tmp, { fileMustExist: true });
    try {
      // A self-contained file: no -wal beside it to lose when it is copied on.
      copy.pragma("journal_mode = DELETE");
      const problems = quickCheck(copy);
      if (problems.length > 0) throw new BackupError(`The backup of ${source} failed its integrity check (${problems.join("; ")}); the source may be damaged.`);
    } finally {
      copy.close();
    }
    renameSync(tmp, out);
    return { bytes: statSync(out).size, pages: meta.totalPages };
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  } finally {
    db.close();
  }
}

/**
 * Replaces `target` with the database in `backup` (checked first), using the backup API
 * into a fresh file that is then renamed over the target. A target that exists is kept
 * beside it as `<name>.before-restore-<time>` (with its -wal), so a restore loses nothing.
 * The process that uses `target` must be stopped.
 */
export async function restoreDatabase(backup: string, target: string, expectTable?: string): Promise<{ keptAs: string | undefined }> {
  if (!existsSync(backup)) throw new BackupError(`No backup file ${backup}.`);
  const src = new Database(backup, { readonly: true, fileMustExist: true });
  const dir = dirname(resolve(target));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const problems = quickCheck(src);
    if (problems.length > 0) throw new BackupError(`${backup} is damaged (PRAGMA quick_check: ${problems.join("; ")}); pick another backup.`);
    if (expectTable) {
      const found = src.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(expectTable);
      if (!found) throw new BackupError(`${backup} is not a backup of this kind of database (it has no ${expectTable} table).`);
    }
    await src.backup(tmp);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  } finally {
    src.close();
  }
  let keptAs: string | undefined;
  const stamp = `${target}.before-restore-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  for (const suffix of ["", "-wal", "-shm"]) {
    if (!existsSync(target + suffix)) continue;
    renameSync(target + suffix, stamp + suffix);
    keptAs = stamp;
  }
  renameSync(tmp, target);
  return { keptAs };
}
