import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { CHAT_ID_PATTERN } from "../host/contract.js";
import { badRequest, forbidden, notFound, unauthorized } from "../http/errors.js";
import { Reply, type RequestContext, type Route } from "../http/router.js";
import type { ModuleContext, RuntimeModule } from "../module.js";
import { chatView, streamTurn, turnBodySchema, turnView } from "../turns/http/routes.js";
import type { TurnsModule } from "../turns/module.js";
import type { Chat } from "../turns/domain.js";
import { CHAT_VIEW_HTML, CHAT_VIEW_JS } from "./chat-view-page.js";
import { baseHeaders, pageRoutes } from "./http.js";
import { allowedOrigins, originAllowed } from "./origin.js";
import { COOKIE_NAME, SessionCookies, readCookie, type PortalRole } from "./session-cookie.js";
import { ensurePortalTokens } from "./tokens.js";

const JS_ETAG = `"${createHash("sha256").update(CHAT_VIEW_JS).digest("base64url").slice(0, 22)}"`;

/**
 * The portal's chat view: `/portal/chats/` and its `/portal/api/chats…` endpoints, on the
 * portal's own session cookie (signed in through `/portal/#token=…`), with the same exact-Origin
 * check on every state-changing request and the same CSP. A read-only viewer sees chats but
 * cannot send.
 */
export function mountChatView(ctx: ModuleContext, turns: TurnsModule): RuntimeModule {
  const log = ctx.log.child("chat-view");
  const { chats } = turns;
  const tokens = ensurePortalTokens(ctx.config.dataDir, ctx.config.portal.readOnlyToken);
  const cookies = new SessionCookies(tokens, ctx.config.portal.cookieMaxAgeSeconds);
  const origins = () => allowedOrigins(ctx.config.server.hosts, Number(new URL(ctx.baseUrl()).port), ctx.config.server.allowedOrigins);
  const role = (req: IncomingMessage): PortalRole => {
    const r = cookies.verify(readCookie(req.headers.cookie, COOKIE_NAME));
    if (!r) throw unauthorized("No portal session; open the portal link with the token (`picortex portal token`).");
    return r;
  };
  const checkOrigin = (req: IncomingMessage) => {
    if (!originAllowed(req.headers.origin, origins())) {
      log.warn("chat view request refused: Origin not allowed", { origin: req.headers.origin });
      throw forbidden("Origin not allowed. Add it to server.allowedOrigins if this is your own portal address.");
    }
  };
  const chatOf = (c: RequestContext): Chat => {
    const id = c.params.id ?? "";
    if (!CHAT_ID_PATTERN.test(id)) throw badRequest("Invalid chat id.");
    const chat = chats.find(id);
    if (!chat || chat.status === "deleted") throw notFound(`No chat ${id}.`);
    return chat;
  };
  const view = (c: Chat) => chatView(c, chats.isWarm(c.id), chats.hostMode);
  const maxText = ctx.config.turns.maxTextBytes;

  const routes: Route[] = [
    ...pageRoutes("/portal/chats", CHAT_VIEW_HTML),
    {
      method: "GET",
      path: "/portal/chat-view.js",
      handler: ({ req, res }) => {
        baseHeaders(res);
        if (req.headers["if-none-match"] === JS_ETAG) {
          res.writeHead(304, { etag: JS_ETAG });
          res.end();
          return;
        }
        res.writeHead(200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-cache", etag: JS_ETAG });
        res.end(CHAT_VIEW_JS);
      },
    },
    {
      method: "GET",
      path: "/portal/api/chats",
      handler: ({ req, res }) => {
        baseHeaders(res);
        role(req);
        return { chats: chats.list().map((c) => ({ ...view(c), turns: chats.turns(c.id, 1000).length })) };
      },
    },
    {
      method: "GET",
      path: "/portal/api/chats/:id",
      handler: (c) => {
        baseHeaders(c.res);
        role(c.req);
        const chat = chatOf(c);
        return { chat: view(chat), turns: chats.turns(chat.id, 50).map(turnView) };
      },
    },
    {
      method: "POST",
      path: "/portal/api/chats/:id/turns",
      handler: async (c) => {
        baseHeaders(c.res);
        checkOrigin(c.req);
        if (role(c.req) !== "rw") throw forbidden("A read-only viewer cannot send messages.");
        const chat = chatOf(c);
        const body = await c.body(turnBodySchema(maxText).omit({ sender: true }), maxText * 2 + 1024);
        const { turn } = chats.send(chat, body.text, "portal", { notReady: "messages can be sent once it is ready." });
        return new Reply(202, turnView(turn));
      },
    },
    {
      method: "GET",
      path: "/portal/api/chats/:id/turns/:tid/events",
      handler: (c) => {
        baseHeaders(c.res);
        role(c.req);
        const chat = chatOf(c);
        const turn = chats.findTurn(chat.id, c.params.tid ?? "");
        if (!turn) throw notFound("No such turn.");
        streamTurn(chats, c.res, turn.id);
        return undefined;
      },
    },
  ];
  return { name: "chat-view", routes, close() {} };
}
