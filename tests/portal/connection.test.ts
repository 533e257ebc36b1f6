import { afterAll, describe, expect, it } from "vitest";
import { EventEmitter } from "node:events";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WebSocket } from "ws";
import { PortalConnection } from "../../agent-runtime/portal/connection.js";
import type { SpawnOptions, TerminalProcess } from "../../agent-runtime/portal/pty.js";
import type { TmuxTarget } from "../../agent-runtime/portal/tmux.js";
import { ClientType, PROTOCOL_VERSION, ServerType, ackFrame, frame, jsonFrame } from "../../agent-runtime/portal/protocol.js";
import { createLogger } from "../../agent-runtime/log.js";
import { requireTool } from "./helpers.js";

/**
 * PortalConnection against a scripted socket and pty (the narrow pty interface makes
 * this possible), on a real private tmux server for the session bookkeeping. This pins
 * the exact watermark arithmetic and the socket-backpressure path, which are hard to
 * provoke deterministically through real TCP.
 */
const dir = mkdtempSync(join(tmpdir(), "pcx-portal-conn-"));
const target: TmuxTarget = { session: "conn-test", command: ["sh"], socket: join(dir, "tmux.sock"), config: "/dev/null", windowSize: "largest" };
afterAll(() => {
  try {
    execFileSync("tmux", ["-S", target.socket!, "kill-server"], { stdio: "ignore" });
  } catch {
    /* none */
  }
  rmSync(dir, { recursive: true, force: true });
});

class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  binaryType = "nodebuffer";
  bufferedAmount = 0;
  sent: Buffer[] = [];
  callbacks: Array<() => void> = [];
  closed?: { code: number; reason: string };
  send(data: Uint8Array, _opts: unknown, cb?: () => void): void {
    this.sent.push(Buffer.from(data));
    if (cb) this.callbacks.push(cb);
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason };
    this.readyState = 3;
    this.emit("close");
  }
  ping(): void {}
  terminate(): void {
    this.close(1006, "");
  }
  client(data: Uint8Array): void {
    this.emit("message", Buffer.from(data), true);
  }
}

class FakePty implements TerminalProcess {
  readonly pid = 4242;
  written: Buffer[] = [];
  resizes: Array<[number, number]> = [];
  paused = false;
  pauseCalls = 0;
  private dataListener?: (d: Buffer) => void;
  write(data: Uint8Array | string): void {
    this.written.push(Buffer.from(data));
  }
  resize(cols: number, rows: number): void {
    this.resizes.push([cols, rows]);
  }
  pause(): void {
    this.paused = true;
    this.pauseCalls++;
  }
  resume(): void {
    this.paused = false;
  }
  kills = 0;
  kill(): void {
    this.kills++;
  }
  onData(listener: (d: Buffer) => void): void {
    this.dataListener = listener;
  }
  onExit(): void {}
  emit(bytes: number): void {
    this.dataListener!(Buffer.alloc(bytes, 0x61));
  }
}

async function live(role: "rw" | "ro", opts: { high?: number; low?: number } = {}) {
  requireTool("tmux", "apt-get install tmux");
  const ws = new FakeSocket();
  const pty = new FakePty();
  let spawned: SpawnOptions | undefined;
  const conn = new PortalConnection({
    id: 1,
    ws: ws as unknown as WebSocket,
    role,
    target,
    spawn: (o) => ((spawned = o), pty),
    historyLines: 0,
    highWatermarkBytes: opts.high ?? 100_000,
    lowWatermarkBytes: opts.low ?? 20_000,
    log: createLogger("test", () => {}),
    onClosed: () => {},
  });
  ws.client(jsonFrame(ClientType.HELLO, { v: PROTOCOL_VERSION, cols: 90, rows: 30 }));
  for (let i = 0; i < 200 && !spawned; i++) await new Promise((r) => setTimeout(r, 25));
  pty.emit(10); // tmux's first draw: the connection goes live after it
  for (let i = 0; i < 200 && conn.state !== "live"; i++) await new Promise((r) => setTimeout(r, 10));
  expect(conn.state).toBe("live");
  expect(spawned!.args).toEqual(expect.arrayContaining(["attach-session", "-t", "=conn-test"]));
  return { ws, pty, conn, args: spawned!.args };
}

