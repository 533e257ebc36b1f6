import type { IncomingMessage, ServerResponse } from "node:http";
import type { z } from "zod";
import { PicortexError } from "../errors.js";
import { HttpError, badRequest, httpStatusOf, notFound, payloadTooLarge } from "./errors.js";

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD";

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  url: URL;
  /** Reads and validates the JSON body against a schema; rejects with 400/413. */
  body<T extends z.ZodType>(schema: T, limitBytes?: number): Promise<z.infer<T>>;
}

/** Return this from a handler to choose the status code (e.g. 201 or 202). */
export class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

/**
 * A handler returns a JSON-serialisable value (200), a `Reply`, or writes to `res`
 * itself (streams, SSE) and returns undefined.
 */
export type Handler = (ctx: RequestContext) => unknown | Promise<unknown>;

export interface Route {
  method: Method;
  /** Path with `:name` segments, e.g. `/v1/chats/:id/turns`. */
  path: string;
  handler: Handler;
}

const DEFAULT_BODY_LIMIT = 1024 * 1024;

export async function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > limitBytes) throw payloadTooLarge(limitBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) throw payloadTooLarge(limitBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export async function parseJsonBody<T extends z.ZodType>(
  req: IncomingMessage,
  schema: T,
  limitBytes = DEFAULT_BODY_LIMIT,
): Promise<z.infer<T>> {
  const raw = await readBody(req, limitBytes);
  let value: unknown;
  try {
    value = raw.length === 0 ? {} : JSON.parse(raw.toString("utf8"));
  } catch {
    throw badRequest("Request body is not valid JSON.");
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
    const first = issues[0];
    throw badRequest(`Invalid request body${first ? `: ${first.path || "(root)"}: ${first.message}` : ""}.`, issues);
  }
  return parsed.data;
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  });
  res.end(body);
}

export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof PicortexError) {
    const status = httpStatusOf(err);
    const retryAfter = (err.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
    if (status === 429 && typeof retryAfter === "number") res.setHeader("retry-after", String(retryAfter));
    sendJson(res, status, { error: { code: err.code, message: err.message, details: err.details } });
    return;
  }
  sendJson(res, 500, { error: { code: "internal", message: "Internal error; see the runtime log." } });
}

interface CompiledRoute extends Route {
  pattern: RegExp;
  names: string[];
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.path
    .split("/")
    .map((segment) => {
      if (segment.startsWith(":")) {
        names.push(segment.slice(1));
        return "([^/]+)";
      }
      return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  return { ...route, pattern: new RegExp(`^${source}$`), names };
}

/** A small exact-match router: method + path, typed errors mapped to status codes. */
export class Router {
  private readonly routes: CompiledRoute[] = [];

  constructor(
    private readonly log: (message: string) => void = () => {},
    /** Turns an untyped failure into a typed one (e.g. SQLITE_FULL into a 507 "disk full"). */
    private readonly mapError: (err: unknown) => PicortexError | undefined = () => undefined,
  ) {}

  add(...routes: Route[]): this {
    for (const route of routes) this.routes.push(compile(route));
    return this;
  }

  /** Handles the request; returns false when no route matched the path. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    // Only the path is used: query strings are never needed, and never logged.
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://runtime.invalid");
    } catch {
      sendError(res, badRequest("The request target is not a valid URL path."));
      return true;
    }
    const matching = this.routes.filter((r) => r.pattern.test(url.pathname));
    if (matching.length === 0) return false;
    const route = matching.find((r) => r.method === req.method || (req.method === "HEAD" && r.method === "GET"));
    try {
      if (!route) {
        res.setHeader("allow", matching.map((r) => r.method).join(", "));
        throw new HttpError(405, "method_not_allowed", `${req.method} is not allowed on ${url.pathname}.`);
      }
      const m = route.pattern.exec(url.pathname)!;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => {
        try {
          params[name] = decodeURIComponent(m[i + 1]!);
        } catch {
          // A malformed % escape (`%zz`, a lone `%`, invalid UTF-8) is the client's error.
          throw badRequest(`The path segment for ${name} has a malformed % escape.`);
        }
      });
      const ctx: RequestContext = {
        req,
        res,
        params,
        url,
        body: (schema, limit) => parseJsonBody(req, schema, limit),
      };
      const result = await route.handler(ctx);
      if (!res.writableEnded && !res.headersSent) {
        if (result === undefined) {
          res.writeHead(204);
          res.end();
        } else if (result instanceof Reply) sendJson(res, result.status, result.body);
        else sendJson(res, 200, result);
      }
    } catch (caught) {
      const err = caught instanceof PicortexError ? caught : (this.mapError(caught) ?? caught);
      if (!(err instanceof PicortexError)) this.log(`error on ${req.method} ${url.pathname}: ${(err as Error)?.stack ?? err}`);
      else if (httpStatusOf(err) >= 500) this.log(`${err.code} on ${req.method} ${url.pathname}: ${err.message}`);
      sendError(res, err);
    }
    return true;
  }
}

export function notFoundHandler(res: ServerResponse, pathname: string): void {
  sendError(res, notFound(`No route for ${pathname}.`));
}
