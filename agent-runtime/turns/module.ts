import { readFileSync } from "node:fs";
import { checkInheritedPort } from "../http/listen-fds.js";
import { join } from "node:path";
import { resolveApiKeyFile, resolveClaudePath } from "../config/turns.js";
import { ANTHROPIC_KEY_PATH } from "../host/contract.js";
import type { ModuleFactory, RuntimeModule } from "../module.js";
import type { ChatHost } from "./host/chat-host.js";
import { TurnEngine } from "./engine/engine.js";
import { TurnError } from "./errors.js";
import { TurnEvents } from "./events.js";
import { BudgetLedger, startGatewayServer, type GatewayServer } from "./http/gateway.js";
import { HostChatHost } from "./host/host-chat-host.js";
import { LocalChatHost } from "./host/local-chat-host.js";
import { chatBrainMcp } from "../cli/brain-mcp.js";
import { BrainWiredChatHost } from "./host/chat-brain.js";
import { hostChatBrain } from "./host/host-chat-brain.js";
import { Provisioner } from "./engine/provisioner.js";
import { turnsRoutes } from "./http/routes.js";
import { ChatService } from "./chat-service.js";
import { TurnStore } from "./store.js";
import { WarmPool } from "./engine/warm-pool.js";
import { AGENT_PRINCIPAL, AGENT_TOKEN_HASH_FILE, DEFAULT_HOST_GATEWAY_PORT, readAgentTokenHash } from "../host/agent-key.js";
import type { Route } from "../http/router.js";
import { APPROVALS_SERVER, approvalRoutes, approvalsMcpServer, type ApprovalBroker } from "./approvals.js";
import { CHAT_BRAIN_MCP_PATH } from "../brain/server/mcp-http.js";

/** The key gateway's port on a host (loopback only; the API is on 7420); host/agent-key.ts. */
export { DEFAULT_HOST_GATEWAY_PORT };

export interface TurnsModule extends RuntimeModule {
  engine: TurnEngine;
  provisioner: Provisioner;
  store: TurnStore;
  host: ChatHost;
  warm: WarmPool | undefined;
  /** Budget reservations of the gateway's requests in flight. */
  ledger: BudgetLedger;
  /** The URL chats use for the key gateway. */
  gatewayUrl(): string;
  /** Per-turn progress (and, with subscribeAll, every turn's) for in-process consumers such as the bridges. */
  events: TurnEvents;
  /** The chat workflows, for every caller: the API routes, the portal chat view, the bridges. */
  chats: ChatService;
  /** Registers who decides tool approvals (the bridges, before start); turns/approvals.ts. */
  setApprovals(broker: ApprovalBroker): void;
}

/** Where the deploy installs the key on a host (templates/render-units.ts ANTHROPIC_KEY_PATH), for messages. */
const HOST_KEY_SOURCE = ANTHROPIC_KEY_PATH;

/**
 * Reads the real key once; it stays in this closure (never in a chat's env or files).
 * A configured key file (or the systemd credential) wins over a key from the environment.
 * Every failure is a message a person can act on: the gateway hands it to the chat's
 * CLI as an authentication error, so it is what `chat send` shows.
 */
function keyReader(keyFile: string | undefined, fromEnv: string | undefined, mode: "host" | "local"): () => string {
  let cached: string | undefined;
  const fix =
    mode === "host"
      ? `set the workspace stack's picortex:anthropicApiKey (installed as ${HOST_KEY_SOURCE}, root 0600) and run \`pulumi up\`, or write the key there and restart picortex-runtime`
      : "export ANTHROPIC_API_KEY before `npm start` (or set turns.apiKeyFile), then restart the runtime";
  return () => {
    if (cached) return cached;
    if (!keyFile && fromEnv) return (cached = fromEnv);
    if (!keyFile) throw new Error(`no Anthropic API key configured: ${fix}.`);
    try {
      cached = readFileSync(keyFile, "utf8").trim();
    } catch (err) {
      throw new Error(`no Anthropic API key configured: cannot read ${keyFile} (${(err as Error).message}); ${fix}.`);
    }
    if (!cached) throw new Error(`no Anthropic API key configured: ${keyFile} is empty; ${fix}.`);
    return cached;
  };
}

