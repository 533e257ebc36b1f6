import { isIP } from "node:net";

/**
 * The exact Origins a browser page may connect from: the portal's own listening
 * addresses (plus `localhost` for a loopback bind) and any the operator configured
 * (e.g. the MagicDNS name or a `tailscale serve` HTTPS origin). Nothing is matched by
 * prefix or wildcard: a cross-site WebSocket to this port is a shell for the attacker.
 */
export function allowedOrigins(hosts: readonly string[], port: number, extra: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const host of hosts) {
    const h = isIP(host) === 6 ? `[${host}]` : host;
    out.add(`http://${h}:${port}`);
    if (host === "127.0.0.1" || host === "::1" || host === "localhost") out.add(`http://localhost:${port}`);
  }
  for (const origin of extra) out.add(new URL(origin).origin);
  return out;
}

export function originAllowed(origin: string | undefined, allowed: ReadonlySet<string>): boolean {
  return origin !== undefined && allowed.has(origin);
}
