import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { Reply, type Route } from "../http/router.js";
import { secretsEqual } from "../http/auth.js";
import { forbidden, notFound, tooManyRequests, unauthorized } from "../http/errors.js";
import type { Logger } from "../log.js";
import { newNonce, type PortalAssets } from "./assets.js";
import { COOKIE_NAME, clearCookieHeader, readCookie, setCookieHeader, type PortalRole, type SessionCookies } from "./session-cookie.js";
import type { CredentialLimiter } from "../http/rate-limit.js";
import type { PortalTokens } from "./tokens.js";
import { originAllowed } from "./origin.js";
import type { ApiTokenGuard } from "../http/api-token-guard.js";

export interface PortalHttpOptions {
  assets: PortalAssets;
  tokens: PortalTokens;
  cookies: SessionCookies;
  limiter: CredentialLimiter;
  origins: () => ReadonlySet<string>;
  cookieMaxAgeSeconds: number;
  secureCookie: "auto" | "always" | "never";
  session: string;
  /** The runtime API token check (shared rate limit), for the status and token endpoints. */
  apiAuth: ApiTokenGuard;
  status: () => unknown;
  /** Runs the session's command again in its (dead) pane. */
  restart: () => Promise<void>;
  log: Logger;
}

const sessionRequest = z.object({ token: z.string().min(1).max(512) }).strict();
const tokenRequest = z.object({ role: z.enum(["read-write", "read-only"]).default("read-write") }).strict();

/** Headers every portal response carries: no framing, no sniffing, never a Referer. */
export function baseHeaders(res: ServerResponse): void {
  res.setHeader("referrer-policy", "no-referrer");
  res.setHeader("x-content-type-options", "nosniff");
  res.setHeader("x-frame-options", "DENY");
  res.setHeader("cross-origin-opener-policy", "same-origin");
  res.setHeader("cross-origin-resource-policy", "same-origin");
}

