/**
 * Small HTTP plumbing shared by the Hetzner and Tailscale emulators: a loopback server on
 * a random port, bounded JSON bodies, constant-time bearer checks, a request log and a
 * fault injector (fail the Nth call of an endpoint, answer 429 for the next N calls).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";

/** An error the emulator answers with: HTTP status plus the provider-specific JSON body. */
export class EmulatorHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(`HTTP ${status}: ${JSON.stringify(body)}`);
    this.name = "EmulatorHttpError";
  }
}

export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: string;
  /** Parsed JSON body (undefined for none). */
  body: unknown;
  status: number;
  at: string;
}

/** A fault that matches `method path` (path as a RegExp or exact string). */
export interface FaultRule {
  method: string;
  path: string | RegExp;
  /** Fail the nth matching call (1-based) from the time the rule was added; default 1. */
  nth?: number;
  /** How many consecutive matching calls fail starting at the nth; default 1. */
  times?: number;
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export class FaultInjector {
  private rules: Array<FaultRule & { seen: number; fired: number }> = [];

  /** Adds a rule; returns a function that removes it. */
  add(rule: FaultRule): () => void {
    if ((rule.nth ?? 1) < 1) throw new Error(`fault rule nth must be >= 1, got ${rule.nth}`);
    const entry = { ...rule, seen: 0, fired: 0 };
    this.rules.push(entry);
    return () => {
      this.rules = this.rules.filter((r) => r !== entry);
    };
  }

  clear(): void {
    this.rules = [];
  }

  /** Called once per request; returns the error to answer with, if a rule fires. */
  check(method: string, path: string): EmulatorHttpError | undefined {
    for (const r of this.rules) {
      if (r.method !== "*" && r.method.toUpperCase() !== method) continue;
      if (typeof r.path === "string" ? r.path !== path : !r.path.test(path)) continue;
      r.seen += 1;
      const nth = r.nth ?? 1;
      const times = r.times ?? 1;
      if (r.seen >= nth && r.fired < times) {
        r.fired += 1;
        return new EmulatorHttpError(r.status, r.body, r.headers ?? {});
      }
    }
    return undefined;
  }
}

export const MAX_BODY_BYTES = 1024 * 1024;

/** The request body as text (undefined when empty), bounded by MAX_BODY_BYTES. */
export async function readText(req: IncomingMessage, invalid: (message: string) => EmulatorHttpError): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw invalid(`request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return size === 0 ? undefined : Buffer.concat(chunks).toString("utf8");
}

export async function readJson(req: IncomingMessage, invalid: (message: string) => EmulatorHttpError): Promise<unknown> {
  const text = await readText(req, invalid);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalid("request body is not valid JSON");
  }
}

/** Constant-time comparison of a presented secret with the expected one. */
export function secretEquals(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  if (a.length !== b.length) {
    timingSafeEqual(b, b); // same work either way
    return false;
  }
  return timingSafeEqual(a, b);
}

export function bearerOf(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer (.+)$/i.exec(h);
  return m?.[1];
}

export interface Handled {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Handler = (ctx: { req: IncomingMessage; method: string; path: string; query: URLSearchParams; body: unknown }) => Promise<Handled> | Handled;

export interface LoopbackServer {
  server: Server;
  port: number;
  /** Serves the same handler on another local address (e.g. a veth end), random port. */
  listenAlso(host: string): Promise<{ port: number; close(): Promise<void> }>;
  close(): Promise<void>;
}

/**
 * Serves `handle` on 127.0.0.1 (or `host`) at a random port. `onError` turns an unexpected
 * exception into the provider's error shape; EmulatorHttpError bodies are sent as is.
 */
export async function serveJson(opts: {
  host?: string;
  handle: Handler;
  readBody: (req: IncomingMessage) => Promise<unknown>;
  internalError: (err: Error) => EmulatorHttpError;
  log: RecordedRequest[];
  headers?: () => Record<string, string>;
  /**
   * Rewrites a log entry before anything else can read it (credentials in a body or a
   * query string must never reach the log). The handler still gets the real body.
   */
  redactLog?: (entry: RecordedRequest) => void;
}): Promise<LoopbackServer> {
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string>) => {
    const text = body === undefined ? "" : JSON.stringify(body);
    res.writeHead(status, {
      ...(opts.headers?.() ?? {}),
      ...(text ? { "content-type": "application/json" } : {}),
      "content-length": String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  };
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://emulator.invalid");
    const method = (req.method ?? "GET").toUpperCase();
    const entry: RecordedRequest = { method, path: url.pathname, query: url.search, body: undefined, status: 0, at: new Date().toISOString() };
    opts.redactLog?.(entry);
    opts.log.push(entry);
    void (async () => {
      try {
        const body = await opts.readBody(req);
        entry.body = body;
        opts.redactLog?.(entry);
        const out = await opts.handle({ req, method, path: url.pathname, query: url.searchParams, body });
        entry.status = out.status;
        send(res, out.status, out.body, out.headers ?? {});
      } catch (err) {
        const e = err instanceof EmulatorHttpError ? err : opts.internalError(err as Error);
        entry.status = e.status;
        send(res, e.status, e.body, e.headers);
      }
    })();
  };
  const listen = async (host: string) => {
    const srv = createServer(listener);
    await new Promise<void>((resolve, reject) => {
      srv.once("error", reject);
      srv.listen(0, host, () => resolve());
    });
    const close = () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      });
    return { srv, port: (srv.address() as AddressInfo).port, close };
  };
  const main = await listen(opts.host ?? "127.0.0.1");
  const extra = new Set<() => Promise<void>>();
  return {
    server: main.srv,
    port: main.port,
    listenAlso: async (host) => {
      const l = await listen(host);
      const close = async () => {
        extra.delete(close);
        await l.close();
      };
      extra.add(close);
      return { port: l.port, close };
    },
    close: async () => {
      await Promise.all([...extra].map((c) => c()));
      await main.close();
    },
  };
}

/** Hetzner and Tailscale timestamps: ISO 8601 in UTC, whole seconds. */
export function isoSeconds(ms: number, offsetStyle: "Z" | "+00:00"): string {
  const s = new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
  return offsetStyle === "Z" ? s : s.replace(/Z$/, "+00:00");
}
