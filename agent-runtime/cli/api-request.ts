import { resolveRuntimeClient, wrongTokenMessage, type RuntimeClient } from "./endpoint.js";
import { PicortexError } from "../errors.js";

/**
 * One request to the runtime's API for the CLI's thin clients (`picortex chat`, `picortex
 * bridges`). The API token comes from $PICORTEX_API_TOKEN or <data dir>/api-token, never from
 * argv (visible in ps). A refusal (4xx) is exit 2, a server failure (5xx) exit 1.
 */
export interface ClientOptions {
  url?: string;
  dataDir?: string;
  json?: boolean;
}

/** One data dir rule and the endpoint record: cli/endpoint.ts (issue 16 item 4). */
const clientConfig = (opts: ClientOptions): RuntimeClient => resolveRuntimeClient(opts);

export async function apiRequest(opts: ClientOptions, method: string, path: string, body?: unknown, accept = "application/json", extraHeaders: Record<string, string> = {}): Promise<Response> {
  const client = clientConfig(opts);
  const { url, token } = client;
  let res: Response;
  try {
    res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, accept, ...(body === undefined ? {} : { "content-type": "application/json" }), ...extraHeaders },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new PicortexError("unavailable", "unreachable", `Cannot reach the runtime at ${url}: ${(err as Error).message}. Is \`picortex serve\` running?`, { cause: err });
  }
  if (!res.ok) {
    const text = await res.text();
    let message = text;
    let code = `http_${res.status}`;
    try {
      const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
      message = parsed.error?.message ?? text;
      code = parsed.error?.code ?? code;
    } catch {
      // not JSON
    }
    if (res.status === 401) message = wrongTokenMessage(client);
    // Refused (4xx) is the caller's to fix (exit 2); a server failure (5xx) is exit 1.
    throw new PicortexError(res.status < 500 ? "invalid_input" : "failed", code, message);
  }
  return res;
}