export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    // xterm.js creates <style> elements; the page tags them with this nonce.
    `style-src 'self' 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/**
 * A portal page: `<path>` redirects to `<path>/` (a redirect keeps the #token fragment;
 * browsers carry it over and the server never sees it), which serves `template` with a
 * fresh script nonce under the portal's CSP.
 */
export function pageRoutes(path: string, template: string): Route[] {
  return [
    {
      method: "GET",
      path,
      handler: ({ res }) => {
        baseHeaders(res);
        res.writeHead(308, { location: `${path}/` });
        res.end();
      },
    },
    {
      method: "GET",
      path: `${path}/`,
      handler: ({ res }) => {
        const nonce = newNonce();
        const body = template.replace("__NONCE__", nonce);
        baseHeaders(res);
        res.writeHead(200, {
          "content-type": "text/html; charset=utf-8",
          "content-length": Buffer.byteLength(body),
          "cache-control": "no-store",
          "content-security-policy": contentSecurityPolicy(nonce),
        });
        res.end(body);
      },
    },
  ];
}

function isHttps(req: IncomingMessage): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted) return true;
  // Trust a forwarded scheme only from a proxy on this machine (e.g. `tailscale serve`).
  const remote = req.socket.remoteAddress ?? "";
  const loopback = remote === "127.0.0.1" || remote === "::1" || remote === "::ffff:127.0.0.1";
  return loopback && req.headers["x-forwarded-proto"] === "https";
}

export function portalRoutes(o: PortalHttpOptions): Route[] {
  const secure = (req: IncomingMessage) => o.secureCookie === "always" || (o.secureCookie === "auto" && isHttps(req));
  const roleOf = (req: IncomingMessage): PortalRole | undefined => o.cookies.verify(readCookie(req.headers.cookie, COOKIE_NAME));
  /** Browsers send Origin on every POST; a foreign one is cross-site request forgery. */
  const checkOrigin = (req: IncomingMessage) => {
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin, o.origins())) {
      o.log.warn("portal request refused: Origin not allowed", { origin });
      throw forbidden("Origin not allowed. Add it to server.allowedOrigins if this is your own portal address.");
    }
  };

  return [
    ...pageRoutes("/portal", o.assets.indexTemplate),
    {
      method: "GET",
      path: "/portal/assets/:file",
      handler: ({ req, res, params }) => {
        const file = o.assets.files.get(params.file ?? "");
        if (!file) throw notFound(`No portal asset ${params.file}.`);
        baseHeaders(res);
        if (req.headers["if-none-match"] === file.etag) {
          res.writeHead(304, { etag: file.etag });
          res.end();
          return;
        }
        // Names carry a content hash, so they can be cached forever.
        res.writeHead(200, {
          "content-type": file.type,
          "content-length": file.body.length,
          "cache-control": "public, max-age=31536000, immutable",
          etag: file.etag,
        });
        res.end(req.method === "HEAD" ? undefined : file.body);
      },
    },
    {
      method: "POST",
      path: "/portal/api/session",
      handler: async (ctx) => {
        const { req, res } = ctx;
        baseHeaders(res);
        const client = req.socket.remoteAddress ?? "unknown";
        checkOrigin(req);
        const { token } = await ctx.body(sessionRequest, 4096);
        // Both comparisons always run: the time taken does not reveal which matched.
        const rw = secretsEqual(token, o.tokens.readWrite);
        const ro = o.tokens.readOnly !== undefined && secretsEqual(token, o.tokens.readOnly);
        const role: PortalRole | undefined = rw ? "rw" : ro ? "ro" : undefined;
        if (!role) {
          // A valid token is never refused; failures count per client bucket (all of loopback is one).
          const retry = o.limiter.refuse(client);
          o.log.warn("portal sign-in failed", { client });
          if (retry > 0) {
            res.setHeader("retry-after", String(retry));
            throw tooManyRequests(retry);
          }
          throw unauthorized("That portal token is not valid. Print the current one with `picortex portal token`.");
        }
        res.setHeader("set-cookie", setCookieHeader(o.cookies.issue(role), { maxAgeSeconds: o.cookieMaxAgeSeconds, secure: secure(req) }));
        res.setHeader("cache-control", "no-store");
        o.log.info("portal sign-in", { client, role });
        return new Reply(200, { role, session: o.session });
      },
    },
    {
      method: "GET",
      path: "/portal/api/whoami",
      handler: ({ req, res }) => {
        baseHeaders(res);
        const role = roleOf(req);
        if (!role) throw unauthorized("No portal session; open the portal link with the token.");
        return { role, session: o.session };
      },
    },
    {
      method: "POST",
      path: "/portal/api/logout",
      handler: ({ req, res }) => {
        baseHeaders(res);
        checkOrigin(req);
        res.setHeader("set-cookie", clearCookieHeader(secure(req)));
        return { ok: true };
      },
    },
    {
      // The operator's way to the portal on a host: the runtime API token (a Pulumi
      // secret on the workspace stack) buys the portal token, so signing in needs neither
      // root nor the runtime user. POST with a JSON body keeps the answer out of caches and
      // browser history; the token only ever travels in a response body.
      method: "POST",
      path: "/portal/api/token",
      handler: async (ctx) => {
        const { req, res } = ctx;
        baseHeaders(res);
        res.setHeader("cache-control", "no-store");
        const client = req.socket.remoteAddress ?? "unknown";
        try {
          o.apiAuth.check(req);
        } catch (err) {
          o.log.warn("portal token request refused", { client });
          throw err;
        }
        const { role } = await ctx.body(tokenRequest, 1024);
        const token = role === "read-only" ? o.tokens.readOnly : o.tokens.readWrite;
        if (token === undefined) throw notFound("The read-only viewer token is off: set portal.readOnlyToken in the runtime config.");
        o.log.info("portal token issued to an API client", { client, role });
        return { role, token };
      },
    },
    {
      // The page's Restart button: runs the session's command again in its dead pane.
      // Signed-in read-write pages only, same-origin only.
      method: "POST",
      path: "/portal/api/restart",
      handler: async ({ req, res }) => {
        baseHeaders(res);
        checkOrigin(req);
        const role = roleOf(req);
        if (!role) throw unauthorized("No portal session; open the portal link with the token.");
        if (role !== "rw") throw forbidden("A read-only viewer cannot restart the session.");
        await o.restart();
        o.log.info("portal session command restarted", { client: req.socket.remoteAddress ?? "unknown" });
        return { ok: true };
      },
    },
    {
      method: "GET",
      path: "/portal/api/status",
      handler: ({ req, res }) => {
        baseHeaders(res);
        // A signed-in page may ask; anyone else needs the API token (rate-limited).
        if (roleOf(req) === undefined) o.apiAuth.check(req);
        return o.status();
      },
    },
  ];
}
