import { chmodSync, existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { generateToken } from "../http/auth.js";
import { writeFileAtomic } from "./atomic-file.js";
import { openDatabase, type Db } from "./database.js";
import { DiskHealth } from "./disk.js";
import { apiTokenPath } from "./token-file.js";
import { PicortexError } from "../errors.js";

/** The runtime database inside a data dir. */
export const runtimeDbPath = (dataDir: string) => join(dataDir, "runtime.sqlite");
/** Written once the data dir holds a database: from then on a missing database is a loss, not a first start. */
export const initializedMarkerPath = (dataDir: string) => join(dataDir, "initialized");

/** The data dir cannot be used as it is; the message names the file and the recovery. */
export class DataDirError extends PicortexError {
  constructor(
    message: string,
    readonly file: string,
  ) {
    super("config", "state", message);
  }
}

/** The shortest API token accepted (the floor the deploy accepts for an operator-chosen one). */
export const MIN_API_TOKEN_LENGTH = 16;

/**
 * Files that only exist once a runtime has run in this data dir. Not the portal's tokens:
 * `picortex portal start` writes them before its first runtime start creates the database.
 */
function stateEvidence(dataDir: string): string[] {
  const names = ["initialized", "runtime.sqlite-wal", "endpoint.json", "chats", "archives"];
  return names.filter((n) => existsSync(join(dataDir, n)));
}

function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

const recoveryHint = (dataDir: string) =>
  `Restore it from a backup (\`picortex restore <backup-file> --data-dir ${dataDir}\`, with the runtime stopped), ` +
  `or, to deliberately start over with no chats and no brain tokens, start once with \`picortex serve --init\`.`;

export interface OpenedState {
  db: Db;
  apiToken: string;
  /** The database was created now (first start, or --init). */
  fresh: boolean;
  tokenCreated: boolean;
  /** Opened with exclusive locking because the disk was full (no other process can open it until a restart). */
  exclusive: boolean;
}

/**
 * Opens the runtime's durable state, refusing to reset it silently:
 * - an empty data dir (or one holding only what a deploy writes: api-token, agent-token.sha256) is initialised;
 * - a missing or 0-byte runtime.sqlite in a data dir that has held state is refused unless
 *   `init` is set, and so is a missing or truncated api-token (use `picortex token rotate`);
 * - a damaged database (PRAGMA quick_check, stopping after the first `maxErrors` problems)
 *   is refused with the damage named, before any module reads it.
 */
export function openRuntimeState(
  dataDir: string,
  opts: { init?: boolean; maxErrors?: number; /** Runs after the checks, before the database is opened (modes). */ prepare?: (dbPath: string) => void } = {},
): OpenedState {
  const dbPath = runtimeDbPath(dataDir);
  const size = sizeOf(dbPath);
  let fresh = false;
  if (size === undefined || size === 0) {
    const evidence = stateEvidence(dataDir);
    if (size === 0 && !opts.init) {
      throw new DataDirError(`The runtime database ${dbPath} is empty (0 bytes): its chats, turns and brain tokens are gone. ${recoveryHint(dataDir)}`, dbPath);
    }
    if (evidence.length > 0 && !opts.init) {
      throw new DataDirError(
        `The runtime database ${dbPath} is missing, but ${dataDir} has held runtime state (${evidence.join(", ")}). ` +
          `Starting would silently begin with no chats and no brain tokens. ${recoveryHint(dataDir)}`,
        dbPath,
      );
    }
    fresh = true;
  }

  let db: Db;
  let exclusive = false;
  try {
    opts.prepare?.(dbPath);
    db = openDatabase(dbPath);
  } catch (err) {
    const full = new DiskHealth(dataDir).classify(err);
    if (!full) throw new DataDirError(`The runtime database ${dbPath} cannot be opened (${(err as Error).message}). ${recoveryHint(dataDir)}`, dbPath);
    // A full disk: SQLite could not create its shared-memory file. Open without one
    // (exclusive locking) so the runtime serves reads, health and the portal, and
    // writes fail with 507 until there is room, instead of a crash loop.
    try {
      db = openDatabase(dbPath, { exclusive: true });
      exclusive = true;
    } catch (again) {
      throw new DataDirError(`${full.message} The runtime database ${dbPath} cannot even be opened for reading (${(again as Error).message}).`, dbPath);
    }
  }
  if (!fresh) {
    let problems: string[];
    try {
      const rows = db.pragma(`quick_check(${Math.max(1, opts.maxErrors ?? 5)})`) as Array<{ quick_check: string }>;
      problems = rows.map((r) => r.quick_check).filter((r) => r !== "ok");
    } catch (err) {
      problems = [(err as Error).message];
    }
    if (problems.length > 0) {
      db.close();
      throw new DataDirError(
        `The runtime database ${dbPath} is damaged (PRAGMA quick_check: ${problems.join("; ")}). ` +
          `Stop here rather than serve from it: restore a backup with \`picortex restore <backup-file> --data-dir ${dataDir}\`, ` +
          `or salvage what is readable with \`sqlite3 ${dbPath} .recover | sqlite3 recovered.sqlite\` and restore that.`,
        dbPath,
      );
    }
  }

  let token: { token: string; created: boolean };
  try {
    token = readApiToken(dataDir, fresh || !!opts.init);
  } catch (err) {
    db.close();
    throw err;
  }
  if (!existsSync(initializedMarkerPath(dataDir))) {
    try {
      writeFileAtomic(
        initializedMarkerPath(dataDir),
        `This data dir holds a picortex runtime's state since ${new Date().toISOString()}.\n` +
          "While this file exists, a missing runtime.sqlite or api-token stops the runtime instead of being recreated empty.\n",
        0o600,
      );
    } catch (err) {
      // A full disk must not stop a start (the database itself is the main evidence); written next start.
      if ((err as NodeJS.ErrnoException).code !== "ENOSPC") {
        db.close();
        throw err;
      }
    }
  }
  return { db, apiToken: token.token, fresh, tokenCreated: token.created, exclusive };
}

/**
 * The API token: created (0600, atomically) only when the state is being initialised;
 * otherwise a missing or truncated file is refused, because a new token would lock out
 * every holder of the old one. A file loosened by hand is tightened, not trusted as is.
 */
export function readApiToken(dataDir: string, mayCreate: boolean): { token: string; created: boolean } {
  const path = apiTokenPath(dataDir);
  let existing: string | undefined;
  if (existsSync(path)) {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    existing = readFileSync(path, "utf8").trim();
    if (existing.length >= MIN_API_TOKEN_LENGTH) return { token: existing, created: false };
  }
  if (!mayCreate) {
    throw new DataDirError(
      `The API token file ${path} is ${existing === undefined ? "missing" : `truncated (${existing.length} characters, fewer than ${MIN_API_TOKEN_LENGTH})`}. ` +
        `A new token would lock out every client holding the old one, so none is made silently. ` +
        `Restore the file from a backup, or issue a new one with \`picortex token rotate --data-dir ${dataDir}\` and give it to every client.`,
      path,
    );
  }
  return { token: rotateApiToken(dataDir), created: true };
}

/** Writes a new API token (0600, atomically) and returns it. */
export function rotateApiToken(dataDir: string): string {
  const token = generateToken("pct_");
  writeFileAtomic(apiTokenPath(dataDir), token + "\n", 0o600);
  return token;
}
