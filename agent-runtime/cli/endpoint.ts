import { existsSync, lstatSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../store/atomic-file.js";
import { apiTokenPath } from "../store/token-file.js";
import { loadRuntimeConfig, ConfigError } from "../config/load.js";
import { PicortexError, type ErrorCategory } from "../errors.js";

/**
 * The endpoint record: a running `picortex serve` writes `<dataDir>/endpoint.json`
 * (atomically, 0600) once it listens, and removes it when it stops. Every client command
 * (chat, brain, portal token/status) reads it to find where the runtime listens, so the
 * port is chosen in one place (`serve --port` / PICORTEX_PORT / server.port) only.
 */
export interface EndpointRecord {
  pid: number;
  /** The runtime's first loopback URL: clients send the API token only to a loopback URL (endpointRecordProblem). */
  url: string;
  urls: string[];
  port: number;
  mode: "host" | "local";
  modules: string[];
  version: string;
  startedAt: string;
}

export const endpointPath = (dataDir: string) => join(dataDir, "endpoint.json");

export function writeEndpoint(dataDir: string, record: EndpointRecord): void {
  writeFileAtomic(endpointPath(dataDir), JSON.stringify(record) + "\n", 0o600);
}

export function readEndpoint(dataDir: string): EndpointRecord | undefined {
  const path = endpointPath(dataDir);
  if (!existsSync(path)) return undefined;
  try {
    const r = JSON.parse(readFileSync(path, "utf8")) as EndpointRecord;
    return typeof r.pid === "number" && typeof r.url === "string" ? r : undefined;
  } catch {
    return undefined; // hand-edited or unreadable: as if absent
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The record of a runtime that is running now; a stale record (dead pid) reads as none. */
export function readLiveEndpoint(dataDir: string): EndpointRecord | undefined {
  const r = readEndpoint(dataDir);
  return r && pidAlive(r.pid) ? r : undefined;
}

/**
 * Whether a URL names this machine's loopback over plain http: 127.0.0.0/8, ::1 or
 * `localhost`, with no user info. The only URLs a runtime writes into its endpoint record.
 */
export function isLoopbackHttpUrl(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol !== "http:" || u.username !== "" || u.password !== "") return false;
  const h = u.hostname.toLowerCase();
  // The WHATWG parser normalises IPv4 forms (127.1, 0x7f.0.0.1) to dotted quads.
  return h === "localhost" || h === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The URL a runtime records for its clients: its first loopback URL (clients refuse any other). */
export function endpointUrlOf(urls: readonly string[]): string | undefined {
  return urls.find(isLoopbackHttpUrl);
}

/**
 * Why the endpoint record must not decide where the API token goes, or undefined when it may.
 * The runtime writes the record itself (0600, owned by its user) with its own loopback URL;
 * a record that names anything else, belongs to another user, can be written by others or
 * is a symbolic link was put there by someone else: a checked-out repository's
 * `.picortex/endpoint.json` would otherwise receive `Authorization: Bearer <your token>`.
 */
export function endpointRecordProblem(dataDir: string, record: Pick<EndpointRecord, "url">): string | undefined {
  const path = endpointPath(dataDir);
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return "it cannot be read";
  }
  if (st.isSymbolicLink()) return "it is a symbolic link";
  if (!st.isFile()) return "it is not a regular file";
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) return `it belongs to uid ${st.uid}, not to you (uid ${uid}) or root`;
  if (st.mode & 0o022) return `others can write it (mode ${(st.mode & 0o777).toString(8).padStart(4, "0")})`;
  if (!isLoopbackHttpUrl(record.url)) return `it names ${JSON.stringify(record.url)}, not a loopback http URL (127.0.0.1, ::1 or localhost)`;
  return undefined;
}

/** Removes the record only if it is this process's (a newer runtime may have replaced it). */
export function removeEndpoint(dataDir: string, pid = process.pid): void {
  if (readEndpoint(dataDir)?.pid === pid) rmSync(endpointPath(dataDir), { force: true });
}

/** Why a client command cannot reach or use the runtime (its exit code follows its category: cli/shell.ts). */
export class ClientError extends PicortexError {
  constructor(message: string, category: ErrorCategory, code: string) {
    super(category, code, message);
  }
}

export interface ClientFlags {
  url?: string;
  dataDir?: string;
  config?: string;
}

export interface RuntimeClient {
  url: string;
  token: string;
  dataDir: string;
  /** How the URL was found: flag/env, the endpoint record, or nothing (then a usage error). */
  source: "flag" | "env" | "endpoint";
}

/**
 * Where a client command finds the runtime: `--url`/$PICORTEX_URL for a runtime elsewhere,
 * else the endpoint record in the data dir (data dir rule: config/data-dir.ts). The token
 * comes from $PICORTEX_API_TOKEN or `<dataDir>/api-token`, never from argv.
 */
export function resolveRuntimeClient(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): RuntimeClient {
  let dataDir: string;
  try {
    dataDir = loadRuntimeConfig({ file: flags.config, overrides: { dataDir: flags.dataDir }, env, cwd }).dataDir;
  } catch (err) {
    if (err instanceof ConfigError) throw new ClientError(err.message, "config", "config");
    throw err;
  }
  const explicit = flags.url ?? env.PICORTEX_URL;
  let url: string;
  let source: RuntimeClient["source"];
  if (explicit) {
    try {
      const u = new URL(explicit);
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("not http(s)");
    } catch {
      throw new ClientError(`${flags.url ? "--url" : "PICORTEX_URL"} must be an http(s) URL such as http://127.0.0.1:7420, not ${JSON.stringify(explicit)}`, "invalid_input", "usage");
    }
    url = explicit;
    source = flags.url ? "flag" : "env";
  } else {
    const record = readLiveEndpoint(dataDir);
    if (!record) {
      const stale = readEndpoint(dataDir);
      if (existsSync(dataDir)) {
        throw new ClientError(
          `The runtime is not running${stale ? ` (pid ${stale.pid} has exited)` : ""}: no live endpoint record in ${endpointPath(dataDir)}. Start it with \`npm start\` (or \`picortex serve\`), or pass --url for a runtime elsewhere.`,
          "unavailable",
          "not_running",
        );
      }
      // No data dir is a configuration problem (exit 2, as every command): say which setting
      // named the missing folder, or where the search looked.
      const named = flags.dataDir ? `--data-dir ${flags.dataDir}` : env.PICORTEX_DATA_DIR ? `PICORTEX_DATA_DIR=${env.PICORTEX_DATA_DIR}` : undefined;
      throw new ClientError(
        named
          ? `No picortex data dir at ${dataDir}: ${named} names a folder that does not exist. Point it at the folder \`npm start\` uses (./.picortex in the clone), or unset it to use the nearest .picortex.`
          : `No picortex data dir found (looked for .picortex in ${cwd} and its parents). Run this in the folder where you ran \`npm start\`, or pass --data-dir DIR (or PICORTEX_DATA_DIR), or --url for a runtime elsewhere.`,
        "config",
        "config",
      );
    }
    const problem = endpointRecordProblem(dataDir, record);
    if (problem) {
      throw new ClientError(
        `Refusing the endpoint record ${endpointPath(dataDir)}: ${problem}. A runtime writes its own loopback URL there, in a file only its user can write; this record was put there by someone else (a checked-out repository's .picortex, for one) or by a runtime that listens on no loopback address, and would receive your API token. Delete it, or run in your runtime's folder (or pass --data-dir DIR); pass --url (or PICORTEX_URL) to reach a runtime elsewhere on purpose.`,
        "config",
        "untrusted_endpoint",
      );
    }
    url = record.url;
    source = "endpoint";
  }
  let token = env.PICORTEX_API_TOKEN?.trim();
  if (!token) {
    const file = apiTokenPath(dataDir);
    if (!existsSync(file)) {
      throw new ClientError(`No API token: set PICORTEX_API_TOKEN or point --data-dir at the runtime's data dir (no ${file}).`, "config", "config");
    }
    token = readFileSync(file, "utf8").trim();
  }
  return { url: url.replace(/\/$/, ""), token, dataDir, source };
}

/** What a CLI user should do when the runtime refuses the token (the server's message is for HTTP clients). */
export function wrongTokenMessage(client: Pick<RuntimeClient, "dataDir" | "url">, env: NodeJS.ProcessEnv = process.env): string {
  return env.PICORTEX_API_TOKEN?.trim()
    ? `The runtime at ${client.url} rejected the token in PICORTEX_API_TOKEN. Unset it to use ${apiTokenPath(client.dataDir)}, or set it to the token the runtime printed at start.`
    : `The runtime at ${client.url} rejected the token in ${apiTokenPath(client.dataDir)}: it belongs to another runtime. Pass --data-dir with the data dir of the runtime you mean (\`npm start\` prints it), or set PICORTEX_API_TOKEN.`;
}
