import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import type { Command } from "commander";
import { loadRuntimeConfig, ConfigError, parsePort } from "../config/load.js";
import { loadRuntimeSecrets } from "../config/secrets.js";
import { startRuntime, RUNTIME_VERSION } from "../server.js";
import { createLogger } from "../log.js";
import { apiTokenPath } from "../store/token-file.js";
import { endpointPath, endpointUrlOf, readLiveEndpoint, removeEndpoint, writeEndpoint } from "./endpoint.js";

/** Creates the data dir if needed and proves it writable, with a message a user can act on. */
export function ensureWritableDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    accessSync(dataDir, constants.W_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "EACCES" || code === "EPERM" ? "permission denied" : code === "ENOTDIR" || code === "EEXIST" ? "a file is in the way" : (err as Error).message;
    throw new ConfigError(`Cannot use data dir ${dataDir}: ${why}. Choose a folder you can write with --data-dir DIR (or PICORTEX_DATA_DIR).`);
  }
}

/** EADDRINUSE and friends, as a sentence with the way out. */
export function listenErrorMessage(err: unknown, port: number): string | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.code === "EADDRINUSE") {
    return `Port ${e.port ?? port} on ${e.address ?? "127.0.0.1"} is already in use (another picortex runtime or portal? \`npx picortex portal status\` tells). Choose another port: npm start -- --port 7421 (or PICORTEX_PORT=7421 npm start).`;
  }
  if (e?.code === "EACCES" && e.syscall === "listen") {
    return `Not allowed to listen on port ${e.port ?? port} (ports below 1024 need privileges). Choose another with --port (or PICORTEX_PORT).`;
  }
  if (e?.code === "EADDRNOTAVAIL") return `Cannot bind ${e.address}: no such local address. Check --host.`;
  return undefined;
}
import { DataDirError } from "../store/data-dir.js";
import { fail } from "./shell.js";

/** Exit status when the data dir is refused (missing/damaged state): not worth a restart loop. */
export const EXIT_DATA_DIR = 3;

/**
 * What local mode does not protect, said plainly. A chat runs as the same Unix user as
 * the runtime, so it can read whatever that user can: the API token and database in the
 * data dir, a key file, and the environment every process of that user started with
 * (/proc/<pid>/environ). The runtime overwrites an exported ANTHROPIC_API_KEY in its own
 * environment block, but the npm, tsx or shell processes that started it keep theirs, and
 * no process can take it back out of its ancestors. Host mode (a Linux user per chat) is
 * the boundary.
 */
/**
 * Overwrites the values of `names` in the environment block the process started with
 * (the memory /proc/<pid>/environ reads), through /proc/self/mem. `delete process.env.X`
 * only unlinks the variable from libc's list; the bytes stay readable by every process
 * of the same user. Linux only; returns false when it could not be done.
 */
