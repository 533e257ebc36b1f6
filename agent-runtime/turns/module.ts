import { readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveApiKeyFile, resolveClaudePath } from "../config/turns.js";
import type { ModuleFactory, RuntimeModule } from "../module.js";
import type { ChatHost } from "./chat-host.js";
import { TurnEngine } from "./engine.js";
import { TurnEvents } from "./events.js";
import { GATEWAY_PREFIX, gatewayRoutes } from "./gateway.js";
import { HostChatHost } from "./host-chat-host.js";
import { LocalChatHost } from "./local-chat-host.js";
import { turnsRoutes } from "./routes.js";
import { TurnStore } from "./store.js";
import { WarmPool } from "./warm-pool.js";

export interface TurnsModule extends RuntimeModule {
  engine: TurnEngine;
  store: TurnStore;
  host: ChatHost;
  warm: WarmPool | undefined;
}

/**
 * Reads the real key once; it stays in this closure (never in a chat's env or files).
 * A configured key file (or the systemd credential) wins over a key from the environment.
 */
function keyReader(keyFile: string | undefined, fromEnv: string | undefined): () => string {
  let cached: string | undefined;
  return () => {
    if (cached) return cached;
    if (!keyFile && fromEnv) return (cached = fromEnv);
    if (!keyFile) {
      throw new Error(
        "picortex has no Anthropic API key: export ANTHROPIC_API_KEY before `npm start`, set turns.apiKeyFile, or give the unit the anthropic-api-key credential.",
      );
    }
    try {
      cached = readFileSync(keyFile, "utf8").trim();
    } catch (err) {
      throw new Error(`picortex cannot read the Anthropic API key file ${keyFile}: ${(err as Error).message}`);
    }
    if (!cached) throw new Error(`The Anthropic API key file ${keyFile} is empty.`);
    return cached;
  };
}

export const mountTurns: ModuleFactory = (ctx): TurnsModule => {
  const cfg = ctx.config.turns;
  const log = ctx.log.child("turns");
  const store = new TurnStore(ctx.db);
  const claudePath = resolveClaudePath(ctx.config.mode, cfg.claudePath);
  const host: ChatHost =
    ctx.config.mode === "host" ? new HostChatHost(claudePath, cfg.chatsRoot, cfg.chatUserHelper) : new LocalChatHost(claudePath, join(ctx.config.dataDir, "chats"));
  const events = new TurnEvents();
  const warm = cfg.warm.enabled && cfg.warm.maxWarm > 0 ? new WarmPool(host, cfg.warm, cfg.killGraceSeconds * 1000, log) : undefined;
  const engine = new TurnEngine(store, host, cfg, events, log, warm);
  const realKey = keyReader(resolveApiKeyFile(cfg.apiKeyFile), ctx.secrets.anthropicApiKey);
  const routes = [
    ...gatewayRoutes({ store, upstreamBaseUrl: cfg.upstreamBaseUrl, realKey, log }),
    ...turnsRoutes({
      store,
      engine,
      events,
      host,
      warm,
      apiAuth: ctx.apiAuth,
      dataDir: ctx.config.dataDir,
      baseUrl: ctx.baseUrl,
      onDelete: cfg.onDelete,
      defaultBudgetTokens: cfg.defaultBudgetTokens,
      maxTextBytes: cfg.maxTextBytes,
      log,
    }),
  ];
  return {
    name: "turns",
    routes,
    engine,
    store,
    host,
    warm,
    async start() {
      for (const chat of store.listChats()) if (chat.status === "ready") host.refreshGateway?.(chat.id, ctx.baseUrl() + GATEWAY_PREFIX);
      await engine.recover();
      engine.kick();
    },
    async close() {
      await engine.close();
    },
  };
};
