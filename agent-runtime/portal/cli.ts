import type { Command } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { apiTokenPath } from "../store/token-file.js";
import { ConfigError, loadRuntimeConfig, parsePort } from "../config/load.js";
import { fail as shellFail, out } from "../cli/shell.js";
import { endpointRecordProblem, readLiveEndpoint, wrongTokenMessage } from "../cli/endpoint.js";
import { ensureWritableDataDir } from "../cli/serve.js";
import { DATA_DIR_NAME, isRuntimeDataDir } from "../config/data-dir.js";
import type { RuntimeConfig } from "../config/schema.js";
import { createLogger } from "../log.js";
import { ensurePortalTokens, portalTokenPaths } from "./tokens.js";
import { detectTailnetAddress, logfilePath, processAlive, readPidfile, runPortalForeground, startDetached, stopPortal } from "../cli/portal-standalone.js";

/**
 * `picortex portal start|status|stop|token`. The only portal code that prints or reads
 * flags; everything else receives a parsed config.
 */
interface CommonOptions {
  config?: string;
  dataDir?: string;
  json?: boolean;
}
interface StartOptions extends CommonOptions {
  port?: string;
  host?: string[];
  session?: string;
  command?: string;
  cwd?: string;
  readOnlyToken?: boolean;
  tmuxSocket?: string;
  foreground?: boolean;
}
interface TokenOptions extends CommonOptions {
  readOnly?: boolean;
}

function fail(err: unknown, json: boolean | undefined): never {
  return shellFail(err, { prefix: "picortex portal", json });
}

function loadConfig(opts: StartOptions, hosts?: string[]): RuntimeConfig {
  return loadRuntimeConfig({
    file: opts.config,
    overrides: {
      dataDir: opts.dataDir,
      server: { hosts, port: opts.port === undefined ? undefined : parsePort(opts.port, "--port") },
      // A standalone portal mounts only the portal.
      turns: { enabled: false },
      brain: { enabled: false },
      portal: {
        enabled: true,
        session: opts.session,
        // Split on whitespace only, never through a shell; use a config file for argv with spaces.
        command: opts.command === undefined ? undefined : opts.command.trim().split(/\s+/),
        cwd: opts.cwd,
        readOnlyToken: opts.readOnlyToken,
        tmuxSocket: opts.tmuxSocket,
      },
    },
  });
}

function links(urls: string[], token: string): string[] {
  // The token rides in the #fragment: browsers never send it to the server, so it cannot
  // land in a request line, a Referer or an access log.
  return urls.map((u) => `${u}/portal/#token=${encodeURIComponent(token)}`);
}

function configuredUrls(config: RuntimeConfig): string[] {
  return config.server.hosts.map((h) => `http://${h.includes(":") ? `[${h}]` : h}:${config.server.port}`);
}

/**
 * Where the portal is served right now: a standalone `portal start` (portal.pid) or a
 * `picortex serve` with the portal mounted (the endpoint record, endpoint.json).
 */
function livePortal(dataDir: string): { pid: number; urls: string[]; via: "portal start" | "serve" } | undefined {
  const standalone = readPidfile(dataDir);
  if (standalone && processAlive(standalone.pid)) return { pid: standalone.pid, urls: standalone.urls, via: "portal start" };
  const serve = readLiveEndpoint(dataDir);
  if (serve && serve.modules.includes("portal")) return { pid: serve.pid, urls: serve.urls, via: "serve" };
  return undefined;
}

/** Client commands never create a data dir: from another folder they would mint tokens no runtime reads. */
function requireDataDir(config: RuntimeConfig): void {
  if (!isRuntimeDataDir(config.dataDir)) {
    throw new ConfigError(
      `No picortex runtime data dir at ${config.dataDir} (and no runtime's ${DATA_DIR_NAME} folder above the current one). Run this in the folder where you ran \`npm start\` or \`picortex portal start\`, or pass --data-dir DIR (or PICORTEX_DATA_DIR).`,
    );
  }
}

/**
 * A data dir whose endpoint record names a runtime that does not take this data dir's API
 * token (a copied or hand-edited record, another runtime's folder) would get a portal token
 * that runtime never accepts: refuse before minting one. An unreachable runtime is not
 * proof of anything, so only a 401 refuses.
 */
