import { createHmac, randomBytes } from "node:crypto";
import { secretsEqual } from "../http/auth.js";

export type PortalRole = "rw" | "ro";

export const COOKIE_NAME = "pcx_portal";

/**
 * Session cookies are stateless and signed with a key derived from the token they were
 * exchanged for: they survive a runtime restart, and rotating the token (delete the
 * file, restart) revokes every cookie issued for it.
 */
export class SessionCookies {
  private readonly keys: Map<PortalRole, Buffer>;

  constructor(
    tokens: { readWrite: string; readOnly?: string },
    private readonly maxAgeSeconds: number,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.keys = new Map();
    this.keys.set("rw", createHmac("sha256", tokens.readWrite).update("picortex-portal-cookie-v1").digest());
    if (tokens.readOnly) this.keys.set("ro", createHmac("sha256", tokens.readOnly).update("picortex-portal-cookie-v1").digest());
  }

  issue(role: PortalRole): string {
    const expires = Math.floor(this.now() / 1000) + this.maxAgeSeconds;
    const nonce = randomBytes(12).toString("base64url");
    const body = `v1.${role}.${expires}.${nonce}`;
    return `${body}.${this.mac(role, body)}`;
  }

  /** The role a cookie value grants, or undefined when it is forged, expired or revoked. */
  verify(value: string | undefined): PortalRole | undefined {
    if (!value || value.length > 200) return undefined;
    const m = /^v1\.(rw|ro)\.(\d{1,12})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (!m) return undefined;
    const role = m[1] as PortalRole;
    if (!this.keys.has(role)) return undefined;
    const body = `v1.${role}.${m[2]}.${m[3]}`;
    if (!secretsEqual(m[4]!, this.mac(role, body))) return undefined;
    if (Number(m[2]) * 1000 < this.now()) return undefined;
    return role;
  }

  private mac(role: PortalRole, body: string): string {
    return createHmac("sha256", this.keys.get(role)!).update(body).digest("base64url");
  }
}

/** The value of one cookie from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function setCookieHeader(value: string, opts: { maxAgeSeconds: number; secure: boolean }): string {
  return [
    `${COOKIE_NAME}=${value}`,
    "Path=/portal",
    `Max-Age=${opts.maxAgeSeconds}`,
    "HttpOnly",
    "SameSite=Strict",
    ...(opts.secure ? ["Secure"] : []),
  ].join("; ");
}

export function clearCookieHeader(secure: boolean): string {
  return [`${COOKIE_NAME}=`, "Path=/portal", "Max-Age=0", "HttpOnly", "SameSite=Strict", ...(secure ? ["Secure"] : [])].join("; ");
}