export const mountTurns: ModuleFactory = (ctx): TurnsModule => {
  const cfg = ctx.config.turns;
  const log = ctx.log.child("turns");
  const store = new TurnStore(ctx.db, ctx.disk);
  const claudePath = resolveClaudePath(ctx.config.mode, cfg.claudePath);
  let gateway: GatewayServer | undefined;
  // Host mode: chats reach the brain's MCP tools on the gateway listener with per-chat tokens.
  const chatBrain = ctx.config.mode === "host" && ctx.config.brain.enabled ? hostChatBrain(ctx, store, () => gateway?.port, () => agentTokenHash) : undefined;
  const host: ChatHost =
    ctx.config.mode === "host"
      ? (() => {
          const hostHost = new HostChatHost(claudePath, cfg.chatsRoot, cfg.chatUserHelper);
          return chatBrain ? new BrainWiredChatHost(hostHost, chatBrain.tokens, { headersFile: (id) => hostHost.brainHeadersFile(id), mcpPath: CHAT_BRAIN_MCP_PATH }) : hostHost;
        })()
      : new LocalChatHost(claudePath, join(ctx.config.dataDir, "chats"), ctx.config.brain.enabled ? chatBrainMcp(ctx.config.dataDir, ctx.config.brain.workspaceId) : undefined);
  const events = new TurnEvents();
  const warm = cfg.warm.enabled && cfg.warm.maxWarm > 0 ? new WarmPool(host, cfg.warm, cfg.killGraceSeconds * 1000, log) : undefined;
  const realKey = keyReader(resolveApiKeyFile(cfg.apiKeyFile), ctx.secrets.anthropicApiKey, ctx.config.mode);
  // No key: the turn fails at once with the key reader's message (read again per turn, so a
  // key file written later counts), instead of after Claude Code's start-up.
  const engine = new TurnEngine(store, host, cfg, events, log, warm, () => {
    try {
      realKey();
    } catch (err) {
      throw new TurnError("not_configured", (err as Error).message);
    }
  });
  const ledger = new BudgetLedger();
  // Tool approvals: decided by the broker the bridges register; a chat asks only when it has
  // approvers, pointing its CLI at the approval tool on this gateway with its own token.
  let approvalBroker: ApprovalBroker | undefined;
  engine.policy = (chatId) => {
    if (!gateway) return {};
    const governed = approvalBroker?.policyFor(chatId);
    const ask = governed?.ask === true;
    // The CLI gives up on an MCP tool call after 60 s by default: an approval may take longer.
    const env: Record<string, string> = ask ? { MCP_TOOL_TIMEOUT: String(governed.timeoutMs + 60_000) } : {};
    // No user-scope config is read (claude-args.ts): the runtime names every MCP server itself.
    const servers = { ...host.mcpServers(chatId, gateway.url), ...(ask ? { [APPROVALS_SERVER]: approvalsMcpServer(gateway.url, host.tokenFile(chatId)) } : {}) };
    return {
      settings: host.claudeSettings(chatId, gateway.url, env),
      ...(Object.keys(servers).length ? { mcpConfig: JSON.stringify({ mcpServers: servers }) } : {}),
      ...(governed?.allowedTools ? { allowedTools: governed.allowedTools } : {}),
      ...(ask ? { ask: true } : {}),
    };
  };
  // Chats reach the gateway on its own loopback listener, apart from the operator's API.
  // A host's chats keep the port in their settings, so it is fixed there (7419 by
  // default); local chats get their settings rewritten at start, so any free port does.
  const gatewayPort = cfg.gatewayPort ?? (ctx.config.mode === "host" ? DEFAULT_HOST_GATEWAY_PORT : 0);
  // Socket-activated (a host): picortex-runtime.socket holds the port (its second socket);
  // never bind it here, or a missing socket would quietly bring back the gap it closes.
  const gatewayListen = (): number | { fd: number } => (ctx.listenFds ? { fd: ctx.listenFds.get("gateway")! } : gatewayPort);
  const gatewayUrl = () => {
    if (!gateway) throw new Error("The key gateway is not listening yet.");
    return gateway.url;
  };
  // The portal agent's principal (host mode): the hash picortex-release wrote before this
  // start (host/agent-key.ts). Without one (local mode, a host not activated since) the
  // gateway has no agent principal; a damaged file is logged and leaves it out too, and
  // chats are unaffected either way.
  let agentEnabled = false;
  let agentTokenHash: string | undefined;
  const agentPrincipalConfig = () => {
    const file = join(ctx.config.dataDir, AGENT_TOKEN_HASH_FILE);
    try {
      const tokenHash = readAgentTokenHash(file);
      if (!tokenHash) return undefined;
      log.info("gateway: portal agent principal enabled", { hashFile: file, budgetTokens: cfg.agentBudgetTokens ?? null });
      agentEnabled = true;
      agentTokenHash = tokenHash;
      return { tokenHash, budgetTokens: cfg.agentBudgetTokens ?? null };
    } catch (err) {
      log.error("gateway: no portal agent principal", { error: (err as Error).message });
      return undefined;
    }
  };
  const provisioner = new Provisioner(store, host, gatewayUrl, () => engine.kick(), log, cfg.maxParallelProvision);
  // The portal agent's gateway usage, for the operator (the agent's token is no API token).
  const agentUsageRoute: Route = {
    method: "GET",
    path: "/v1/gateway/agent",
    handler: (c) => {
      ctx.apiAuth.check(c.req);
      const u = store.principalUsage(AGENT_PRINCIPAL);
      return { enabled: agentEnabled, usedInputTokens: u.input, usedOutputTokens: u.output, budgetTokens: cfg.agentBudgetTokens ?? null, reservedTokens: ledger.reservedFor(AGENT_PRINCIPAL) };
    },
  };
  const chats = new ChatService({
    store,
    kick: () => engine.kick(),
    provisioner,
    events,
    host,
    warm,
    dataDir: ctx.config.dataDir,
    onDelete: cfg.onDelete,
    defaultBudgetTokens: cfg.defaultBudgetTokens,
  });
  const routes = [
    agentUsageRoute,
    ...turnsRoutes({
      chats,
      apiAuth: ctx.apiAuth,
      maxTextBytes: cfg.maxTextBytes,
      // `chat create` warns when turns cannot run (issue 16 item 1): the key reader's own message.
      warnings: () => {
        try {
          realKey();
          return [];
        } catch (err) {
          return [`turns cannot run yet: ${(err as Error).message}`];
        }
      },
    }),
  ];
  return {
    name: "turns",
    routes,
    engine,
    provisioner,
    store,
    host,
    warm,
    ledger,
    gatewayUrl,
    events,
    chats,
    setApprovals(broker) {
      approvalBroker = broker;
    },
    async start() {
      try {
        chats.pruneIdempotency();
      } catch (err) {
        if (!ctx.disk.classify(err)) throw err; // a full disk: prune next time
      }
      gateway = await startGatewayServer({ store, upstreamBaseUrl: cfg.upstreamBaseUrl, realKey, log, ledger, agent: agentPrincipalConfig(), extraRoutes: [...(chatBrain?.routes ?? []), ...approvalRoutes({ store, broker: () => approvalBroker })] }, gatewayListen());
      if (ctx.listenFds) checkInheritedPort("gateway", gateway.port, gatewayPort);
      for (const chat of store.listChats()) {
        if (chat.status !== "ready") continue;
        host.refreshGateway?.(chat.id, gateway.url);
        // A replaced server (data volume kept): the chat's home is here, its user is not.
        if (!host.readopt) continue;
        try {
          if (await host.readopt(chat.id)) log.info("chat user re-created for its kept home (server replaced?)", { chatId: chat.id });
        } catch (err) {
          log.error("could not re-create a ready chat's missing user; its turns will fail", { chatId: chat.id, error: (err as Error).message });
        }
      }
      await engine.recover();
      engine.kick();
      // Chats a crash left `provisioning`: resumed in the background, through the queue.
      void provisioner.resumeAll();
    },
    async drain() {
      await engine.drain(cfg.stopGraceSeconds * 1000);
    },
    async close() {
      provisioner.close();
      await engine.close();
      await gateway?.close();
      chatBrain?.store.close();
    },
  };
};
