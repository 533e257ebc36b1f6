import type { IncomingMessage } from "node:http";
import type { Route } from "../../http/router.js";
import { z } from "zod";
import { bearerToken } from "../../http/auth.js";
import type { ApiTokenGuard } from "../../http/api-token-guard.js";
import { notFound, tooManyRequests, unauthorized } from "../../http/errors.js";
import { CredentialLimiter } from "../../http/rate-limit.js";
import { Reply } from "../../http/router.js";
import { idSchema } from "../shared/entry.js";
import type { BrainServerStore } from "./server-store.js";
import { PULL_BODY_LIMIT, PUSH_BODY_LIMIT, pullRequestSchema, pushRequestSchema } from "../shared/sync-protocol.js";

/**
 * The sync endpoints. This layer only authenticates and validates (a BrainError becomes
 * its status in the router, like every PicortexError); the rules live in BrainServerStore. A token names exactly one workspace, and every
 * read and write is confined to it.
 */
const createTokenSchema = z.object({ workspaceId: idSchema, label: z.string().max(200).default("") }).strict();

/**
 * Token administration, for whoever holds the runtime's API token (the operator over the
 * tailnet), so issuing a brain token needs no shell on the host. Brain tokens themselves
 * can never reach these routes.
 */
export function brainAdminRoutes(store: BrainServerStore, apiAuth: ApiTokenGuard): Route[] {
  const requireAdmin = (req: IncomingMessage) => apiAuth.check(req);
  return [
    {
      method: "POST",
      path: "/v1/brain/tokens",
      handler: async (ctx) => {
        requireAdmin(ctx.req);
        const body = await ctx.body(createTokenSchema, 4096);
        const { token, info } = store.createToken(body.workspaceId, body.label);
        // The only time the secret leaves the server; only its hash is stored.
        return new Reply(201, { ...info, token });
      },
    },
    {
      method: "GET",
      path: "/v1/brain/tokens",
      handler: (ctx) => {
        requireAdmin(ctx.req);
        return { tokens: store.listTokens() };
      },
    },
    {
      method: "DELETE",
      path: "/v1/brain/tokens/:tokenId",
      handler: (ctx) => {
        requireAdmin(ctx.req);
        if (!store.revokeToken(ctx.params.tokenId!)) throw notFound(`No active brain token with id ${ctx.params.tokenId}.`);
        return { revoked: ctx.params.tokenId };
      },
    },
  ];
}

export function brainSyncRoutes(store: BrainServerStore, limiter = new CredentialLimiter("brain")): Route[] {
  const workspaceOf = (req: IncomingMessage): string => {
    const token = bearerToken(req);
    const workspace = token === undefined ? undefined : store.authenticate(token);
    if (workspace === undefined) {
      // A valid brain token is never refused; bad ones count per client bucket (all of loopback is one).
      const retry = limiter.refuse(req.socket.remoteAddress);
      if (retry > 0) throw tooManyRequests(retry);
      throw unauthorized("Missing, unknown or revoked brain token (Authorization: Bearer <token>).");
    }
    return workspace;
  };
  return [
    {
      method: "POST",
      path: "/v1/brain/push",
      handler: async (ctx) => {
        // Authenticate before reading the body, so an anonymous caller cannot make the server buffer 10 MB.
        const workspace = workspaceOf(ctx.req);
        const body = await ctx.body(pushRequestSchema, PUSH_BODY_LIMIT);
        // A BrainError is mapped to its status by the router (400, 404, 409: http/errors.ts).
        return store.push(workspace, body);
      },
    },
    {
      method: "POST",
      path: "/v1/brain/pull",
      handler: async (ctx) => {
        const workspace = workspaceOf(ctx.req);
        const body = await ctx.body(pullRequestSchema, PULL_BODY_LIMIT);
        return store.pull(workspace, body);
      },
    },
  ];
}
