import type { ChatFiles, ChatHost, ProvisionEvent, SpawnSpec } from "./chat-host.js";

/** A chat's brain credential: where its MCP client connects, and the token it presents. */
export interface ChatBrainCredential {
  url: string;
  token: string;
}

/** Issues and revokes per-chat brain tokens (brain/server/server-store.ts chat tokens). */
export interface ChatBrainTokens {
  /** A fresh token for the chat; any earlier one is revoked. */
  issue(chatId: string): ChatBrainCredential;
  revoke(chatId: string): void;
}

const SAFE_PATH = /^[A-Za-z0-9/_.-]+$/;

/**
 * The chat's user-scope Claude config (`$HOME/.claude.json`) in host mode: the brain as an
 * HTTP MCP server on the runtime's loopback gateway listener. The token is not in it:
 * `headersHelper` (run by the CLI through a shell, like apiKeyHelper) prints the header
 * JSON from a 0600 file in the chat's home, so it never appears in argv or in this file.
 * `alwaysLoad` connects it before the first request, so every turn is offered the tools.
 */
export function renderChatBrainClaudeJson(headersPath: string, url: string): string {
  return JSON.stringify({ mcpServers: { brain: chatBrainMcpServer(headersPath, url) } }, null, 2) + "\n";
}

/** The brain server entry itself (also passed with each turn's `--mcp-config`). */
export function chatBrainMcpServer(headersPath: string, url: string): Record<string, unknown> {
  if (!SAFE_PATH.test(headersPath)) throw new Error(`brain headers path ${headersPath} has characters unsafe in headersHelper`);
  const u = new URL(url);
  if (u.protocol !== "http:" || u.username || u.password || u.search) throw new Error(`brain MCP URL ${url} must be a plain http:// loopback URL`);
  return { type: "http", url, headersHelper: `cat ${headersPath}`, alwaysLoad: true };
}

/** What `headersHelper` prints: the header JSON carrying the chat's brain token. */
export function renderChatBrainHeaders(token: string): string {
  if (!/^[A-Za-z0-9_-]{16,512}$/.test(token)) throw new Error("brain token has an unexpected shape");
  return JSON.stringify({ Authorization: `Bearer ${token}` }) + "\n";
}

/**
 * Wires the brain into every chat a host makes: provisioning issues the chat a fresh
 * brain token (revoking any earlier one) and hands it to the host with the files;
 * removing the chat revokes its tokens first, whatever happens to the removal.
 */
export class BrainWiredChatHost implements ChatHost {
  readonly mode;
  readonly claudePath;
  readonly refreshGateway?: ChatHost["refreshGateway"];
  readonly transcriptHas?: ChatHost["transcriptHas"];
  readonly transcriptDamage?: ChatHost["transcriptDamage"];
  readonly readopt?: ChatHost["readopt"];

  constructor(
    readonly inner: ChatHost,
    private readonly tokens: ChatBrainTokens,
    /** Where provisioning puts a chat's brain header file, and the brain's MCP path on the gateway. */
    private readonly wiring: { headersFile(chatId: string): string; mcpPath: string },
  ) {
    this.mode = inner.mode;
    this.claudePath = inner.claudePath;
    if (inner.refreshGateway) this.refreshGateway = inner.refreshGateway.bind(inner);
    if (inner.transcriptHas) this.transcriptHas = inner.transcriptHas.bind(inner);
    if (inner.transcriptDamage) this.transcriptDamage = inner.transcriptDamage.bind(inner);
    if (inner.readopt) this.readopt = inner.readopt.bind(inner);
  }

  async provision(chatId: string, files: ChatFiles, progress: (e: ProvisionEvent) => void): Promise<void> {
    const brain = this.tokens.issue(chatId);
    try {
      await this.inner.provision(chatId, { ...files, brain }, progress);
    } catch (err) {
      this.tokens.revoke(chatId);
      throw err;
    }
  }

  async remove(chatId: string, archiveTo: string | undefined): Promise<{ archived: boolean }> {
    this.tokens.revoke(chatId);
    return this.inner.remove(chatId, archiveTo);
  }

  spawnSpec(chatId: string): SpawnSpec {
    return this.inner.spawnSpec(chatId);
  }

  tokenFile(chatId: string): string {
    return this.inner.tokenFile(chatId);
  }

  claudeSettings(chatId: string, gatewayUrl: string, env?: Record<string, string>): string {
    return this.inner.claudeSettings(chatId, gatewayUrl, env);
  }

  mcpServers(chatId: string, gatewayUrl: string): Record<string, unknown> {
    return { ...this.inner.mcpServers(chatId, gatewayUrl), brain: chatBrainMcpServer(this.wiring.headersFile(chatId), `${new URL(gatewayUrl).origin}${this.wiring.mcpPath}`) };
  }

  reapAll(chatId: string, pid?: number | null): Promise<void> {
    return this.inner.reapAll(chatId, pid);
  }

  transcriptExists(chatId: string, sessionId: string): boolean | undefined {
    return this.inner.transcriptExists(chatId, sessionId);
  }
}
