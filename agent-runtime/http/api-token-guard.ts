import type { IncomingMessage } from "node:http";
import { bearerToken, secretsEqual } from "./auth.js";
import { tooManyRequests, unauthorized } from "./errors.js";
import { CredentialLimiter, FailureLimiter } from "./rate-limit.js";

/**
 * The one check for the runtime API token, shared by every module's API routes:
 * constant-time compare, and failed attempts limited per client bucket (all of loopback
 * is one bucket) so the token cannot be guessed online. The token is checked first and a
 * correct one is never refused: a chat's agent sending wrong tokens over loopback cannot
 * lock the operator out.
 */
export class ApiTokenGuard {
  private readonly limiter: CredentialLimiter;

  constructor(
    private readonly token: string,
    limiter = new FailureLimiter(30, 60_000),
  ) {
    this.limiter = new CredentialLimiter("api", limiter);
  }

  /** Throws 401 for a missing or wrong token, 429 once the client's bucket is over the limit. */
  check(req: IncomingMessage): void {
    const token = bearerToken(req);
    if (token !== undefined && secretsEqual(token, this.token)) return;
    const retry = this.limiter.refuse(req.socket.remoteAddress);
    if (retry > 0) throw tooManyRequests(retry);
    throw unauthorized("Missing or invalid API token: send `Authorization: Bearer <token from <dataDir>/api-token>`.");
  }
}
