import type { Command } from "commander";
import { existsSync } from "node:fs";
import { loadBrainClientConfig } from "../config/brain.js";
import { loadRuntimeConfig } from "../config/load.js";
import { backupDatabase, restoreDatabase } from "../store/backup.js";
import { PicortexError } from "../errors.js";
import { readLiveEndpoint } from "./endpoint.js";
import { writeFileAtomic } from "../store/atomic-file.js";
import { initializedMarkerPath, rotateApiToken, runtimeDbPath } from "../store/data-dir.js";
import { apiTokenPath } from "../store/token-file.js";
import { runCommand } from "./shell.js";

interface StateFlags {
  config?: string;
  dataDir?: string;
  brain?: boolean;
  json?: boolean;
}

const dataDirOf = (o: StateFlags) => loadRuntimeConfig({ file: o.config, overrides: { dataDir: o.dataDir } }).dataDir;

/** The database a backup/restore command acts on: the runtime's, or this machine's brain replica. */
function databaseOf(o: StateFlags): { path: string; what: string; table: string } {
  if (o.brain) return { path: loadBrainClientConfig(process.env, process.cwd(), { dataDir: o.dataDir }).dbPath, what: "brain replica", table: "brain_entries" };
  return { path: runtimeDbPath(dataDirOf(o)), what: "runtime database", table: "schema_migrations" };
}

/** A refused backup/restore (BackupError, DataDirError: code "state") exits 2, like a bad config. */
const run = (fn: () => Promise<unknown>, json: boolean | undefined): Promise<void> => runCommand({ prefix: "picortex", json, extra: { ok: false } }, fn);

const emit = (o: StateFlags, json: unknown, text: string) => process.stdout.write((o.json ? JSON.stringify(json) : text) + "\n");

/** `picortex backup`, `picortex restore` and `picortex token rotate`: explicit, never implicit, changes of state. */
export function registerStateCommands(program: Command): void {
  const flags = (cmd: Command) =>
    cmd
      .option("-c, --config <file>", "runtime JSON config (default: $PICORTEX_CONFIG)")
      .option("--data-dir <dir>", "runtime data directory")
      .option("--json", "print the result as JSON");

  flags(program.command("backup <file>").description("Copy the runtime database (chats, turns, brain server, tokens) to <file> with SQLite's online backup API; safe while the runtime runs."))
    .option("--brain", "back up this machine's local brain store instead (the brain store rule: see `picortex brain --help`)")
    .action((file: string, o: StateFlags) =>
      run(async () => {
        const db = databaseOf(o);
        const r = await backupDatabase(db.path, file);
        emit(o, { ok: true, source: db.path, file, bytes: r.bytes }, `Backed up the ${db.what} ${db.path} to ${file} (${r.bytes} bytes, self-contained: no -wal needed).`);
      }, o.json),
    );

  flags(program.command("restore <file>").description("Replace the runtime database with a backup made by `picortex backup`; stop the runtime first. The current database is kept beside it."))
    .option("--brain", "restore this machine's brain replica instead")
    .action((file: string, o: StateFlags) =>
      run(async () => {
        const db = databaseOf(o);
        if (!o.brain) {
          // Swapping the files under a running runtime loses its writes (it keeps the old ones open).
          const live = readLiveEndpoint(dataDirOf(o));
          if (live) {
            throw new PicortexError(
              "conflict",
              "runtime_running",
              `The runtime (pid ${live.pid}, ${live.url}) is running on ${dataDirOf(o)}: stop it first (on a host: systemctl stop picortex-runtime.socket picortex-runtime.service, or the socket starts it again), then restore.`,
            );
          }
        }
        const r = await restoreDatabase(file, db.path, db.table);
        if (!o.brain) {
          const dataDir = dataDirOf(o);
          if (!existsSync(initializedMarkerPath(dataDir))) {
            writeFileAtomic(initializedMarkerPath(dataDir), `Restored from ${file} at ${new Date().toISOString()}.\n`, 0o600);
          }
        }
        emit(
          o,
          { ok: true, target: db.path, from: file, keptAs: r.keptAs ?? null },
          `Restored the ${db.what} ${db.path} from ${file}.${r.keptAs ? ` The previous one is kept as ${r.keptAs}.` : ""} Start the runtime again.`,
        );
      }, o.json),
    );

  const token = program.command("token").description("The runtime API token.");
  flags(token.command("rotate").description("Write a new runtime API token (0600) and print it; every client must then use it. Restart the runtime to apply it."))
    .action((o: StateFlags) =>
      run(async () => {
        const dataDir = dataDirOf(o);
        const t = rotateApiToken(dataDir);
        emit(o, { ok: true, tokenFile: apiTokenPath(dataDir), token: t }, `New API token (stored 0600 in ${apiTokenPath(dataDir)}): ${t}\nRestart the runtime and give the new token to every client.`);
      }, o.json),
    );
}
