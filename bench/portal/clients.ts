import { createRequire } from "node:module";
import WebSocket from "ws";
import * as nodePty from "node-pty";
import { ClientType, PROTOCOL_VERSION, ServerType, ackFrame, frame, jsonFrame } from "../../agent-runtime/portal/protocol.js";

/**
 * One terminal client per system under test, all with the same shape: bytes in, keys
 * out. None of them parses the terminal stream: the bench measures transport, so the
 * raw baseline and both web stacks do the same (no) rendering work.
 */
export interface BenchClient {
  write(data: string): void;
  onData(listener: (chunk: Buffer) => void): void;
  close(): Promise<void>;
}

export const COLS = 120;
export const ROWS = 40;

/** The raw limit: a tmux client in a node-pty in this process, no web layer at all. */
export function connectRaw(tmuxArgs: string[]): Promise<BenchClient> {
  const pty = nodePty.spawn("tmux", tmuxArgs, { name: "xterm-256color", cols: COLS, rows: ROWS, encoding: null, env: { ...process.env, TERM: "xterm-256color" } as Record<string, string> });
  const listeners: Array<(c: Buffer) => void> = [];
  pty.onData((d) => {
    const chunk = typeof d === "string" ? Buffer.from(d) : (d as unknown as Buffer);
    for (const l of listeners) l(chunk);
  });
  const exited = new Promise<void>((resolve) => pty.onExit(() => resolve()));
  return Promise.resolve({
    write: (data) => pty.write(data),
    onData: (l) => listeners.push(l),
    close: async () => {
      pty.kill("SIGHUP");
      await exited;
    },
  });
}

/** The picortex portal: the real protocol, acknowledging every chunk at once. */
export function connectPortal(url: string, cookie: string): Promise<BenchClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, "ws") + "/portal/ws", { headers: { origin: url, cookie }, perMessageDeflate: false });
    const listeners: Array<(c: Buffer) => void> = [];
    ws.binaryType = "nodebuffer";
    ws.on("open", () => ws.send(jsonFrame(ClientType.HELLO, { v: PROTOCOL_VERSION, cols: COLS, rows: ROWS })));
    ws.on("error", reject);
    ws.on("message", (data: Buffer) => {
      if (data[0] === ServerType.READY) {
        resolve({
          write: (s) => ws.send(frame(ClientType.INPUT, s)),
          onData: (l) => listeners.push(l),
          close: () =>
            new Promise<void>((done) => {
              ws.once("close", () => done());
              ws.close();
            }),
        });
      } else if (data[0] === ServerType.OUTPUT || data[0] === ServerType.HISTORY) {
        const chunk = data.subarray(1);
        if (data[0] === ServerType.OUTPUT) ws.send(ackFrame(chunk.length));
        for (const l of listeners) l(chunk);
      }
    });
  });
}

/** wetty over socket.io (its own client library), committing every chunk at once like its page does. */
export function connectWetty(url: string, wettyDir: string): Promise<BenchClient> {
  const require = createRequire(`${wettyDir}/package.json`);
  const { io } = require("socket.io-client") as { io: (url: string, opts: Record<string, unknown>) => SocketLike };
  return new Promise((resolve, reject) => {
    const socket = io(url, { path: "/wetty/socket.io", transports: ["websocket"], reconnection: false, forceNew: true, extraHeaders: { referer: `${url}/wetty` } });
    const listeners: Array<(c: Buffer) => void> = [];
    socket.on("connect_error", reject);
    socket.on("connect", () => socket.emit("resize", { cols: COLS, rows: ROWS }));
    socket.on("login", () =>
      resolve({
        write: (s) => socket.emit("input", s),
        onData: (l) => listeners.push(l),
        close: async () => {
          socket.disconnect();
        },
      }),
    );
    socket.on("data", (text: unknown) => {
      const chunk = Buffer.from(String(text));
      socket.emit("commit", String(text).length);
      for (const l of listeners) l(chunk);
    });
  });
}

interface SocketLike {
  on(event: string, listener: (...args: never[]) => void): void;
  emit(event: string, ...args: unknown[]): void;
  disconnect(): void;
}
