/**
 * The HTTP client of the hcloud and tailscale doubles: real requests over the loopback
 * to the API emulators, with the retry rules of the clients the real providers embed.
 */
import { ProviderError, type Props } from "./framework.js";

export interface ApiClientOptions {
  baseUrl: string;
  headers: Record<string, string>;
  /** Which failed requests are retried, and after how long (ms); null = give up. */
  retryAfter(method: string, status: number, body: Props | undefined, headers: Headers, attempt: number): number | null;
  /** Turns an error answer into the message the real provider shows. */
  errorMessage(method: string, path: string, status: number, body: Props | undefined, headers: Headers): string;
  /** Request log (JSON lines) for the lane's assertions, or undefined. */
  onRequest?: (line: { method: string; path: string; status: number }) => void;
}

export class ApiError extends ProviderError {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export async function apiCall<T = Props>(o: ApiClientOptions, method: string, path: string, body?: unknown): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(o.baseUrl + path, {
        method,
        headers: { ...o.headers, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(120_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new ProviderError(`${method} ${o.baseUrl}${path}: ${cause}`);
    }
    const text = await res.text();
    let json: Props | undefined;
    try {
      json = text ? (JSON.parse(text) as Props) : undefined;
    } catch {
      json = undefined;
    }
    o.onRequest?.({ method, path, status: res.status });
    if (res.ok) return json as T;
    const wait = o.retryAfter(method, res.status, json, res.headers, attempt);
    if (wait !== null) {
      await new Promise((r) => setTimeout(r, wait));
      continue;
    }
    throw new ApiError(o.errorMessage(method, path, res.status, json, res.headers), res.status, (json?.error as Props | undefined)?.code as string | undefined);
  }
}

/** Retry-After in seconds or as an HTTP date, in ms; undefined when absent. */
export function retryAfterMs(headers: Headers): number | undefined {
  const v = headers.get("retry-after");
  if (!v) return undefined;
  const s = Number(v);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const d = Date.parse(v);
  return Number.isFinite(d) ? Math.max(0, d - Date.now()) : undefined;
}
