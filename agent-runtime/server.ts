import { createServer, type Server } from "node:http";
import { join } from "node:path";
import type { RuntimeConfig } from "./config/schema.js";
import { Router, notFoundHandler, sendJson } from "./http/router.js";
import { ApiTokenGuard } from "./http/api-token-guard.js";
import { openDatabase } from "./store/database.js";
import { apiTokenPath, ensureTokenFile } from "./store/token-file.js";
import { createLogger, type Logger } from "./log.js";
import type { ModuleContext, RuntimeModule } from "./module.js";
import type { RuntimeSecrets } from "./config/secrets.js";
import { mountPortal } from "./portal/module.js";
import { mountTurns } from "./turns/module.js";
import { mountBrain } from "./brain/module.js";

export const RUNTIME_VERSION = "0.1.0";

export interface RunningRuntime {
  config: RuntimeConfig;
  urls: string[];
  port: number;
  apiToken: string;
  tokenCreated: boolean;
  modules: RuntimeModule[];
  close(): Promise<void>;
}

/** Reads the API token, creating it (0600, atomically) on first start. */
export function ensureApiToken(dataDir: string): { token: string; created: boolean } {
  // 16 characters is the floor the deploy accepts for an operator-chosen token.
  return ensureTokenFile(apiTokenPath(dataDir), "pct_", 16);
}

export async function startRuntime(
  config: RuntimeConfig,
  log: Logger = createLogger(),
  secrets: RuntimeSecrets = {},
): Promise<RunningRuntime> {
  const db = openDatabase(join(config.dataDir, "runtime.sqlite"));
  const { token: apiToken, created } = ensureApiToken(config.dataDir);
  let port = config.server.port;
  const ctx: ModuleContext = {
    config,
    db,
    log,
    apiAuth: new ApiTokenGuard(apiToken),
    secrets,
    baseUrl: () => `http://${config.server.hosts[0]!.includes(":") ? `[${config.server.hosts[0]}]` : config.server.hosts[0]}:${port}`,
  };
  const factories = [
    config.turns.enabled ? mountTurns : undefined,
    config.brain.enabled ? mountBrain : undefined,
    config.portal.enabled ? mountPortal : undefined,
  ].filter((f) => f !== undefined);
  const modules: RuntimeModule[] = [];
  for (const factory of factories) modules.push(await factory(ctx));

  const router = new Router((m) => log.error(m));
  router.add({
    method: "GET",
    path: "/healthz",
    handler: () => ({ ok: true, version: RUNTIME_VERSION, mode: config.mode, modules: modules.map((m) => m.name) }),
  });
  for (const m of modules) if (m.routes) router.add(...m.routes);

  const servers: Server[] = [];
  const listenOn = async (host: string, wantPort: number): Promise<number> => {
    const server = createServer((req, res) => {
      router.handle(req, res).then(
        (handled) => {
          if (!handled) notFoundHandler(res, new URL(req.url ?? "/", "http://x").pathname);
        },
        (err) => sendJson(res, 500, { error: { code: "internal", message: String(err) } }),
      );
    });
    server.on("upgrade", (req, socket, head) => {
      for (const m of modules) if (m.upgrade?.(req, socket, head)) return;
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
    });
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(wantPort, host, () => resolve());
    });
    const addr = server.address();
    return typeof addr === "object" && addr ? addr.port : wantPort;
  };
  for (const host of config.server.hosts) port = await listenOn(host, port);
  for (const m of modules) await m.start?.();

  const urls = config.server.hosts.map((h) => `http://${h.includes(":") ? `[${h}]` : h}:${port}`);
  return {
    config,
    urls,
    port,
    apiToken,
    tokenCreated: created,
    modules,
    async close() {
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
    },
  };
}
