import { z } from "zod";
import { SyncError } from "../shared/errors.js";
import {
  pullResponseSchema,
  pushResponseSchema,
  type PullRequest,
  type PullResponse,
  type PushRequest,
  type PushResponse,
  type SyncTransport,
} from "../shared/sync-protocol.js";

export interface HttpTransportOptions {
  /** e.g. `http://100.64.0.1:7420`; the token never goes in it. */
  serverUrl: string;
  token: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** Talks to a picortex runtime's `/v1/brain/*` endpoints with a bearer token in the header. */
export class HttpSyncTransport implements SyncTransport {
  private readonly base: string;

  constructor(private readonly options: HttpTransportOptions) {
    const url = new URL(options.serverUrl);
    if (url.username || url.password || url.search) {
      throw new SyncError("not_configured", "The brain server URL must not carry credentials or a query string; put the token in its file.");
    }
    this.base = url.toString().replace(/\/+$/, "");
  }

  push(request: PushRequest): Promise<PushResponse> {
    return this.post("/v1/brain/push", request, pushResponseSchema);
  }

  pull(request: PullRequest): Promise<PullResponse> {
    return this.post("/v1/brain/pull", request, pullResponseSchema);
  }

  /** The server's clock from the `Date` header of its health endpoint (1 s resolution), at the request's midpoint. */
  async serverTime(): Promise<number | undefined> {
    const doFetch = this.options.fetch ?? fetch;
    try {
      const sent = Date.now();
      const res = await doFetch(this.base + "/healthz", { signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000) });
      await res.arrayBuffer().catch(() => undefined);
      const date = Date.parse(res.headers.get("date") ?? "");
      if (!Number.isFinite(date)) return undefined;
      // The header is truncated to the second (add half of one) and was stamped mid-way (add half the round trip).
      return date + 500 + (Date.now() - sent) / 2;
    } catch {
      return undefined;
    }
  }

  private async post<T extends z.ZodType>(path: string, body: unknown, schema: T): Promise<z.infer<T>> {
    const doFetch = this.options.fetch ?? fetch;
    let res: Response;
    try {
      res = await doFetch(this.base + path, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${this.options.token}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      throw new SyncError("unreachable", `Brain server ${this.base} is unreachable (${cause?.code ?? (err as Error).message}).`, undefined, { cause: err });
    }
    const text = await res.text().catch(() => "");
    if (!res.ok) {
      let message = text.slice(0, 300);
      try {
        message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
      } catch {
        // not JSON: keep the raw text
      }
      if (res.status === 401 || res.status === 403) throw new SyncError("unauthorized", `Brain server refused the token: ${message}`, res.status);
      if (res.status >= 500 || res.status === 429) throw new SyncError("server", `Brain server error ${res.status}: ${message}`, res.status);
      throw new SyncError("rejected", `Brain server rejected the request (${res.status}): ${message}`, res.status);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new SyncError("server", `Brain server sent a response that is not JSON (${res.status}).`, res.status);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new SyncError("server", `Brain server sent an unexpected response: ${parsed.error.issues[0]?.message}`, res.status);
    return parsed.data;
  }
}
