import { isIP } from "node:net";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { CredentialLimiter } from "./rate-limit.js";
import { readBody, sendJson, type RequestContext, type Route } from "./router.js";

/** A loopback peer (127.0.0.0/8, ::1, or either mapped into IPv6). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith("::ffff:") ? address.slice(7) : address;
  return a === "::1" || (isIP(a) === 4 && a.startsWith("127."));
}

/** A JSON-RPC error body, as an MCP client expects one outside a session. */
export function jsonRpcError(ctx: RequestContext, status: number, message: string): void {
  sendJson(ctx.res, status, { jsonrpc: "2.0", error: { code: -32001, message }, id: null });
}

/** Answers a missing or wrong credential: 401, or 429 once the client's bucket has failed too often. */
export function refuseCredential(ctx: RequestContext, limiter: CredentialLimiter, what: string): undefined {
  const retry = limiter.refuse(ctx.req.socket.remoteAddress);
  if (retry > 0) {
    ctx.res.setHeader("retry-after", String(retry));
    jsonRpcError(ctx, 429, `Too many bad ${what}s; retry in ${retry} s.`);
  } else jsonRpcError(ctx, 401, `Missing, unknown or revoked ${what}.`);
  return undefined;
}

export interface StatelessMcpOptions<P> {
  path: string;
  /** What one request body may weigh. */
  bodyLimit: number;
  /** What the endpoint is called in its refusals ("brain MCP", "approvals"). */
  name: string;
  /** The caller's principal, or undefined after answering the refusal itself (401, 429…). */
  authenticate(ctx: RequestContext): P | undefined;
  /** A fresh server for this one request, acting for the principal alone. */
  server(principal: P, ctx: RequestContext): McpServer;
}

/**
 * An MCP endpoint over Streamable HTTP, stateless (one server per request, POST only), for
 * loopback callers only: chats and the portal agent on the gateway's listener. The principal
 * comes from the request's credential alone; nothing in the body can widen it.
 */
export function statelessMcpRoutes<P>(o: StatelessMcpOptions<P>): Route[] {
  const handle = async (ctx: RequestContext): Promise<void> => {
    if (!isLoopback(ctx.req.socket.remoteAddress)) {
      jsonRpcError(ctx, 403, `The ${o.name} endpoint only accepts loopback connections.`);
      return;
    }
    const principal = o.authenticate(ctx);
    if (principal === undefined) return;
    if (ctx.req.method !== "POST") {
      // Stateless: no standalone SSE stream and no session to delete.
      ctx.res.setHeader("allow", "POST");
      jsonRpcError(ctx, 405, "Method not allowed: this MCP endpoint is stateless (POST only).");
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse((await readBody(ctx.req, o.bodyLimit)).toString("utf8"));
    } catch (err) {
      const big = (err as { status?: number }).status === 413;
      jsonRpcError(ctx, big ? 413 : 400, big ? "Request too large." : "Request body is not valid JSON.");
      return;
    }
    const server = o.server(principal, ctx);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    ctx.res.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(ctx.req, ctx.res, body);
  };
  return (["POST", "GET", "DELETE"] as const).map((method) => ({ method, path: o.path, handler: handle }));
}
