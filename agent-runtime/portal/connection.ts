import type { WebSocket } from "ws";
import type { Logger } from "../log.js";
import {
  CloseCode,
  PROTOCOL_VERSION,
  ProtocolError,
  ServerType,
  decodeClientMessage,
  frame,
  jsonFrame,
  type ClientMessage,
  type Hello,
  type ReadyInfo,
} from "./protocol.js";
import type { PortalRole } from "./session-cookie.js";
import { attachArgs, ensureSession, historyBufferName, takeBuffer, tmuxEnv, tmuxInvocation, type TmuxTarget } from "./tmux.js";
import type { SpawnOptions, TerminalProcess } from "./pty.js";

export interface ConnectionOptions {
  id: number;
  ws: WebSocket;
  role: PortalRole;
  target: TmuxTarget;
  spawn: (opts: SpawnOptions) => TerminalProcess;
  historyLines: number;
  highWatermarkBytes: number;
  lowWatermarkBytes: number;
  log: Logger;
  onClosed: (conn: PortalConnection) => void;
}

export interface ConnectionStats {
  id: number;
  role: PortalRole;
  state: PortalConnection["state"];
  sentBytes: number;
  ackedBytes: number;
  pausedForAck: boolean;
  pausedForBuffer: boolean;
  bufferedAmount: number;
  pauses: number;
  /** Milliseconds this paused client has shown no sign of life (0 when not paused). */
  stalledMs: number;
}

const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * One browser tab: its own tmux client in its own pty, so pausing this tab's stream
 * (flow control) never slows another tab; tmux itself drops frames for a blocked client
 * and redraws it when it catches up.
 */
export class PortalConnection {
  state: "handshake" | "attaching" | "live" | "closed" = "handshake";
  lastActivity = Date.now();
  alive = true;
  /** Last time the peer showed it is reading: any message, a pong, or its socket draining. */
  private lastProgress = Date.now();
  private pausedSince = 0;
  private lastBuffered = 0;
  private lastProbe = 0;
  private pty?: TerminalProcess;
  private sent = 0;
  private acked = 0;
  private pausedForAck = false;
  private pausedForBuffer = false;
  private pauses = 0;
  private held: Buffer[] | undefined;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(private readonly o: ConnectionOptions) {
    o.ws.binaryType = "nodebuffer";
    o.ws.on("message", (data, isBinary) => {
      this.lastProgress = Date.now();
      this.onMessage(data as Buffer, isBinary);
    });
    o.ws.on("pong", () => {
      this.alive = true;
      this.lastProgress = Date.now();
    });
    o.ws.on("close", () => this.teardown());
    o.ws.on("error", () => this.teardown());
    this.handshakeTimer = setTimeout(() => this.close(CloseCode.HANDSHAKE_TIMEOUT, "no HELLO within 10 s"), HANDSHAKE_TIMEOUT_MS);
  }

  get id(): number {
    return this.o.id;
  }

  get role(): PortalRole {
    return this.o.role;
  }

  stats(): ConnectionStats {
    return {
      id: this.o.id,
      role: this.o.role,
      state: this.state,
      sentBytes: this.sent,
      ackedBytes: this.acked,
      pausedForAck: this.pausedForAck,
      pausedForBuffer: this.pausedForBuffer,
      bufferedAmount: this.o.ws.bufferedAmount,
      pauses: this.pauses,
      stalledMs: this.stalledMs(),
    };
  }

  get paused(): boolean {
    return this.pausedForAck || this.pausedForBuffer;
  }

  /**
   * How long a paused client has shown no sign of reading: no message (ACK, PING), no
   * pong and no drain of its socket. A live tab, however slow, keeps doing one of these;
   * a frozen phone or a vanished peer does none. 0 while the stream is not paused.
   */
  stalledMs(now = Date.now()): number {
    if (!this.paused || this.state === "closed") return 0;
    const buffered = this.o.ws.bufferedAmount;
    if (buffered < this.lastBuffered) this.lastProgress = now;
    this.lastBuffered = buffered;
    return Math.max(0, now - Math.max(this.lastProgress, this.pausedSince));
  }

