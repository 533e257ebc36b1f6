import { BlockList, type Server, type Socket } from "node:net";

/**
 * Listening sockets handed over by systemd socket activation (sd_listen_fds(3)): on a host,
 * picortex-runtime.socket (templates/render-units.ts) holds the API and gateway ports on
 * the dual-stack wildcard (`[::]`, IPv4 and IPv6) in PID 1, across every restart of the
 * runtime. No other account can bind any address on those ports (not `[::1]`, not
 * `127.0.0.2`, not the tailnet's IPv6 address), and there is no gap while the runtime
 * restarts: connections wait in the socket's backlog.
 *
 * systemd passes them in the unit's ListenStream= order: the API, then the gateway. The
 * runtime checks each one's port against its config once it listens (checkInheritedPort).
 */
export const LISTEN_FD_NAMES = ["api", "gateway"] as const;
export type ListenFdName = (typeof LISTEN_FD_NAMES)[number];

/** The first fd systemd passes (SD_LISTEN_FDS_START). */
const LISTEN_FDS_START = 3;

export class ListenFdsError extends Error {
  constructor(message: string) {
    super(`socket activation: ${message}`);
    this.name = "ListenFdsError";
  }
}

/**
 * The inherited listeners by role, or undefined when this process was not socket-activated
 * (local mode, tests): then the runtime binds its configured hosts itself. The variables
 * are removed from the environment either way, so no child sees them.
 */
export function takeListenFds(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): Map<ListenFdName, number> | undefined {
  const { LISTEN_PID: listenPid, LISTEN_FDS: listenFds } = env;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (listenFds === undefined) return undefined;
  // Meant for another process (a wrapper's child would see its parent's variables).
  if (listenPid !== String(pid)) return undefined;
  if (listenFds !== String(LISTEN_FD_NAMES.length)) {
    throw new ListenFdsError(`expected ${LISTEN_FD_NAMES.length} sockets (ListenStream= the API port, then the gateway port), got LISTEN_FDS=${JSON.stringify(listenFds).slice(0, 20)}`);
  }
  return new Map(LISTEN_FD_NAMES.map((name, i) => [name, LISTEN_FDS_START + i]));
}

/** A socket unit and the runtime's config that disagree on a port: refuse, never serve the API on the gateway's port. */
export function checkInheritedPort(name: ListenFdName, actual: number, expected: number): void {
  if (expected !== 0 && actual !== expected) {
    throw new ListenFdsError(`the ${name} socket (fd ${LISTEN_FDS_START + LISTEN_FD_NAMES.indexOf(name)}) listens on port ${actual}, but the config says ${expected}: picortex-runtime.socket must list the API port, then the gateway port`);
  }
}

/** Loopback, both families (IPv4-mapped forms are matched too: BlockList handles them). */
function loopback(): BlockList {
  const b = new BlockList();
  b.addSubnet("127.0.0.0", 8, "ipv4");
  b.addAddress("::1", "ipv6");
  return b;
}

/**
 * Who may talk to a wildcard listener. The API: loopback and the tailnet (Tailscale's
 * CGNAT range 100.64.0.0/10 and its IPv6 ULA prefix fd7a:115c:a1e0::/48). The gateway:
 * loopback only (chats and the portal's agent, on this host). Anything else (the public
 * interface, a docker bridge) is closed before a byte is read.
 */
export function sourceAllowlist(kind: ListenFdName): BlockList {
  const b = loopback();
  if (kind === "api") {
    b.addSubnet("100.64.0.0", 10, "ipv4");
    b.addSubnet("fd7a:115c:a1e0::", 48, "ipv6");
  }
  return b;
}

export function sourceAllowed(list: BlockList, address: string | undefined): boolean {
  if (!address) return false;
  const plain = address.replace(/%.*$/, "");
  return list.check(plain, plain.includes(":") ? "ipv6" : "ipv4");
}

/**
 * Closes every connection from outside the allowlist as it is accepted. `onRefused` hears
 * of the first one and then at most one a minute (a scan of the public address must not
 * flood the journal).
 */
export function enforceSourceAllowlist(server: Server, kind: ListenFdName, onRefused?: (address: string | undefined) => void): void {
  const list = sourceAllowlist(kind);
  let reported = -Infinity;
  server.on("connection", (socket: Socket) => {
    if (sourceAllowed(list, socket.remoteAddress)) return;
    socket.destroy();
    const now = Date.now();
    if (now - reported >= 60_000) {
      reported = now;
      onRefused?.(socket.remoteAddress);
    }
  });
}

/** Listens on an inherited fd (already bound and listening), resolving with its port. */
export async function listenOnFd(server: Server, fd: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ fd }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address();
  if (!addr || typeof addr !== "object") throw new ListenFdsError(`fd ${fd} is not a TCP listening socket`);
  return addr.port;
}
