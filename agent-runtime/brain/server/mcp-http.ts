import type { IncomingMessage } from "node:http";
import { bearerToken } from "../../http/auth.js";
import { CredentialLimiter } from "../../http/rate-limit.js";
import type { Route } from "../../http/router.js";
import { refuseCredential, statelessMcpRoutes } from "../../http/mcp-endpoint.js";
import { RUNTIME_BRAIN_PROJECT } from "../../config/brain.js";
import { BRAIN_MCP_PATH } from "../../host/agent-key.js";
import { createBrainMcpServer } from "../shared/mcp.js";
import { BrainError } from "../shared/errors.js";
import { HybridLogicalClock } from "../shared/hlc.js";
import { ensureNodeId, createPrivate } from "../client/open.js";
import { BrainService } from "../shared/service.js";
import { SqliteBrainRepository } from "../shared/sqlite-repository.js";

/** Where chats and the portal agent reach the brain's MCP tools on the key gateway's loopback listener (host mode). */
export const CHAT_BRAIN_MCP_PATH = BRAIN_MCP_PATH;

/** Entries one chat (or the portal agent) may add per hour through its token: far above a working agent's, far below a flood. */
export const CHAT_BRAIN_RECORDS_PER_HOUR = 600;

/** An MCP request is a small JSON-RPC message; the tools' own limits are 20 000 characters per field. */
const MCP_BODY_LIMIT = 512 * 1024;

/** What a brain MCP token grants: a workspace and the fixed name entries carry; a chat's also names the chat. */
export interface ChatBrainGrant {
  workspaceId: string;
  agent: string;
  /** Set for a chat's token: refused once the chat is gone. The portal agent's has none. */
  chatId?: string;
}

/**
 * The store the chats' MCP tools read and write in the runtime (host mode): `<dataDir>/brain.sqlite`,
 * the store a local runtime's chats share too. One repository and one clock for every chat;
 * each request gets a service whose identity comes from the caller's token alone.
 */
export class ChatBrainStore {
  private repo: SqliteBrainRepository | undefined;
  private clock: HybridLogicalClock | undefined;
  /** Record times per author in the last hour: one chat (or the agent) cannot flood the shared store. */
  private readonly recent = new Map<string, number[]>();

  constructor(
    private readonly dbPath: string,
    private readonly limits: { recordsPerHour: number; now: () => number } = { recordsPerHour: CHAT_BRAIN_RECORDS_PER_HOUR, now: Date.now },
  ) {}

  private admitRecord(agent: string): void {
    const now = this.limits.now();
    const times = (this.recent.get(agent) ?? []).filter((t) => now - t < 3_600_000);
    if (times.length >= this.limits.recordsPerHour) {
      const retryMin = Math.max(1, Math.ceil((times[0]! + 3_600_000 - now) / 60_000));
      throw new BrainError(
        "rate_limited",
        `${agent} has recorded ${times.length} brain entries in the last hour, the most one credential may; retry in ${retryMin} min (recall and extend what is there meanwhile).`,
      );
    }
    times.push(now);
    this.recent.set(agent, times);
  }

  service(grant: ChatBrainGrant): BrainService {
    if (!this.repo) {
      createPrivate(this.dbPath);
      this.repo = SqliteBrainRepository.open(this.dbPath);
      this.clock = new HybridLogicalClock(ensureNodeId(this.repo));
    }
    return new BrainService(this.repo, this.clock!, {
      workspaceId: grant.workspaceId,
      projectId: RUNTIME_BRAIN_PROJECT,
      agent: grant.agent,
      agentFixed: true,
      beforeRecord: () => this.admitRecord(grant.agent),
    });
  }

  close(): void {
    this.repo?.close();
    this.repo = undefined;
  }
}

export interface ChatBrainMcpOptions {
  /** The grant of a chat brain token or the portal agent's token, or undefined (unknown, revoked, neither). */
  authenticate(token: string): ChatBrainGrant | undefined;
  /** Whether the chat still exists (a deleted chat's token is refused even if revocation was missed). */
  chatLive(chatId: string): boolean;
  store: ChatBrainStore;
  limiter?: CredentialLimiter;
}

/**
 * The brain's MCP tools over Streamable HTTP (stateless: one server per request), for chats
 * in host mode. A chat's user cannot open the runtime's store, so instead of a stdio
 * server it reaches this endpoint on the loopback gateway listener with its own brain
 * token (`Authorization: Bearer`, from a 0600 file in its home through `headersHelper`).
 * The token alone decides the workspace and the agent name; nothing in the request can
 * widen them.
 */
export function chatBrainMcpRoutes(o: ChatBrainMcpOptions): Route[] {
  const limiter = o.limiter ?? new CredentialLimiter("brain-mcp");
  return statelessMcpRoutes<ChatBrainGrant>({
    path: CHAT_BRAIN_MCP_PATH,
    bodyLimit: MCP_BODY_LIMIT,
    name: "brain MCP",
    authenticate: (ctx) => {
      const token = bearerToken(ctx.req as IncomingMessage);
      const grant = token ? o.authenticate(token) : undefined;
      if (grant && (grant.chatId === undefined || o.chatLive(grant.chatId))) return grant;
      return refuseCredential(ctx, limiter, "brain token");
    },
    server: (grant) => createBrainMcpServer(o.store.service(grant)),
  });
}
