import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import headless from "@xterm/headless";
import { loadRuntimeConfig } from "../../agent-runtime/config/load.js";
import { startRuntime, type RunningRuntime } from "../../agent-runtime/server.js";
import { createLogger } from "../../agent-runtime/log.js";
import type { PortalModule } from "../../agent-runtime/portal/module.js";
import { ensurePortalTokens } from "../../agent-runtime/portal/tokens.js";
import { COOKIE_NAME } from "../../agent-runtime/portal/session-cookie.js";
import {
  ClientType,
  PROTOCOL_VERSION,
  ServerType,
  ackFrame,
  decodeText,
  frame,
  jsonFrame,
  resizeFrame,
  type ReadyInfo,
} from "../../agent-runtime/portal/protocol.js";
import { TerminalFeed } from "../../agent-runtime/portal/page/history.js";
import { listClients, runTmux } from "../../agent-runtime/portal/tmux.js";

const { Terminal } = headless;

/** Fails (never skips) with an actionable message when a host tool is missing. */
export function requireTool(name: string, hint: string): void {
  try {
    execFileSync("sh", ["-c", 'command -v "$1"', "sh", name], { stdio: "pipe" });
  } catch {
    throw new Error(`${name} is required for the portal tests but is not installed: ${hint}`);
  }
}

export const PROMPT = "pcx$ ";

export interface TestPortal {
  runtime: RunningRuntime;
  portal: PortalModule;
  url: string;
  origin: string;
  dataDir: string;
  socket: string;
  token: string;
  readOnlyToken?: string;
  logs: string[];
  tmux(args: string[]): Promise<string>;
  tmuxClients(): Promise<Awaited<ReturnType<typeof listClients>>>;
  close(): Promise<void>;
}

export async function startTestPortal(portal: Record<string, unknown> = {}, server: Record<string, unknown> = {}): Promise<TestPortal> {
  requireTool("tmux", "apt-get install tmux");
  const dataDir = mkdtempSync(join(tmpdir(), "pcx-portal-"));
  const socket = join(dataDir, "tmux.sock");
  const logs: string[] = [];
  const config = loadRuntimeConfig({
    env: {},
    overrides: {
      dataDir,
      server: { port: 0, ...server },
      turns: { enabled: false },
      brain: { enabled: false },
      portal: {
        session: "pcx-test",
        tmuxSocket: socket,
        tmuxConfig: "/dev/null",
        // A plain shell with a known prompt stands in for claude.
        command: ["env", `PS1=${PROMPT}`, "sh"],
        cwd: dataDir,
        ...portal,
      },
    },
  });
  const runtime = await startRuntime(config, createLogger("test", (line) => logs.push(line)));
  const mod = runtime.modules.find((m) => m.name === "portal") as PortalModule | undefined;
  if (!mod) throw new Error("portal module is not mounted");
  const tokens = ensurePortalTokens(dataDir, Boolean(portal.readOnlyToken));
  const url = runtime.urls[0]!;
  const target = mod.target;
  return {
    runtime,
    portal: mod,
    url,
    origin: url,
    dataDir,
    socket,
    token: tokens.readWrite,
    readOnlyToken: tokens.readOnly,
    logs,
    tmux: (args) => runTmux(target, args),
    tmuxClients: () => listClients(target),
    async close() {
      await runtime.close();
      try {
        execFileSync("tmux", ["-S", socket, "kill-server"], { stdio: "ignore" });
      } catch {
        /* no server left */
      }
      if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Exchanges a token for the session cookie; returns `name=value` for a Cookie header. */
export async function signIn(p: TestPortal, token: string): Promise<string> {
  const res = await fetch(`${p.url}/portal/api/session`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: p.origin },
    body: JSON.stringify({ token }),
  });
  if (res.status !== 200) throw new Error(`sign-in failed with ${res.status}: ${await res.text()}`);
  const setCookie = res.headers.get("set-cookie") ?? "";
  const m = new RegExp(`${COOKIE_NAME}=([^;]+)`).exec(setCookie);
  if (!m) throw new Error(`no session cookie in ${setCookie}`);
  return `${COOKIE_NAME}=${m[1]}`;
}

/** Tries a WebSocket upgrade and reports the HTTP status it was refused with, or 101. */
export function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, "ws") + "/portal/ws", { headers });
    ws.on("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.on("open", () => {
      resolve(101);
      ws.close();
    });
    ws.on("error", (err) => reject(err));
  });
}

export interface ClientOptions {
  cookie: string;
  origin?: string;
  cols?: number;
  rows?: number;
  /** Acknowledge processed output like the page does (default true). */
  ack?: boolean;
  /** Answer WebSocket pings (default true). */
  autoPong?: boolean;
}

