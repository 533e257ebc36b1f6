import { createServer, type Server } from "node:http";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { HostAllowlist } from "./http/host-check.js";
import type { RuntimeConfig } from "./config/schema.js";
import { Router, notFoundHandler, sendJson } from "./http/router.js";
import { ApiTokenGuard } from "./http/api-token-guard.js";
import { openRuntimeState } from "./store/data-dir.js";
import { DiskHealth } from "./store/disk.js";
import { createLogger, type Logger } from "./log.js";
import type { ModuleContext, RuntimeModule } from "./module.js";
import type { RuntimeSecrets } from "./config/secrets.js";
import { mountPortal } from "./portal/module.js";
import { mountTurns } from "./turns/module.js";
import { mountBrain } from "./brain/module.js";
import { mountBridges } from "./bridges/module.js";
import { mountChatView } from "./portal/chat-view.js";
import type { TurnsModule } from "./turns/module.js";
import { checkInheritedPort, enforceSourceAllowlist, listenOnFd, takeListenFds, type ListenFdName } from "./http/listen-fds.js";

export const RUNTIME_VERSION = "0.1.0";

export interface RunningRuntime {
  config: RuntimeConfig;
  urls: string[];
  port: number;
  apiToken: string;
  tokenCreated: boolean;
  modules: RuntimeModule[];
  /** Clean stop: let modules finish in-flight work (bounded by their grace periods), then close. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The data dir holds the database and the tokens: 0700, and the database 0600, whatever
 * was there before (an older runtime, a hand-made 0755 dir, a 0644 file). SQLite creates
 * its -wal and -shm files with the database file's mode. Runs after the state checks
 * (openRuntimeState), so it never creates an empty database in place of a lost one.
 */
export function makePrivate(dataDir: string, dbPath: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  closeSync(openSync(dbPath, "a", 0o600));
  for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
}

export interface StartOptions {
  /** Initialise a missing database or API token even though the data dir has held state. */
  init?: boolean;
  /**
   * Listeners inherited from systemd socket activation (http/listen-fds.ts). Default: taken
   * from this process's LISTEN_FDS, if any; then the runtime binds none of its own.
   */
  listenFds?: Map<ListenFdName, number>;
}

export async function startRuntime(
  config: RuntimeConfig,
  log: Logger = createLogger(),
  secrets: RuntimeSecrets = {},
  options: StartOptions = {},
): Promise<RunningRuntime> {
  const listenFds = options.listenFds ?? takeListenFds();
  // Refuses (DataDirError) a data dir whose database or token went missing or is damaged.
  const { db, apiToken, tokenCreated: created, fresh, exclusive } = openRuntimeState(config.dataDir, { init: options.init, prepare: (dbPath) => makePrivate(config.dataDir, dbPath) });
  if (fresh) log.info("initialised a new runtime data dir", { dataDir: config.dataDir });
  const disk = new DiskHealth(config.dataDir);
  if (exclusive) {
    disk.classify(Object.assign(new Error("disk full at start"), { code: "SQLITE_FULL" }));
    log.warn("disk full at start: the database is open in exclusive mode (reads work, writes fail with 507 until there is room); restart once space is back so `picortex backup` and `brain token` can open it", { dataDir: config.dataDir });
  }
  let port = config.server.port;
  const ctx: ModuleContext = {
    config,
    db,
    disk,
    log,
    apiAuth: new ApiTokenGuard(apiToken),
    secrets,
    listenFds,
    baseUrl: () => `http://${config.server.hosts[0]!.includes(":") ? `[${config.server.hosts[0]}]` : config.server.hosts[0]}:${port}`,
  };
  const factories = [
    config.turns.enabled ? mountTurns : undefined,
    config.brain.enabled ? mountBrain : undefined,
    config.portal.enabled ? mountPortal : undefined,
    config.portal.enabled && config.turns.enabled
      ? (c: ModuleContext) => mountChatView(c, modules.find((m) => m.name === "turns") as TurnsModule)
      : undefined,
    config.bridges.telegram.enabled || config.bridges.webhook.enabled
      ? (c: ModuleContext) => mountBridges(c, modules.find((m) => m.name === "turns") as TurnsModule | undefined)
      : undefined,
  ].filter((f) => f !== undefined);
  const modules: RuntimeModule[] = [];
  for (const factory of factories) modules.push(await factory(ctx));

  // A full disk fails the write that hit it with 507, mapped here once for every module.
  const router = new Router((m) => log.error(m), (err) => disk.classify(err));
  router.add({
    method: "GET",
    path: "/healthz",
    // `ok` is "the process serves"; a full disk is reported beside it (reads still work),
    // so a deploy's health gate does not roll back a release for lack of space.
    handler: () => ({ ok: true, version: RUNTIME_VERSION, mode: config.mode, modules: modules.map((m) => m.name), disk: disk.status() }),
  });
  for (const m of modules) if (m.routes) router.add(...m.routes);
  // The banner prints the bare address: a browser opening it lands on the portal.
  if (modules.some((m) => m.name === "portal"))
    router.add({
      method: "GET",
      path: "/",
      handler: (ctx) => {
        ctx.res.writeHead(302, { location: "/portal/", "cache-control": "no-store" });
        ctx.res.end();
      },
    });

  const servers: Server[] = [];
  const hostNames = HostAllowlist.fromConfig(config.server);
  const wrongHost = "This runtime does not answer to that Host name; add it to server.allowedHosts if it is really yours.";
  const listenOn = async (host: string | { fd: number }, wantPort: number): Promise<number> => {
    const server = createServer((req, res) => {
      if (!hostNames.allows(req)) {
        sendJson(res, 421, { error: { code: "misdirected_request", message: wrongHost } });
        return;
      }
      router.handle(req, res).then(
        (handled) => {
          if (!handled) notFoundHandler(res, new URL(req.url ?? "/", "http://x").pathname);
        },
        (err) => {
          const full = disk.classify(err);
          sendJson(res, full ? 507 : 500, { error: full ? { code: full.code, message: full.message } : { code: "internal", message: String(err) } });
        },
      );
    });
    server.on("upgrade", (req, socket, head) => {
      if (!hostNames.allows(req)) {
        socket.end("HTTP/1.1 421 Misdirected Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      for (const m of modules) if (m.upgrade?.(req, socket, head)) return;
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
    });
    servers.push(server);
    if (typeof host === "object") {
      // The dual-stack wildcard socket unit: only loopback and tailnet sources are served.
      enforceSourceAllowlist(server, "api", (address) => log.warn("api: closed connections from outside loopback and the tailnet", { address }));
      return listenOnFd(server, host.fd);
    }
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(wantPort, host, () => resolve());
    });
    const addr = server.address();
    return typeof addr === "object" && addr ? addr.port : wantPort;
  };
  // Socket-activated (a host): the one inherited wildcard listener covers every address,
  // and config.server.hosts only name the runtime (URLs, Host allowlist). Otherwise each
  // configured host is bound here.
  if (listenFds) {
    port = await listenOn({ fd: listenFds.get("api")! }, port);
    checkInheritedPort("api", port, config.server.port);
  } else for (const host of config.server.hosts) port = await listenOn(host, port);
  for (const m of modules) await m.start?.();

  const urls = config.server.hosts.map((h) => `http://${h.includes(":") ? `[${h}]` : h}:${port}`);
  const close = async () => {
    for (const m of [...modules].reverse()) await m.close();
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
    db.close();
  };
  return {
    config,
    urls,
    port,
    apiToken,
    tokenCreated: created,
    modules,
    async stop() {
      await Promise.all(modules.map((m) => m.drain?.()));
      await close();
    },
    close,
  };
}