describe("PortalConnection (scripted socket and pty)", () => {
  it("pauses above the high watermark of unacknowledged bytes and resumes at the low one", async () => {
    const { ws, pty, conn } = await live("rw");
    expect(ws.sent[0]![0]).toBe(ServerType.READY);
    for (let i = 0; i < 9; i++) pty.emit(10_000);
    expect(pty.paused).toBe(false); // 90 010 bytes in flight: under 100 000
    pty.emit(10_000);
    expect(pty.paused).toBe(true);
    expect(conn.stats()).toMatchObject({ sentBytes: 100_010, ackedBytes: 0, pausedForAck: true });
    ws.client(ackFrame(70_000)); // 30 010 left: still above the low watermark
    expect(pty.paused).toBe(true);
    ws.client(ackFrame(10_010)); // 20 000 left: at the low watermark
    expect(pty.paused).toBe(false);
    ws.client(ackFrame(30_000)); // more than was ever sent
    expect(ws.closed).toMatchObject({ code: 4400, reason: expect.stringMatching(/more bytes than were sent/) });
  });

  it("pauses while the socket's send buffer is over the watermark and resumes once it drains", async () => {
    const { ws, pty, conn } = await live("rw", { high: 1_000_000, low: 100_000 });
    ws.bufferedAmount = 1_500_000; // the peer stopped reading: TCP is full
    pty.emit(1000);
    expect(conn.stats().pausedForBuffer).toBe(true);
    expect(pty.paused).toBe(true);
    await new Promise((r) => setImmediate(r)); // output is coalesced and sent after this turn
    expect(ws.callbacks.length).toBeGreaterThan(0); // a completion callback watches for the drain
    ws.bufferedAmount = 0;
    for (const cb of ws.callbacks.splice(0)) cb();
    expect(conn.stats().pausedForBuffer).toBe(false);
    expect(pty.paused).toBe(false);
  });

  it("notices the drain of a buffer filled by the frame itself (no stall after a burst on a slow peer)", async () => {
    // Found in a cold CI run: a frame sent while the buffer was low carried no completion
    // callback; that very frame filled the buffer, the pty was paused, and nothing ever
    // looked at the buffer again, so the tab froze (the reconnect browser test, under load).
    const { ws, pty, conn } = await live("rw", { high: 1_000_000, low: 100_000 });
    const send = ws.send.bind(ws);
    ws.send = (data: Uint8Array, opts: unknown, cb?: () => void) => {
      send(data, opts, cb);
      ws.bufferedAmount += 1_500_000; // the peer reads slowly: this frame stays queued
    };
    pty.emit(1000);
    await new Promise((r) => setImmediate(r)); // coalesced and sent after this turn
    expect(conn.stats().pausedForBuffer).toBe(true);
    expect(pty.paused).toBe(true);
    expect(ws.callbacks.length).toBeGreaterThan(0);
    ws.bufferedAmount = 0;
    for (const cb of ws.callbacks.splice(0)) cb();
    expect(conn.stats().pausedForBuffer).toBe(false);
    expect(pty.paused).toBe(false);
  });

  it("forwards input and resize for a writer, and nothing for a viewer", async () => {
    const rw = await live("rw");
    rw.ws.client(frame(ClientType.INPUT, "ls\r"));
    rw.ws.client(new Uint8Array([ClientType.RESIZE, 0, 100, 0, 40]));
    expect(Buffer.concat(rw.pty.written).toString()).toBe("ls\r");
    expect(rw.pty.resizes).toEqual([[100, 40]]);

    expect(rw.args).not.toContain("read-only,ignore-size");
    const ro = await live("ro");
    expect(ro.args).toEqual(expect.arrayContaining(["-f", "read-only,ignore-size"]));
    ro.ws.client(frame(ClientType.INPUT, "rm -rf /\r"));
    ro.ws.client(new Uint8Array([ClientType.RESIZE, 0, 20, 0, 5]));
    expect(ro.pty.written).toEqual([]);
    expect(ro.pty.resizes).toEqual([]);
    const errors = ro.ws.sent.filter((b) => b[0] === ServerType.ERROR);
    expect(errors).toHaveLength(2);
  });

  it("counts a paused client as stalled only while it shows no sign of reading", async () => {
    const { ws, pty, conn } = await live("rw", { high: 100_000, low: 20_000 });
    const t0 = Date.now();
    expect(conn.stalledMs(t0 + 60_000)).toBe(0); // not paused: never stalled
    for (let i = 0; i < 11; i++) pty.emit(10_000);
    expect(conn.paused).toBe(true);
    expect(conn.stalledMs(Date.now() + 5_000)).toBeGreaterThanOrEqual(4_900);
    // Its socket draining is a sign of life...
    ws.bufferedAmount = 50_000;
    conn.stalledMs(Date.now());
    ws.bufferedAmount = 10_000;
    expect(conn.stalledMs(Date.now())).toBeLessThan(1_000);
    // ...and so is any message (a pong too).
    ws.client(ackFrame(10_000));
    expect(conn.stalledMs(Date.now())).toBeLessThan(1_000);
    ws.emit("pong");
    expect(conn.stalledMs(Date.now())).toBeLessThan(1_000);
  });

  it("releases the pty exactly once, whichever way the tab goes", async () => {
    const a = await live("rw");
    a.ws.emit("error", new Error("ECONNRESET"));
    a.ws.emit("close");
    a.conn.terminate();
    expect(a.pty.kills).toBe(1);
    const b = await live("rw");
    for (let i = 0; i < 20; i++) b.pty.emit(10_000); // paused by flow control
    b.conn.terminate();
    expect(b.pty.kills).toBe(1);
    expect(b.conn.stalledMs(Date.now() + 60_000)).toBe(0); // closed: no longer counted
  });

  it("coalesces the chunks read in one turn into one OUTPUT frame, in order", async () => {
    const { ws, pty } = await live("rw");
    await new Promise((r) => setImmediate(r));
    const before = ws.sent.length;
    pty.emit(100);
    pty.emit(200);
    pty.emit(300);
    expect(ws.sent.length).toBe(before); // nothing sent mid-turn
    await new Promise((r) => setImmediate(r));
    const frames = ws.sent.slice(before);
    expect(frames).toHaveLength(1);
    expect(frames[0]![0]).toBe(ServerType.OUTPUT);
    expect(frames[0]!.length).toBe(1 + 600);
  });
});
