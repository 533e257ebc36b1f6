import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

/**
 * DNS rebinding defence: a page on evil.example whose name is re-pointed at 127.0.0.1
 * reaches the loopback listener with `Host: evil.example`. Only names this runtime is
 * known by are answered: loopback names and addresses, the addresses it binds, and the
 * names of the configured Origins (the tailnet name, a `tailscale serve` name) plus any
 * extra `server.allowedHosts`.
 */
export class HostAllowlist {
  private readonly names: Set<string>;

  constructor(names: Iterable<string>) {
    this.names = new Set([...names].map((n) => normalise(n)));
  }

  /** From the runtime's bind addresses, allowed Origins and extra host names. */
  static fromConfig(server: { hosts: readonly string[]; allowedOrigins: readonly string[]; allowedHosts?: readonly string[] }): HostAllowlist {
    const names: string[] = [...server.hosts, ...(server.allowedHosts ?? [])];
    for (const origin of server.allowedOrigins) {
      try {
        names.push(new URL(origin).hostname);
      } catch {
        // The schema validated these as URLs; nothing to add otherwise.
      }
    }
    return new HostAllowlist(names);
  }

  /** True when the request's Host names this runtime (a request without Host is not a browser's). */
  allows(req: IncomingMessage): boolean {
    const header = req.headers.host;
    if (header === undefined) return true;
    const name = hostnameOf(header);
    if (name === undefined) return false;
    if (isLoopbackName(name)) return true;
    return this.names.has(name);
  }
}

function normalise(name: string): string {
  const n = name.trim().toLowerCase().replace(/\.$/, "");
  return n.startsWith("[") && n.endsWith("]") ? n.slice(1, -1) : n;
}

/** The host name of a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`), or undefined when malformed. */
function hostnameOf(header: string): string | undefined {
  const h = header.trim().toLowerCase();
  const m = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/.exec(h) ?? /^([a-z0-9.-]+)(?::(\d{1,5}))?$/.exec(h);
  return m ? normalise(m[1]!) : undefined;
}

function isLoopbackName(name: string): boolean {
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  if (name === "::1") return true;
  return isIP(name) === 4 && name.startsWith("127.");
}
