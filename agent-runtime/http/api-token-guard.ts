import type { IncomingMessage } from "node:http";
import { bearerToken, secretsEqual } from "./auth.js";
import { tooManyRequests, unauthorized } from "./errors.js";
import { FailureLimiter } from "./rate-limit.js";

/**
 * The one check for the runtime API token, shared by every module's API routes:
 * constant-time compare, and failed attempts limited per client address so the token
 * cannot be guessed online. Only failures count, so a correct client is never slowed.
 */
export class ApiTokenGuard {
  constructor(
    private readonly token: string,
    private readonly limiter = new FailureLimiter(30, 60_000),
  ) {}

  /** Throws 429 while the client is limited, 401 for a missing or wrong token. */
  check(req: IncomingMessage): void {
    const client = req.socket.remoteAddress ?? "unknown";
    const retry = this.limiter.retryAfterSeconds(client);
    if (retry > 0) throw tooManyRequests(retry);
    const token = bearerToken(req);
    if (token !== undefined && secretsEqual(token, this.token)) return;
    this.limiter.recordFailure(client);
    throw unauthorized("Missing or invalid API token: send `Authorization: Bearer <token from <dataDir>/api-token>`.");
  }
}