  /** Asks a paused client for a sign of life (a pong) at most once per `everyMs`. */
  probe(everyMs: number, now = Date.now()): void {
    if (now - this.lastProbe < everyMs || this.state === "closed") return;
    this.lastProbe = now;
    try {
      this.o.ws.ping();
    } catch {
      /* the socket is going away; teardown follows */
    }
  }

  ping(): void {
    this.alive = false;
    this.o.ws.ping();
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    try {
      this.o.ws.close(code, reason.slice(0, 120));
    } catch {
      this.o.ws.terminate();
    }
    this.teardown();
  }

  terminate(): void {
    this.o.ws.terminate();
    this.teardown();
  }

  private teardown(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    clearTimeout(this.handshakeTimer);
    // Killing our pty detaches our tmux client; the session and the agent live on. kill()
    // drains a paused pty and escalates to SIGKILL, so a tab that vanished while paused
    // by flow control leaves no tmux client process or fd behind.
    const pty = this.pty;
    this.pty = undefined;
    this.held = undefined;
    pty?.kill();
    this.o.onClosed(this);
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === "closed") return;
    if (!isBinary) {
      this.close(CloseCode.PROTOCOL, "text frames are not part of the protocol");
      return;
    }
    let msg: ClientMessage;
    try {
      msg = decodeClientMessage(data);
    } catch (err) {
      const message = err instanceof ProtocolError ? err.message : "malformed message";
      this.o.log.warn("portal client sent a bad message; closing", { client: this.o.id, reason: message });
      this.close(CloseCode.PROTOCOL, message);
      return;
    }
    if (this.state === "handshake") {
      if (msg.type !== "hello") {
        this.close(CloseCode.PROTOCOL, "the first message must be HELLO");
        return;
      }
      clearTimeout(this.handshakeTimer);
      this.state = "attaching";
      this.attach(msg.hello).catch((err: unknown) => {
        this.o.log.error("portal attach failed", { client: this.o.id, error: (err as Error).message });
        this.send(jsonFrame(ServerType.ERROR, { message: `Cannot attach to the tmux session: ${(err as Error).message}` }));
        this.close(CloseCode.SESSION_ENDED, "attach failed");
      });
      return;
    }
    switch (msg.type) {
      case "hello":
        this.close(CloseCode.PROTOCOL, "HELLO was already received");
        return;
      case "ping":
        this.send(frame(ServerType.PONG));
        return;
      case "ack":
        this.onAck(msg.bytes);
        return;
      case "input":
      case "resize":
        if (this.o.role === "ro") {
          // Enforced here and by tmux (`attach -f read-only,ignore-size`): belt and braces.
          this.send(jsonFrame(ServerType.ERROR, { message: "This is a read-only view: input and resize are ignored." }));
          return;
        }
        if (this.state !== "live" || !this.pty) return; // nothing to type into yet
        this.lastActivity = Date.now();
        if (msg.type === "input") this.pty.write(msg.data);
        else this.pty.resize(msg.cols, msg.rows);
        return;
    }
  }

  private async attach(hello: Hello): Promise<void> {
    const t = this.o.target;
    await ensureSession(t, { cols: hello.cols, rows: hello.rows });
    if (this.state === "closed") return;
    const buffer = this.o.historyLines > 0 ? historyBufferName() : undefined;
    const args = attachArgs(t, { readOnly: this.o.role === "ro", historyBuffer: buffer, historyLines: this.o.historyLines });
    // As another account (portal.runAs) the client runs through sudo, from "/".
    const inv = t.runAs ? tmuxInvocation(t, args) : { file: "tmux", args };
    const pty = this.o.spawn({
      file: inv.file,
      args: inv.args,
      cols: hello.cols,
      rows: hello.rows,
      cwd: t.runAs ? "/" : t.cwd,
      env: tmuxEnv(t.env),
    });
    this.pty = pty;
    let first = true;
    pty.onData((chunk) => {
      if (this.state === "closed") return;
      if (first) {
        // tmux has run capture + attach (one command queue) before it draws anything:
        // hold the live stream until the captured history has gone out first.
        first = false;
        this.held = [chunk];
        pty.pause();
        void this.sendHistoryThenGoLive(buffer);
        return;
      }
      if (this.held) this.held.push(chunk);
      else this.sendOutput(chunk);
    });
    pty.onExit(({ exitCode }) => {
      if (this.state === "closed") return;
      this.flushHeld();
      this.flushOutput();
      this.send(jsonFrame(ServerType.EXIT, { reason: `tmux client exited (${exitCode}); the session ended or was detached` }));
      this.pty = undefined;
      this.close(CloseCode.SESSION_ENDED, "session ended");
    });
    if ((this.state as string) === "closed") pty.kill(); // the tab went away while we spawned
  }

  private async sendHistoryThenGoLive(buffer: string | undefined): Promise<void> {
    const history = buffer ? await takeBuffer(this.o.target, buffer) : "";
    if (this.state === "closed") return;
    const ready: ReadyInfo = { v: PROTOCOL_VERSION, client: this.o.id, session: this.o.target.session, readOnly: this.o.role === "ro" };
    this.send(jsonFrame(ServerType.READY, ready));
    if (history) this.send(frame(ServerType.HISTORY, history));
    this.state = "live";
    this.flushHeld();
    this.applyPause();
  }

  private flushHeld(): void {
    const held = this.held;
    this.held = undefined;
    for (const chunk of held ?? []) this.sendOutput(chunk);
  }

  /**
   * Write coalescing: pty reads are small (a few KiB each), and one WebSocket frame per
   * read costs a frame header, a send and a syscall each. Chunks read in one turn of the
   * event loop are gathered and sent as one OUTPUT frame right after it (setImmediate),
   * with one copy into the frame; a keystroke's echo, which arrives alone, goes out in
   * the same turn it was read.
   */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private static readonly MAX_FRAME = 256 * 1024;

  private sendOutput(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.sent += chunk.length;
    if (!this.pausedForAck && this.sent - this.acked > this.o.highWatermarkBytes) {
      this.pausedForAck = true;
      this.pauses++;
      this.applyPause();
    }
    if (this.pendingBytes >= PortalConnection.MAX_FRAME) this.flushOutput();
    else {
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushOutput());
      }
      this.checkBuffer(); // a socket already backed up pauses the pty now, not after the flush
    }
  }

  private flushOutput(): void {
    this.flushScheduled = false;
    if (this.pendingBytes === 0 || this.state === "closed") {
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    const out = Buffer.allocUnsafe(this.pendingBytes + 1);
    out[0] = ServerType.OUTPUT;
    let offset = 1;
    for (const c of this.pending) offset += c.copy(out, offset);
    this.pending = [];
    this.pendingBytes = 0;
    // Every frame carries a completion callback: the frame itself may be what fills the
    // buffer (a burst to a slow peer), and once the pty is paused for it nothing else would
    // look at the buffer again; the tab would freeze. One closure per coalesced frame.
    this.o.ws.send(out, { binary: true }, () => this.checkBuffer());
    this.checkBuffer();
  }

  private onAck(bytes: number): void {
    this.acked += bytes;
    if (this.acked > this.sent) {
      this.close(CloseCode.PROTOCOL, "ACK for more bytes than were sent");
      return;
    }
    if (this.pausedForAck && this.sent - this.acked <= this.o.lowWatermarkBytes) {
      this.pausedForAck = false;
      this.applyPause();
    }
  }

  /** Socket backpressure: a client whose TCP window is full is paused like an unacked one. */
  private checkBuffer(): void {
    if (this.state === "closed") return;
    const buffered = this.o.ws.bufferedAmount;
    if (!this.pausedForBuffer && buffered > this.o.highWatermarkBytes) {
      this.pausedForBuffer = true;
      this.pauses++;
      this.applyPause();
    } else if (this.pausedForBuffer && buffered <= this.o.lowWatermarkBytes) {
      this.pausedForBuffer = false;
      this.applyPause();
    }
  }

  private applyPause(): void {
    if (this.paused) {
      if (this.pausedSince === 0) {
        this.pausedSince = Date.now();
        this.lastBuffered = this.o.ws.bufferedAmount;
      }
    } else this.pausedSince = 0;
    if (!this.pty || this.held) return;
    if (this.paused) this.pty.pause();
    else this.pty.resume();
  }

  private send(data: Uint8Array): void {
    // A large frame (the history on attach) can fill the buffer too: its drain is noticed the same way.
    if (this.o.ws.readyState === this.o.ws.OPEN) this.o.ws.send(data, { binary: true }, () => this.checkBuffer());
  }
}
