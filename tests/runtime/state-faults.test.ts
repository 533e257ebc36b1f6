import { execFile } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { loadRuntimeConfig } from "../../agent-runtime/config/load.js";
import { createLogger } from "../../agent-runtime/log.js";
import { startRuntime, type RunningRuntime } from "../../agent-runtime/server.js";
import { DataDirError } from "../../agent-runtime/store/data-dir.js";
import { backupDatabase, restoreDatabase } from "../../agent-runtime/store/backup.js";
import { removeEndpoint, writeEndpoint } from "../../agent-runtime/cli/endpoint.js";
import { openDatabase } from "../../agent-runtime/store/database.js";

const REPO = resolve(import.meta.dirname, "../..");
const run = promisify(execFile);
const dirs: string[] = [];
let rt: RunningRuntime | undefined;
afterEach(async () => {
  await rt?.close();
  rt = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function newDir(): string {
  const d = mkdtempSync(join(tmpdir(), "pcx-state-"));
  dirs.push(d);
  return d;
}

const configFor = (dataDir: string) =>
  loadRuntimeConfig({ env: {}, overrides: { dataDir, server: { port: 0 }, portal: { enabled: false }, turns: { enabled: false } } });

async function start(dataDir: string, init = false): Promise<RunningRuntime> {
  return startRuntime(configFor(dataDir), createLogger("t", () => {}), {}, { init });
}

/** A data dir that has served: a runtime started there, wrote a brain token, stopped cleanly. */
async function usedDir(): Promise<{ dir: string; token: string }> {
  const dir = newDir();
  const r = await start(dir);
  const token = r.apiToken;
  await r.close();
  return { dir, token };
}

/** `picortex serve` as the operator runs it; resolves with its exit status and stderr. */
async function serveCli(dataDir: string, ...extra: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, ["--import", "tsx", join(REPO, "agent-runtime/cli/picortex.ts"), "serve", "--data-dir", dataDir, "--port", "0", "--json", ...extra], {
      cwd: REPO,
      timeout: 60_000,
      env: { ...process.env, PICORTEX_CONFIG: "" },
    });
    return { code: 0, stderr: "" };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

describe("silent resets of the runtime's state are refused", { timeout: 120_000 }, () => {
  it("initialises an empty data dir, and one holding only a deploy-written api-token (kept as is)", async () => {
    rt = await start(newDir());
    expect(rt.tokenCreated).toBe(true);
    await rt.close();
    const dir = newDir();
    writeFileSync(join(dir, "api-token"), "operator-chosen-token-1234\n", { mode: 0o600 });
    rt = await start(dir);
    expect(rt.apiToken).toBe("operator-chosen-token-1234");
    expect(rt.tokenCreated).toBe(false);
    expect(existsSync(join(dir, "initialized"))).toBe(true);
  });

  it("refuses a missing or 0-byte runtime.sqlite in a data dir that has held state; --init starts over", async () => {
    const { dir, token } = await usedDir();
    const db = join(dir, "runtime.sqlite");
    unlinkSync(db);
    await expect(start(dir)).rejects.toThrowError(DataDirError);
    await expect(start(dir)).rejects.toThrowError(new RegExp(`${db.replace(/[.]/g, "\\.")} is missing.*picortex restore.*--init`));
    expect(existsSync(db)).toBe(false); // nothing was created in its place
    writeFileSync(db, "");
    await expect(start(dir)).rejects.toThrowError(/is empty \(0 bytes\).*picortex restore/);
    expect(statSync(db).size).toBe(0);
    // The token is untouched throughout, and survives a deliberate --init.
    rt = await start(dir, true);
    expect(rt.apiToken).toBe(token);
  });

  it("refuses a missing or half-written api-token instead of locking its holders out; `token rotate` is the explicit way", async () => {
    const { dir, token } = await usedDir();
    const tokenFile = join(dir, "api-token");
    writeFileSync(tokenFile, token.slice(0, 7));
    await expect(start(dir)).rejects.toThrowError(/api-token is truncated.*picortex token rotate/);
    expect(readFileSync(tokenFile, "utf8")).toBe(token.slice(0, 7));
    unlinkSync(tokenFile);
    await expect(start(dir)).rejects.toThrowError(/api-token is missing.*picortex token rotate/);
    expect(existsSync(tokenFile)).toBe(false);
    const { stdout } = await run(process.execPath, ["--import", "tsx", join(REPO, "agent-runtime/cli/picortex.ts"), "token", "rotate", "--data-dir", dir, "--json"], { cwd: REPO, env: { ...process.env, PICORTEX_CONFIG: "" } });
    const rotated = JSON.parse(stdout) as { token: string };
    rt = await start(dir);
    expect(rt.apiToken).toBe(rotated.token);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
  });

  it("`picortex serve` exits with the refusal on stderr (no restart-loop crash, no new database)", async () => {
    const { dir } = await usedDir();
    unlinkSync(join(dir, "runtime.sqlite"));
    const r = await serveCli(dir);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/refusing to start: The runtime database .*runtime\.sqlite is missing/);
    expect(existsSync(join(dir, "runtime.sqlite"))).toBe(false);
  });

  it("refuses a database with a garbled page in the middle (PRAGMA quick_check at start)", async () => {
    const { dir } = await usedDir();
    const path = join(dir, "runtime.sqlite");
    // Enough rows that the table spans many pages, then a clean close (WAL folded in).
    const db = openDatabase(path);
    db.exec("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
    const ins = db.prepare("INSERT INTO filler (body) VALUES (?)");
    db.transaction(() => {
      for (let i = 0; i < 400; i++) ins.run(`row ${i} `.repeat(60));
    })();
    db.close();
    const pageSize = 4096;
    const pages = statSync(path).size / pageSize;
    expect(pages).toBeGreaterThan(20);
    const mid = Math.floor(pages / 2);
    const fd = openSync(path, "r+");
    writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, mid * pageSize);
    closeSync(fd);
    await expect(start(dir)).rejects.toThrowError(/runtime\.sqlite is damaged \(PRAGMA quick_check: .+\).*picortex restore/);
  });
});

describe("backup and restore (SQLite online backup API)", { timeout: 120_000 }, () => {
  it("a backup taken while a writer holds rows only in the -wal has every committed row; restore brings a lost database back", async () => {
    const { dir, token } = await usedDir();
    const path = join(dir, "runtime.sqlite");
    const writer = openDatabase(path);
    writer.pragma("wal_autocheckpoint = 0"); // keep every commit in the -wal, as a busy runtime does
    writer.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
    for (let i = 0; i < 50; i++) writer.prepare("INSERT INTO notes (body) VALUES (?)").run(`n${i}`);
    expect(statSync(path + "-wal").size).toBeGreaterThan(0);
    // What a naive `cp runtime.sqlite` gets: the main file alone lacks the rows.
    const naive = join(newDir(), "copy.sqlite");
    writeFileSync(naive, readFileSync(path));
    const naiveDb = new Database(naive);
    expect(naiveDb.prepare("SELECT 1 FROM sqlite_master WHERE name = 'notes'").get()).toBeUndefined();
    naiveDb.close();

    const backup = join(newDir(), "runtime-backup.sqlite");
    await backupDatabase(path, backup);
    writer.close();
    expect(existsSync(backup + "-wal")).toBe(false);
    const b = new Database(backup, { readonly: true });
    expect((b.prepare("SELECT count(*) AS n FROM notes").get() as { n: number }).n).toBe(50);
    b.close();

    // Disaster: the database is gone. The runtime refuses; restore; it starts with the rows.
    rmSync(path);
    await expect(start(dir)).rejects.toThrowError(DataDirError);
    // A runtime still running on the data dir (its endpoint record, a live pid) would keep the
    // old files open and lose its writes: restore refuses, and changes nothing.
    writeEndpoint(dir, { pid: process.pid, url: "http://127.0.0.1:1", urls: ["http://127.0.0.1:1"], port: 1, mode: "local", modules: [], version: "test" } as never);
    const refused = await run(process.execPath, ["--import", "tsx", join(REPO, "agent-runtime/cli/picortex.ts"), "restore", backup, "--data-dir", dir, "--json"], { cwd: REPO, env: { ...process.env, PICORTEX_CONFIG: "" } }).then(
      () => undefined,
      (err: { code?: number; stdout?: string; stderr?: string }) => err,
    );
    expect(refused?.code).toBe(1);
    expect(`${refused?.stdout}${refused?.stderr}`).toMatch(/is running on .*stop it first.*picortex-runtime\.socket/);
    expect(existsSync(path)).toBe(false);
    removeEndpoint(dir, process.pid);
    const { stdout } = await run(process.execPath, ["--import", "tsx", join(REPO, "agent-runtime/cli/picortex.ts"), "restore", backup, "--data-dir", dir, "--json"], { cwd: REPO, env: { ...process.env, PICORTEX_CONFIG: "" } });
    expect(JSON.parse(stdout)).toMatchObject({ ok: true });
    rt = await start(dir);
    expect(rt.apiToken).toBe(token);
    await rt.close();
    rt = undefined;
    const after = new Database(path, { readonly: true });
    expect((after.prepare("SELECT count(*) AS n FROM notes").get() as { n: number }).n).toBe(50);
    after.close();
  });

  it("restore refuses a damaged or foreign file and keeps the current database beside the restored one", async () => {
    const { dir } = await usedDir();
    const path = join(dir, "runtime.sqlite");
    const junk = join(newDir(), "junk.sqlite");
    writeFileSync(junk, "not a database at all, just text ".repeat(200));
    await expect(restoreDatabase(junk, path, "schema_migrations")).rejects.toThrowError(/damaged|not a database/);
    const foreign = join(newDir(), "foreign.sqlite");
    const f = new Database(foreign);
    f.exec("CREATE TABLE x (a)");
    f.close();
    await expect(restoreDatabase(foreign, path, "schema_migrations")).rejects.toThrowError(/no schema_migrations table/);
    const good = join(newDir(), "good.sqlite");
    await backupDatabase(path, good);
    const r = await restoreDatabase(good, path, "schema_migrations");
    expect(r.keptAs).toMatch(/runtime\.sqlite\.before-restore-/);
    expect(existsSync(r.keptAs!)).toBe(true);
    truncateSync(good, 0);
    await expect(backupDatabase(good, join(dir, "x.sqlite"))).rejects.toThrowError(/missing or empty/);
  });
});