/**
 * A scripted browser tab: speaks the portal protocol and renders everything into an
 * @xterm/headless terminal exactly as the page does with xterm.js.
 */
export class TestClient {
  readonly ws: WebSocket;
  readonly term: InstanceType<typeof Terminal>;
  private readonly feed: TerminalFeed;
  ready?: ReadyInfo;
  errors: string[] = [];
  exited = false;
  closeCode?: number;
  closeReason = "";
  outputBytes = 0;
  processedBytes = 0;
  ackedBytes = 0;
  private readonly opened: Promise<void>;
  private readonly closed: Promise<void>;

  constructor(p: { url: string; origin: string }, private readonly o: ClientOptions) {
    this.term = new Terminal({ cols: o.cols ?? 80, rows: o.rows ?? 24, scrollback: 5000, allowProposedApi: true });
    this.feed = new TerminalFeed(this.term);
    this.ws = new WebSocket(p.url.replace(/^http/, "ws") + "/portal/ws", {
      headers: { origin: o.origin ?? p.origin, cookie: o.cookie },
      autoPong: o.autoPong ?? true,
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("unexpected-response", (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      this.ws.once("error", reject);
    });
    this.closed = new Promise((resolve) =>
      this.ws.once("close", (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve();
      }),
    );
    this.ws.on("message", (data: Buffer) => this.onMessage(data));
  }

  static async connect(p: { url: string; origin: string }, o: ClientOptions): Promise<TestClient> {
    const c = await TestClient.hello(p, o);
    await c.until(() => c.ready !== undefined, "READY");
    return c;
  }

  /** Opens and sends HELLO without waiting for READY (for tests about what may come first). */
  static async hello(p: { url: string; origin: string }, o: ClientOptions): Promise<TestClient> {
    const c = new TestClient(p, o);
    await c.opened;
    c.sendRaw(jsonFrame(ClientType.HELLO, { v: PROTOCOL_VERSION, cols: c.term.cols, rows: c.term.rows }));
    return c;
  }

  private onMessage(data: Buffer): void {
    const payload = data.subarray(1);
    switch (data[0]) {
      case ServerType.READY:
        this.ready = JSON.parse(decodeText(payload)) as ReadyInfo;
        this.term.reset();
        this.feed.reset();
        break;
      case ServerType.HISTORY:
        this.feed.history(decodeText(payload));
        break;
      case ServerType.OUTPUT: {
        const n = payload.length;
        this.outputBytes += n;
        this.feed.output(new Uint8Array(payload), () => {
          this.processedBytes += n;
          if (this.o.ack !== false) this.ackAll();
        });
        break;
      }
      case ServerType.EXIT:
        this.exited = true;
        break;
      case ServerType.ERROR:
        this.errors.push((JSON.parse(decodeText(payload)) as { message: string }).message);
        break;
    }
  }

  /** Acknowledges everything rendered so far (a stalled client calls this to recover). */
  ackAll(): void {
    const n = this.processedBytes - this.ackedBytes;
    if (n > 0 && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(ackFrame(n));
      this.ackedBytes += n;
    }
  }

  setAck(on: boolean): void {
    this.o.ack = on;
    if (on) this.ackAll();
  }

  sendRaw(data: Uint8Array | Buffer | string): void {
    this.ws.send(data);
  }

  type(text: string): void {
    this.sendRaw(frame(ClientType.INPUT, text));
  }

  resize(cols: number, rows: number): void {
    this.sendRaw(resizeFrame(cols, rows));
  }

  /** All lines: scrollback then screen, trailing spaces trimmed. */
  lines(): string[] {
    const b = this.term.buffer.active;
    const out: string[] = [];
    for (let i = 0; i < b.length; i++) out.push(b.getLine(i)?.translateToString(true) ?? "");
    return out;
  }

  /** The visible screen without tmux's status line. */
  screen(): string {
    const b = this.term.buffer.active;
    const out: string[] = [];
    for (let i = b.viewportY; i < b.viewportY + this.term.rows; i++) out.push(b.getLine(i)?.translateToString(true) ?? "");
    return out.filter((l) => !l.startsWith("[pcx-test]")).join("\n");
  }

  /** Waits (polling the rendered terminal) until a condition holds. Fails with context, never by time alone. */
  async until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${this.screen()}`);
      if (this.closeCode !== undefined && !cond()) throw new Error(`connection closed (${this.closeCode} ${this.closeReason}) while waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async waitForText(text: string, timeoutMs?: number): Promise<void> {
    await this.until(() => this.lines().some((l) => l.includes(text)), JSON.stringify(text), timeoutMs);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    await this.closed;
  }

  waitClosed(): Promise<void> {
    return this.closed;
  }
}

/** Polls an async condition; for state outside a client (tmux, files). */
export async function eventually(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
