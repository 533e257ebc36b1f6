import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import type { Logger } from "../log.js";
import { CloseCode, LIMITS } from "./protocol.js";
import { PortalConnection, type ConnectionStats } from "./connection.js";
import { COOKIE_NAME, readCookie, type SessionCookies } from "./session-cookie.js";
import type { CredentialLimiter } from "../http/rate-limit.js";
import { originAllowed } from "./origin.js";
import type { TmuxTarget } from "./tmux.js";
import type { SpawnOptions, TerminalProcess } from "./pty.js";

export const WS_PATH = "/portal/ws";

export interface PortalSocketsOptions {
  cookies: SessionCookies;
  limiter: CredentialLimiter;
  origins: () => ReadonlySet<string>;
  target: TmuxTarget;
  spawn: (opts: SpawnOptions) => TerminalProcess;
  maxClients: number;
  historyLines: number;
  highWatermarkBytes: number;
  lowWatermarkBytes: number;
  heartbeatSeconds: number;
  /** A client paused by flow control that shows no sign of reading for this long is dropped. */
  stalledTimeoutSeconds: number;
  idleTimeoutSeconds: number;
  log: Logger;
}

function reject(socket: Duplex, status: number, reason: string, extra: Record<string, string> = {}): void {
  const body = JSON.stringify({ error: { code: reason.toLowerCase().replace(/\W+/g, "_"), message: reason } });
  const headers = Object.entries({ "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), connection: "close", ...extra })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  const text = { 401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests", 503: "Service Unavailable" }[status] ?? "Error";
  socket.end(`HTTP/1.1 ${status} ${text}\r\n${headers}\r\n${body}`);
}

/**
 * The WebSocket side of the portal. The upgrade is the handshake's first half: rate
 * limit, exact Origin, a valid session cookie and a free slot, in that order, each with
 * its own status code. Only then does a connection exist to receive HELLO.
 */
export class PortalSockets {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: LIMITS.maxMessageBytes, perMessageDeflate: false });
  private readonly connections = new Set<PortalConnection>();
  /** Every pty (tmux client) spawned and not yet exited, including ones being released. */
  private readonly terminals = new Set<TerminalProcess>();
  private nextId = 1;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly stallSweep: NodeJS.Timeout;
  private readonly spawn: (opts: SpawnOptions) => TerminalProcess;

  constructor(private readonly o: PortalSocketsOptions) {
    this.heartbeat = setInterval(() => this.tick(), o.heartbeatSeconds * 1000);
    this.heartbeat.unref();
    // Paused clients are checked every second: a frozen tab must give back its tmux
    // client and its slot in seconds, not after two heartbeats.
    this.stallSweep = setInterval(() => this.sweepStalled(), 1000);
    this.stallSweep.unref();
    this.spawn = (opts) => {
      const term = o.spawn(opts);
      this.terminals.add(term);
      term.onExit(() => this.terminals.delete(term));
      return term;
    };
  }

  /** Claims upgrades for the portal path; returns false for any other path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== WS_PATH) return false;
    const client = req.socket.remoteAddress ?? "unknown";
    const origin = req.headers.origin;
    if (!originAllowed(origin, this.o.origins())) {
      this.o.log.warn("portal upgrade refused: Origin not allowed", { client, origin: origin ?? "(none)" });
      reject(socket, 403, "Origin not allowed. Add it to server.allowedOrigins if this is your own portal address.");
      return true;
    }
    const role = this.o.cookies.verify(readCookie(req.headers.cookie, COOKIE_NAME));
    if (!role) {
      // A valid cookie is never refused; failures count per client bucket (all of loopback is one).
      const retry = this.o.limiter.refuse(client);
      if (retry > 0) {
        this.o.log.warn("portal upgrade rate-limited", { client });
        reject(socket, 429, `Too many failed attempts; retry in ${retry} s.`, { "retry-after": String(retry) });
        return true;
      }
      this.o.log.warn("portal upgrade refused: no valid session cookie", { client });
      reject(socket, 401, "No valid portal session; open the portal link with the token again.");
      return true;
    }
    if (this.connections.size >= this.o.maxClients && !this.giveWay() && !(role === "rw" && this.displaceViewer())) {
      reject(socket, 503, `The portal already has ${this.o.maxClients} connections (portal.maxClients).`);
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new PortalConnection({
        id: this.nextId++,
        ws,
        role,
        target: this.o.target,
        spawn: this.spawn,
        historyLines: this.o.historyLines,
        highWatermarkBytes: this.o.highWatermarkBytes,
        lowWatermarkBytes: this.o.lowWatermarkBytes,
        log: this.o.log,
        onClosed: (c) => {
          this.connections.delete(c);
          this.o.log.info("portal client disconnected", { client: c.id });
        },
      });
      this.connections.add(conn);
      this.o.log.info("portal client connected", { client: conn.id, role, from: client });
    });
    return true;
  }

  stats(): ConnectionStats[] {
    return [...this.connections].map((c) => c.stats());
  }

  get size(): number {
    return this.connections.size;
  }

  /** tmux client processes (ptys) that really exist, including any still being released. */
  get terminalCount(): number {
    return this.terminals.size;
  }

  private stalledLimitMs(): number {
    return this.o.stalledTimeoutSeconds * 1000;
  }

  /** Drops paused clients that stopped reading; asks the others for a pong. */
  private sweepStalled(): void {
    const now = Date.now();
    const limit = this.stalledLimitMs();
    for (const conn of this.connections) {
      if (!conn.paused) continue;
      const stalled = conn.stalledMs(now);
      if (stalled >= limit) {
        this.o.log.warn("portal client stopped reading while paused; dropping", { client: conn.id, stalledMs: stalled });
        conn.terminate();
      } else conn.probe(Math.max(500, limit / 4), now);
    }
  }

  /**
   * At the cap, a new tab beats a frozen one: the paused client that has been stalled
   * longest (at least a quarter of stalledTimeoutSeconds, and 1 s) is dropped to make room.
   */
  private giveWay(): boolean {
    const now = Date.now();
    const min = Math.max(1000, this.stalledLimitMs() / 4);
    let victim: PortalConnection | undefined;
    let worst = 0;
    for (const conn of this.connections) {
      const stalled = conn.stalledMs(now);
      if (stalled >= min && stalled > worst) {
        victim = conn;
        worst = stalled;
      }
    }
    if (!victim) return false;
    this.o.log.warn("portal is full; dropping a client that stopped reading while paused", { client: victim.id, stalledMs: worst });
    victim.terminate();
    return true;
  }

  /**
   * At the cap, the read-write operator always gets in: the oldest read-only viewer is
   * closed with DISPLACED (4429) and a reason it shows, instead of read-only links (which
   * may be handed out widely) locking the operator out of their own agent. A viewer never
   * displaces anyone; only read-write connections at the cap refuse an operator.
   */
  private displaceViewer(): boolean {
    const victim = [...this.connections].find((c) => c.role === "ro");
    if (!victim) return false;
    this.o.log.warn("portal is full; closing the oldest read-only viewer for a read-write sign-in", { client: victim.id });
    // close() tears down at once (its onClosed frees the slot), then sends the close frame.
    victim.close(CloseCode.DISPLACED, "portal full: a read-write operator signed in (portal.maxClients)");
    this.connections.delete(victim);
    return true;
  }

  private tick(): void {
    const now = Date.now();
    for (const conn of this.connections) {
      if (!conn.alive) {
        this.o.log.warn("portal client missed a heartbeat; dropping", { client: conn.id });
        conn.terminate();
        continue;
      }
      if (this.o.idleTimeoutSeconds > 0 && now - conn.lastActivity > this.o.idleTimeoutSeconds * 1000) {
        conn.close(CloseCode.IDLE, "idle timeout");
        continue;
      }
      conn.ping();
    }
  }

  close(): void {
    clearInterval(this.heartbeat);
    clearInterval(this.stallSweep);
    for (const conn of [...this.connections]) conn.close(CloseCode.SERVER_CLOSING, "portal shutting down");
    this.wss.close();
  }
}
