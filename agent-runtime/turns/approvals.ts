import type { IncomingMessage } from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { hashToken, secretsEqual } from "../http/auth.js";
import { CredentialLimiter } from "../http/rate-limit.js";
import type { Route } from "../http/router.js";
import { refuseCredential, statelessMcpRoutes } from "../http/mcp-endpoint.js";
import type { TurnStore } from "./store.js";

/**
 * Tool approvals for headless turns. `claude -p` cannot stop and ask a person, so a tool the
 * chat's rules do not allow is denied silently. With approvals on for a chat, its turns run
 * with `--permission-prompt-tool mcp__picortex__approve`: the CLI calls this MCP tool (on the
 * gateway's loopback listener, authenticated by the chat's own gateway token) for every tool
 * its rules would not run, and the call returns once a person decided (or the request
 * expired). Who may decide, and where they are asked, is the broker's (the bridges).
 */

/** Where chats reach the approval tool on the gateway listener. */
export const APPROVALS_MCP_PATH = "/approvals/mcp";
/** The MCP server name and tool the CLI is pointed at (`mcp__<server>__<tool>`). */
export const APPROVALS_SERVER = "picortex";
export const APPROVALS_TOOL = "approve";
export const APPROVALS_TOOL_ID = `mcp__${APPROVALS_SERVER}__${APPROVALS_TOOL}`;

/** What the CLI asks: run this tool with this input in this chat? */
export interface PermissionRequest {
  chatId: string;
  toolName: string;
  input: Record<string, unknown>;
  toolUseId?: string;
}

/** The CLI's permission-prompt answer (its documented JSON shape). */
export type PermissionDecision = { behavior: "allow"; updatedInput: Record<string, unknown> } | { behavior: "deny"; message: string };

/** How a chat's tools are governed, read when its turn's process starts. */
export interface ChatToolPolicy {
  /** It has approvers: tools outside `allowedTools` are asked for. */
  ask: boolean;
  /** The tools that run without asking; unset: turns.allowedTools. */
  allowedTools?: readonly string[];
  /** How long a request may wait (the CLI's MCP tool timeout must be longer). */
  timeoutMs: number;
}

/** Decides permission requests: the bridges ask a chat's named approvers. */
export interface ApprovalBroker {
  /** The chat's policy, or undefined when the broker does not govern it (no bridge links it). */
  policyFor(chatId: string): ChatToolPolicy | undefined;
  /** Resolves once decided or expired; `signal` aborts when the CLI went away (the turn ended). */
  decide(req: PermissionRequest, signal: AbortSignal): Promise<PermissionDecision>;
}

/**
 * The approval server for a turn's `--mcp-config`: over HTTP on the gateway. The token is not
 * in it (argv is visible in `ps`): `headersHelper`, run by the CLI through a shell as the
 * chat's own user, prints the header from the chat's 0600 token file.
 */
export function approvalsMcpServer(gatewayOrigin: string, tokenPath: string): Record<string, unknown> {
  if (!/^[A-Za-z0-9/_.-]+$/.test(tokenPath)) throw new Error(`token path ${tokenPath} has characters unsafe in headersHelper`);
  const u = new URL(gatewayOrigin);
  if (u.protocol !== "http:" || u.username || u.password || u.search) throw new Error(`gateway ${gatewayOrigin} must be a plain http:// loopback URL`);
  return { type: "http", url: `${u.origin}${APPROVALS_MCP_PATH}`, headersHelper: `printf '{"Authorization":"Bearer %s"}' "$(cat ${tokenPath})"` };
}

/** `--mcp-config` JSON holding only the approval server. */
export function approvalsMcpConfig(gatewayOrigin: string, tokenPath: string): string {
  return JSON.stringify({ mcpServers: { [APPROVALS_SERVER]: approvalsMcpServer(gatewayOrigin, tokenPath) } });
}

/** An MCP request is a small JSON-RPC message; a tool input (a file to write) can be large. */
const MCP_BODY_LIMIT = 4 * 1024 * 1024;

export interface ApprovalRoutesOptions {
  store: Pick<TurnStore, "chatByTokenHash">;
  /** The broker, once the bridges registered one; undefined: every request is denied. */
  broker: () => ApprovalBroker | undefined;
  limiter?: CredentialLimiter;
}

/**
 * The approval tool over Streamable HTTP (stateless: one server per request). The chat is
 * the one whose gateway token the request carries; nothing in the request can name another.
 */
export function approvalRoutes(o: ApprovalRoutesOptions): Route[] {
  const limiter = o.limiter ?? new CredentialLimiter("approvals-mcp");
  return statelessMcpRoutes<string>({
    path: APPROVALS_MCP_PATH,
    bodyLimit: MCP_BODY_LIMIT,
    name: "approvals",
    authenticate: (ctx) => {
      const auth = (ctx.req as IncomingMessage).headers.authorization;
      const m = typeof auth === "string" ? /^Bearer\s+(\S{1,512})$/.exec(auth) : null;
      const hash = m ? hashToken(m[1]!) : "";
      const chat = m ? o.store.chatByTokenHash(hash) : undefined;
      if (chat && chat.status === "ready" && secretsEqual(hash, chat.tokenHash)) return chat.id;
      return refuseCredential(ctx, limiter, "chat token");
    },
    server: (chatId, ctx) => {
      // The CLI gone (its turn ended, timed out or was killed): the request is withdrawn.
      const abort = new AbortController();
      ctx.res.on("close", () => {
        if (!ctx.res.writableFinished) abort.abort();
      });
      const server = new McpServer({ name: APPROVALS_SERVER, version: "1" });
      server.registerTool(
        APPROVALS_TOOL,
        {
          description: "picortex asks this chat's approvers whether a tool may run. Called by Claude Code itself (--permission-prompt-tool); calling it yourself grants nothing.",
          inputSchema: { tool_name: z.string().regex(/^[A-Za-z0-9_]{1,200}$/, "a tool name"), input: z.record(z.string(), z.unknown()), tool_use_id: z.string().max(200).optional() },
        },
        async (args) => {
          const broker = o.broker();
          const decision: PermissionDecision =
            // Approving the approval tool itself would let the model forge a request.
            args.tool_name === APPROVALS_TOOL_ID
              ? { behavior: "deny", message: "The approval tool is called by Claude Code, not by the agent." }
              : broker
                ? await broker.decide({ chatId, toolName: args.tool_name, input: args.input, toolUseId: args.tool_use_id }, abort.signal)
                : { behavior: "deny", message: "Approvals are not available in this runtime (no bridge with approvers); the tool was not run." };
          return { content: [{ type: "text", text: JSON.stringify(decision) }] };
        },
      );
      return server;
    },
  });
}
