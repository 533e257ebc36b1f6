import type { ModuleContext, ModuleFactory, RuntimeModule } from "../module.js";
import { loadPortalAssets } from "./assets.js";
import { portalRoutes } from "./http.js";
import { PortalSockets } from "./ws.js";
import { SessionCookies } from "./session-cookie.js";
import { CredentialLimiter, FailureLimiter } from "../http/rate-limit.js";
import { allowedOrigins } from "./origin.js";
import { ensurePortalTokens, portalTokenPaths } from "./tokens.js";
import { spawnTerminal } from "./pty.js";
import { listClients, paneState, respawnPane, sessionExists, type TmuxTarget } from "./tmux.js";
import type { ConnectionStats } from "./connection.js";
import { portalCommandWithBrain } from "../cli/brain-mcp.js";

export interface PortalStatus {
  session: string;
  sessionExists: boolean;
  tmuxClients: number;
  /** tmux client processes the portal spawned that still exist (released ones included until they exit). */
  terminals: number;
  clients: ConnectionStats[];
  assets: "prebuilt" | "built-at-startup";
  readOnlyToken: boolean;
  /** The session's command: `dead` once it exited (the pane is kept with its last output), with its exit status. */
  command: { dead: boolean; exitStatus: number | null } | null;
}

export interface PortalModule extends RuntimeModule {
  name: "portal";
  status(): Promise<PortalStatus>;
  target: TmuxTarget;
}

/** Mounts the portal in the runtime: page + API routes and the `/portal/ws` upgrade. */
export const mountPortal: ModuleFactory = async (ctx: ModuleContext): Promise<PortalModule> => {
  const cfg = ctx.config.portal;
  const log = ctx.log.child("portal");
  const tokens = ensurePortalTokens(ctx.config.dataDir, cfg.readOnlyToken);
  if (tokens.created) log.info("portal token created", { file: portalTokenPaths(ctx.config.dataDir).readWrite });
  const assets = await loadPortalAssets(cfg.assetsDir);
  const cookies = new SessionCookies(tokens, cfg.cookieMaxAgeSeconds);
  const limiter = new CredentialLimiter("portal", new FailureLimiter(cfg.authFailureLimit, cfg.authFailureWindowSeconds * 1000));
  let cached: { port: number; set: ReadonlySet<string> } | undefined;
  // The port is known only once the server listens (0 picks one), so derive lazily.
  const origins = () => {
    const port = Number(new URL(ctx.baseUrl()).port);
    if (!cached || cached.port !== port) cached = { port, set: allowedOrigins(ctx.config.server.hosts, port, ctx.config.server.allowedOrigins) };
    return cached.set;
  };
  const target: TmuxTarget = {
    session: cfg.session,
    // The brain's MCP tools for the session's Claude Code (cli/brain-mcp.ts), when the brain is on.
    // Local mode only: there the session runs as the runtime's user, who owns the data dir; on a
    // host the session user may not read <dataDir> (register with `picortex brain mcp install`).
    command: ctx.config.brain.enabled && ctx.config.mode === "local" ? portalCommandWithBrain(cfg.command, ctx.config.dataDir) : cfg.command,
    cwd: cfg.cwd,
    socket: cfg.tmuxSocket,
    config: cfg.tmuxConfig,
    windowSize: cfg.windowSize,
    runAs: cfg.runAs,
  };
  const sockets = new PortalSockets({
    cookies,
    limiter,
    origins,
    target,
    spawn: spawnTerminal,
    maxClients: cfg.maxClients,
    historyLines: cfg.scrollbackLines,
    highWatermarkBytes: cfg.highWatermarkBytes,
    lowWatermarkBytes: cfg.lowWatermarkBytes,
    heartbeatSeconds: cfg.heartbeatSeconds,
    stalledTimeoutSeconds: cfg.stalledTimeoutSeconds,
    idleTimeoutSeconds: cfg.idleTimeoutSeconds,
    log,
  });
  const status = async (): Promise<PortalStatus> => ({
    session: cfg.session,
    sessionExists: await sessionExists(target),
    tmuxClients: (await listClients(target)).length,
    terminals: sockets.terminalCount,
    clients: sockets.stats(),
    assets: assets.source,
    readOnlyToken: tokens.readOnly !== undefined,
    command: await paneState(target).then((p) => (p ? { dead: p.dead, exitStatus: p.status } : null)),
  });
  return {
    name: "portal",
    target,
    status,
    routes: portalRoutes({
      assets,
      tokens,
      cookies,
      limiter,
      origins,
      cookieMaxAgeSeconds: cfg.cookieMaxAgeSeconds,
      secureCookie: cfg.secureCookie,
      session: cfg.session,
      apiAuth: ctx.apiAuth,
      status,
      restart: () => respawnPane(target),
      log,
    }),
    upgrade: (req, socket, head) => sockets.handleUpgrade(req, socket, head),
    // Closing the portal detaches its tmux clients; the session and agent keep running.
    close: () => sockets.close(),
  };
};