export function scrubInitialEnvironment(names: readonly string[]): boolean {
  if (process.platform !== "linux") return false;
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    // Fields after "(comm)": index 0 is field 3 (state); env_start and env_end are fields 50 and 51.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).trim().split(" ");
    const start = Number(fields[47]);
    const end = Number(fields[48]);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start <= 0 || end <= start || end - start > 16 * 1024 * 1024) return false;
    const fd = openSync("/proc/self/mem", "r+");
    try {
      const block = Buffer.alloc(end - start);
      if (readSync(fd, block, 0, block.length, start) !== block.length) return false;
      let changed = false;
      for (let at = 0; at < block.length; ) {
        let stop = block.indexOf(0, at);
        if (stop < 0) stop = block.length;
        const entry = block.toString("latin1", at, stop);
        const eq = entry.indexOf("=");
        if (eq > 0 && names.includes(entry.slice(0, eq))) {
          block.fill("*".charCodeAt(0), at + eq + 1, stop);
          changed = true;
        }
        at = stop + 1;
      }
      if (changed && writeSync(fd, block, 0, block.length, start) !== block.length) return false;
      return true;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

export const LOCAL_MODE_EXPOSURE =
  "Not a security boundary: a chat's agent can read anything your user can, including the API token in the data dir and an exported ANTHROPIC_API_KEY from /proc/<pid>/environ of the npm/tsx/shell processes that started this runtime (the runtime overwrites its own copy). Use host mode for agents you do not trust.";

interface ServeOptions {
  config?: string;
  local?: boolean;
  host?: string[];
  port?: string;
  dataDir?: string;
  json?: boolean;
  init?: boolean;
}

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("Run the agent runtime (portal, chat turns, brain) as one service.")
    .option("-c, --config <file>", "JSON config file (default: $PICORTEX_CONFIG)")
    .option("--local", "local mode: chats run as the current user (weaker isolation, no sudo needed)")
    .option("--host <address...>", "addresses to bind (default: 127.0.0.1)")
    .option("--port <port>", "port to listen on (default: $PICORTEX_PORT, else server.port in the config, else 7420; 0 picks a free one)")
    .option("--data-dir <dir>", "where the database, tokens and endpoint record live (default: $PICORTEX_DATA_DIR, else the nearest .picortex folder here or above, else ./.picortex)")
    .option("--json", "print the startup summary as one JSON line on stdout")
    .option("--init", "initialise a missing database or API token even though the data dir has held state (starts with no chats)")
    .action(async (opts: ServeOptions) => {
      const log = createLogger();
      let config;
      try {
        config = loadRuntimeConfig({
          file: opts.config,
          overrides: {
            mode: opts.local ? "local" : undefined,
            dataDir: opts.dataDir,
            server: {
              hosts: opts.host,
              port: opts.port === undefined ? undefined : parsePort(opts.port, "--port"),
            },
          },
        });
        ensureWritableDataDir(config.dataDir);
        const other = readLiveEndpoint(config.dataDir);
        if (other && other.pid !== process.pid) {
          throw new ConfigError(`A runtime already serves this data dir (pid ${other.pid} on ${other.url}); stop it first, or use another --data-dir.`);
        }
      } catch (err) {
        if (err instanceof ConfigError) fail(err, { prefix: "picortex" });
        throw err;
      }
      const secrets = loadRuntimeSecrets();
      // No child of the runtime inherits the key from here on (chats already get an
      // environment built from scratch), and the copy in the environment block this
      // process started with (what /proc/<pid>/environ shows) is overwritten. The
      // processes that started this one keep theirs: see LOCAL_MODE_EXPOSURE.
      delete process.env.ANTHROPIC_API_KEY;
      const scrubbed = scrubInitialEnvironment(["ANTHROPIC_API_KEY"]);
      if (secrets.anthropicApiKey && !scrubbed) log.warn("could not overwrite ANTHROPIC_API_KEY in this process's /proc/<pid>/environ");
      let runtime;
      try {
        runtime = await startRuntime(config, log, secrets, { init: opts.init });
      } catch (err) {
        if (err instanceof DataDirError) {
          process.stderr.write(`picortex: refusing to start: ${err.message}\n`);
          process.exit(EXIT_DATA_DIR);
        }
        const message = listenErrorMessage(err, config.server.port);
        if (!message) throw err;
        process.stderr.write(`picortex: ${message}\n`);
        process.exit(1);
      }
      // The endpoint record: how every client command finds this runtime (cli/endpoint.ts).
      // Clients send their API token only to a loopback URL found there.
      const clientUrl = endpointUrlOf(runtime.urls);
      if (!clientUrl) log.warn(`no loopback address among ${runtime.urls.join(", ")}: client commands refuse the endpoint record and need --url`);
      try {
        writeEndpoint(config.dataDir, {
          pid: process.pid,
          url: clientUrl ?? runtime.urls[0]!,
          urls: runtime.urls,
          port: runtime.port,
          mode: config.mode,
          modules: runtime.modules.map((m) => m.name),
          version: RUNTIME_VERSION,
          startedAt: new Date().toISOString(),
        });
      } catch (err) {
        // A full disk must not stop a start that otherwise works (issue 18): clients then need --url.
        if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
        log.warn(`disk full: could not write the endpoint record ${endpointPath(config.dataDir)}; clients need --url ${runtime.urls[0]} until the next start`);
      }
      if (opts.json) {
        process.stdout.write(
          JSON.stringify({
            urls: runtime.urls,
            mode: config.mode,
            dataDir: config.dataDir,
            tokenFile: apiTokenPath(config.dataDir),
            endpointFile: endpointPath(config.dataDir),
            ...(config.mode === "local" ? { isolation: LOCAL_MODE_EXPOSURE } : {}),
            // A token made now is in tokenFile (0600); say so, so a --json caller knows to read it.
            tokenCreated: runtime.tokenCreated,
          }) + "\n",
        );
      } else {
        const tokenFile = apiTokenPath(config.dataDir);
        const lines = [
          `picortex runtime listening on ${runtime.urls.join(", ")} (${config.mode} mode)`,
          config.mode === "local"
            ? `  local mode: chats run as you, each with its own HOME and config dir. ${LOCAL_MODE_EXPOSURE}`
            : "  host mode: each chat runs as its own Linux user",
          `  data: ${config.dataDir}`,
          // The token itself goes only to a person at a terminal in local mode; on a host (or
          // whenever stdout is a pipe or the journal) only where it is stored is printed.
          runtime.tokenCreated && config.mode === "local" && process.stdout.isTTY
            ? `  API token (stored 0600 in ${tokenFile}): ${runtime.apiToken}`
            : `  API token: ${runtime.tokenCreated ? "created, " : ""}stored 0600 in ${tokenFile} (the CLI reads it from there)`,
          config.portal.enabled ? "  portal: `npx picortex portal token` prints a sign-in link (the token rides after #)" : "",
          config.turns.enabled ? "  chats:  `npx picortex chat create demo` then `npx picortex chat send demo \"hello\"`" : "",
          config.turns.enabled ? `  upstream: ${config.turns.upstreamBaseUrl}${process.env.ANTHROPIC_BASE_URL?.trim() ? " (from ANTHROPIC_BASE_URL)" : ""}` : "",
          config.brain.enabled ? "  brain:  `npx picortex brain --help` (record, recall, sync, mcp)" : "",
          config.turns.enabled && config.mode === "local" && !secrets.anthropicApiKey && !config.turns.apiKeyFile
            ? "  note: no Anthropic key yet; export ANTHROPIC_API_KEY (or set turns.apiKeyFile) and restart, or chat turns will fail"
            : "",
        ].filter((line) => line !== "");
        process.stdout.write(lines.join("\n") + "\n");
      }
      const stop = async (signal: string) => {
        log.info(`received ${signal}, shutting down`);
        removeEndpoint(config.dataDir);
        // Running turns get turns.stopGraceSeconds to finish; a second signal stops at once.
        process.once(signal as NodeJS.Signals, () => void runtime.close().then(() => process.exit(0)));
        await runtime.stop();
        process.exit(0);
      };
      process.once("SIGINT", () => void stop("SIGINT"));
      process.once("SIGTERM", () => void stop("SIGTERM"));
    });
}
