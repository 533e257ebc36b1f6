import type { IncomingMessage } from "node:http";
import type { Route } from "../http/router.js";
import { bearerToken } from "../http/auth.js";
import { HttpError, badRequest, unauthorized } from "../http/errors.js";
import { BrainError } from "./errors.js";
import type { BrainServerStore } from "./server-store.js";
import { PULL_BODY_LIMIT, PUSH_BODY_LIMIT, pullRequestSchema, pushRequestSchema } from "./sync-protocol.js";

/**
 * The sync endpoints. This layer only authenticates, validates and maps typed errors;
 * the rules live in BrainServerStore. A token names exactly one workspace, and every
 * read and write is confined to it.
 */
export function brainSyncRoutes(store: BrainServerStore): Route[] {
  const workspaceOf = (req: IncomingMessage): string => {
    const token = bearerToken(req);
    const workspace = token === undefined ? undefined : store.authenticate(token);
    if (workspace === undefined) throw unauthorized("Missing, unknown or revoked brain token (Authorization: Bearer <token>).");
    return workspace;
  };
  const mapErrors = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof BrainError) {
        if (err.code === "invalid_input") throw badRequest(err.message);
        throw new HttpError(err.code === "not_found" ? 404 : 409, err.code, err.message);
      }
      throw err;
    }
  };
  return [
    {
      method: "POST",
      path: "/v1/brain/push",
      handler: async (ctx) => {
        // Authenticate before reading the body, so an anonymous caller cannot make the server buffer 10 MB.
        const workspace = workspaceOf(ctx.req);
        const body = await ctx.body(pushRequestSchema, PUSH_BODY_LIMIT);
        return mapErrors(() => store.push(workspace, body));
      },
    },
    {
      method: "POST",
      path: "/v1/brain/pull",
      handler: async (ctx) => {
        const workspace = workspaceOf(ctx.req);
        const body = await ctx.body(pullRequestSchema, PULL_BODY_LIMIT);
        return mapErrors(() => store.pull(workspace, body));
      },
    },
  ];
}