async function requireOwnRuntime(dataDir: string): Promise<void> {
  const serve = readLiveEndpoint(dataDir);
  // The API token goes only to a record the runtime itself wrote (cli/endpoint.ts).
  if (!serve || endpointRecordProblem(dataDir, serve)) return;
  const tokenPath = apiTokenPath(dataDir);
  const apiToken = existsSync(tokenPath) ? readFileSync(tokenPath, "utf8").trim() : "";
  const res = await fetch(`${serve.url}/portal/api/status`, { headers: { authorization: `Bearer ${apiToken}` }, signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
  if (res?.status === 401) {
    throw new ConfigError(
      `The runtime this data dir's endpoint record names (pid ${serve.pid} on ${serve.url}) does not take its API token (${tokenPath}): it is another runtime's, and would reject a portal token minted here. Pass --data-dir with the data dir that runtime uses (\`npm start\` prints it), or start this one's own runtime.`,
    );
  }
}

export function registerPortalCommands(program: Command): void {
  const portal = program
    .command("portal")
    .description("Browser terminal into the agent's tmux session (xterm.js over a WebSocket, cookie + Origin auth).");

  portal
    .command("start")
    .description("Start a standalone portal server (detached; pidfile and log in the data dir).")
    .option("-c, --config <file>", "JSON runtime config file")
    .option("--data-dir <dir>", "where tokens, pidfile and log live (default: $PICORTEX_DATA_DIR, else the nearest .picortex here or above, else ./.picortex)")
    .option("--port <port>", "port to listen on (default: 7420)")
    .option("--host <address...>", "addresses to bind (default: 127.0.0.1 plus the tailnet address when tailscale is up; never 0.0.0.0)")
    .option("--session <name>", "tmux session name (default: picortex)")
    .option("--command <cmd>", 'command tmux runs when it creates the session, split on spaces (default: "claude")')
    .option("--cwd <dir>", "working directory of the session's command")
    .option("--read-only-token", "also create and accept a read-only viewer token")
    .option("--tmux-socket <path>", "private tmux server socket (tmux -S) instead of the default server")
    .option("--foreground", "run in this process instead of detaching (for systemd or debugging)")
    .option("--json", "print the result as one JSON line")
    .action(async (opts: StartOptions) => {
      try {
        let hosts = opts.host;
        if (!hosts && !opts.config) {
          const tailnet = await detectTailnetAddress();
          hosts = tailnet ? ["127.0.0.1", tailnet] : ["127.0.0.1"];
        }
        if (hosts?.some((h) => h === "0.0.0.0" || h === "::")) {
          throw new ConfigError("Refusing to bind the portal to every interface; pass the loopback and tailnet addresses with --host.");
        }
        const config = loadConfig(opts, hosts);
        // One portal per data dir: a `picortex serve` with the portal mounted already runs the
        // tmux session; a second server on it would fight over the same session and tokens.
        const serving = readLiveEndpoint(config.dataDir);
        if (serving?.modules.includes("portal")) {
          throw new ConfigError(
            `picortex serve (pid ${serving.pid}) already serves the portal for ${config.dataDir} on ${serving.urls.join(", ")}: open it with the link from \`picortex portal token\`, or stop that runtime first (or use another --data-dir).`,
          );
        }
        ensureWritableDataDir(config.dataDir);
        const tokens = ensurePortalTokens(config.dataDir, config.portal.readOnlyToken);
        if (opts.foreground) {
          const runtime = await runPortalForeground(config, createLogger("portal"));
          const summary = { pid: process.pid, urls: runtime.urls, session: config.portal.session, tokenFile: portalTokenPaths(config.dataDir).readWrite };
          out(opts.json ? JSON.stringify(summary) : `picortex portal listening on ${runtime.urls.join(", ")} (tmux session ${config.portal.session})`);
          return;
        }
        const running = readPidfile(config.dataDir);
        if (running && processAlive(running.pid)) throw new Error(`already running (pid ${running.pid}) on ${running.urls.join(", ")}`);
        const argv = process.argv.slice(process.argv.indexOf("start") + 1).filter((a) => a !== "--json");
        if (!opts.host && hosts) argv.push("--host", ...hosts);
        process.stderr.write("picortex portal: starting…\n");
        const started = await startDetached(config.dataDir, ["portal", "start", ...argv, "--foreground"]);
        const result = { ...started, tokenFile: portalTokenPaths(config.dataDir).readWrite, log: logfilePath(config.dataDir) };
        if (opts.json) out(JSON.stringify(result));
        else
          out(
            [
              `picortex portal started (pid ${started.pid}) on ${started.urls.join(", ")}, tmux session ${started.session}`,
              tokens.created ? "  a new portal token was created" : "",
              `  open it with the link from: picortex portal token${opts.dataDir ? ` --data-dir ${opts.dataDir}` : ""}`,
              `  log: ${result.log}`,
            ]
              .filter(Boolean)
              .join("\n"),
          );
      } catch (err) {
        fail(err, opts.json);
      }
    });

  portal
    .command("status")
    .description("Show whether the standalone portal runs, its addresses and its connected clients.")
    .option("-c, --config <file>", "JSON runtime config file")
    .option("--data-dir <dir>", "data dir of the portal (default: $PICORTEX_DATA_DIR, else the nearest .picortex here or above, else ./.picortex)")
    .option("--json", "print the status as one JSON line")
    .action(async (opts: CommonOptions) => {
      try {
        const config = loadConfig(opts);
        const record = readPidfile(config.dataDir);
        const current = livePortal(config.dataDir);
        const running = current !== undefined;
        let live: unknown;
        if (current) {
          const tokenPath = apiTokenPath(config.dataDir);
          const apiToken = existsSync(tokenPath) ? readFileSync(tokenPath, "utf8").trim() : "";
          const res = await fetch(`${current.urls[0]}/portal/api/status`, { headers: { authorization: `Bearer ${apiToken}` } }).catch(() => undefined);
          live = res?.ok
            ? await res.json()
            : { error: res?.status === 401 ? wrongTokenMessage({ dataDir: config.dataDir, url: current.urls[0]! }) : `status endpoint answered ${res?.status ?? "nothing"}` };
        }
        const stalePidfile = record !== undefined && !processAlive(record.pid);
        const status = { running, pid: current?.pid, urls: current?.urls ?? [], via: current?.via, stalePidfile, portal: live };
        if (opts.json) out(JSON.stringify(status));
        else if (!current) out(stalePidfile ? `not running (stale pidfile for pid ${record!.pid})` : "not running");
        else {
          const s = live as { sessionExists?: boolean; tmuxClients?: number; clients?: unknown[]; session?: string };
          out(
            `running (pid ${current.pid}, ${current.via === "serve" ? "in picortex serve" : "standalone"}) on ${current.urls.join(", ")}\n  tmux session ${s.session ?? "?"}: ${s.sessionExists ? "alive" : "not created yet"}, ${s.tmuxClients ?? 0} tmux clients, ${s.clients?.length ?? 0} browser connections`,
          );
        }
        if (!running) process.exitCode = 3;
      } catch (err) {
        fail(err, opts.json);
      }
    });

  portal
    .command("stop")
    .description("Stop the standalone portal (the tmux session and the agent keep running).")
    .option("-c, --config <file>", "JSON runtime config file")
    .option("--data-dir <dir>", "data dir of the portal (default: $PICORTEX_DATA_DIR, else the nearest .picortex here or above, else ./.picortex)")
    .option("--json", "print the result as one JSON line")
    .action(async (opts: CommonOptions) => {
      try {
        const config = loadConfig(opts);
        const result = await stopPortal(config.dataDir);
        if (opts.json) out(JSON.stringify(result));
        else out(result.stopped ? `stopped (pid ${result.pid})` : result.stale ? `was not running (removed stale pidfile for pid ${result.pid})` : "was not running");
      } catch (err) {
        fail(err, opts.json);
      }
    });

  portal
    .command("token")
    .description("Print the portal token (created on first use) and sign-in links that carry it after '#'.")
    .option("-c, --config <file>", "JSON runtime config file")
    .option("--data-dir <dir>", "data dir of the portal (default: $PICORTEX_DATA_DIR, else the nearest .picortex here or above, else ./.picortex)")
    .option("--read-only", "print the read-only viewer token instead (created if missing)")
    .option("--json", "print {token, links} as one JSON line")
    .action(async (opts: TokenOptions) => {
      try {
        const config = loadConfig(opts);
        requireDataDir(config);
        await requireOwnRuntime(config.dataDir);
        const tokens = ensurePortalTokens(config.dataDir, Boolean(opts.readOnly) || config.portal.readOnlyToken);
        const token = opts.readOnly ? tokens.readOnly! : tokens.readWrite;
        const current = livePortal(config.dataDir);
        const urls = current ? current.urls : configuredUrls(config);
        const result = { token, role: opts.readOnly ? "read-only" : "read-write", links: links(urls, token), running: current !== undefined };
        if (opts.json) out(JSON.stringify(result));
        else
          out(
            [
              token,
              ...result.links.map((l) => `  ${l}`),
              current ? "" : "  (no portal is running for this data dir; the links use the configured port: start it with `npm start` or `picortex portal start`)",
            ]
              .filter(Boolean)
              .join("\n"),
          );
      } catch (err) {
        fail(err, opts.json);
      }
    });
}
