import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

/**
 * Constant-time comparison of two secrets. Both sides are hashed first so the
 * comparison length (and therefore timing) never depends on the candidate.
 */
export function secretsEqual(candidate: string, expected: string): boolean {
  const a = createHash("sha256").update(candidate, "utf8").digest();
  const b = createHash("sha256").update(expected, "utf8").digest();
  return timingSafeEqual(a, b) && candidate.length === expected.length;
}

/**
 * How tokens are stored: SHA-256 hex. Tokens are 256-bit random, so a plain hash is
 * enough to make a leaked table useless, and lookups stay exact-match indexable.
 */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** A URL-safe random token with 256 bits of entropy. */
export function generateToken(prefix = ""): string {
  return prefix + randomBytes(32).toString("base64url");
}

/** The bearer token from `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+([A-Za-z0-9._~+/=-]{1,512})$/.exec(header);
  return match?.[1];
}
