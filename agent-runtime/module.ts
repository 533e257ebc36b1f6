import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { RuntimeConfig } from "./config/schema.js";
import type { Route } from "./http/router.js";
import type { Db } from "./store/database.js";
import type { Logger } from "./log.js";
import type { RuntimeSecrets } from "./config/secrets.js";
import type { ApiTokenGuard } from "./http/api-token-guard.js";
import type { DiskHealth } from "./store/disk.js";
import type { ListenFdName } from "./http/listen-fds.js";

/** What every runtime module (portal, turns, brain) receives: its dependencies, nothing global. */
export interface ModuleContext {
  config: RuntimeConfig;
  db: Db;
  /** Whether the data dir's disk is full; writers report failures to it, /healthz shows it. */
  disk: DiskHealth;
  log: Logger;
  /** Checks the API token on a request (constant time, failures rate-limited per client). */
  apiAuth: ApiTokenGuard;
  /** Secrets from the entry point's environment (e.g. ANTHROPIC_API_KEY in local mode). */
  secrets: RuntimeSecrets;
  /** Listeners inherited from systemd socket activation (a host), by name; undefined otherwise. */
  listenFds?: Map<ListenFdName, number>;
  /** Base URL the runtime listens on, for loopback callers such as the turn gateway. */
  baseUrl: () => string;
}

export interface RuntimeModule {
  name: string;
  routes?: Route[];
  /** Claims a WebSocket upgrade; returns true when it handled (or rejected) the request. */
  upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  /** Starts background work once the server listens (queue recovery, timers). */
  start?: () => Promise<void> | void;
  /** A clean stop begins (SIGTERM): finish in-flight work within the module's grace period. */
  drain?: () => Promise<void> | void;
  close(): Promise<void> | void;
}

export type ModuleFactory = (ctx: ModuleContext) => Promise<RuntimeModule> | RuntimeModule;
