import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { WebglAddon } from "@xterm/addon-webgl";
import { WebLinksAddon } from "@xterm/addon-web-links";
import { Unicode11Addon } from "@xterm/addon-unicode11";
import "@xterm/xterm/css/xterm.css";
import "./style.css";
import {
  ClientType,
  CloseCode,
  LIMITS,
  PROTOCOL_VERSION,
  ServerType,
  ackFrame,
  decodeText,
  frame,
  jsonFrame,
  resizeFrame,
  type ReadyInfo,
} from "../protocol.js";
import { mountExtraKeys } from "./extra-keys.js";
import { TerminalFeed } from "./history.js";
import { EXITED_TEXT } from "../session-command.js";

// ---- CSP: xterm.js injects <style> elements; tag them with this page's nonce so the
// policy can stay `style-src 'self' 'nonce-…'` instead of 'unsafe-inline'.
const nonce = document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? "";
const createElement = Document.prototype.createElement;
Document.prototype.createElement = function (this: Document, tag: string, options?: ElementCreationOptions) {
  const el = createElement.call(this, tag, options);
  if (tag.toLowerCase() === "style") (el as HTMLStyleElement).nonce = nonce;
  return el;
} as typeof Document.prototype.createElement;

const $ = <T extends HTMLElement>(sel: string) => document.querySelector<T>(sel)!;
const statusEl = $("#status");
const noticeEl = $("#notice");
const sessionEl = $("#session");

type State = "connecting" | "connected" | "read-only" | "reconnecting" | "ended" | "exited" | "error";
function setState(state: State, text: string): void {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
  document.body.dataset.state = state; // for tests and styling
}
function notice(text: string | undefined): void {
  noticeEl.hidden = !text;
  noticeEl.textContent = text ?? "";
}

/**
 * Token bootstrap. The link is `…/portal/#token=…`: a fragment never reaches the server
 * (no URL, Referer or access log carries it). It is exchanged once for an HttpOnly,
 * SameSite=Strict cookie and then removed from the address bar and history.
 */
async function authenticate(): Promise<boolean> {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    history.replaceState(null, "", location.pathname + location.search);
    const res = await fetch("api/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: decodeURIComponent(match[1]!) }),
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!res.ok) {
      const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
      setState("error", "not signed in");
      notice(body.error?.message ?? `Sign-in failed (${res.status}).`);
      return false;
    }
  }
  const who = await fetch("api/whoami", { credentials: "same-origin", cache: "no-store" });
  if (!who.ok) {
    setState("error", "not signed in");
    notice("Open the portal link printed by `picortex portal token` (it carries the token after #) to sign in.");
    return false;
  }
  return true;
}

const term = new Terminal({
  allowProposedApi: true, // unicode11
  cursorBlink: true,
  scrollback: 10_000,
  fontFamily: 'ui-monospace, "DejaVu Sans Mono", "SFMono-Regular", Menlo, Consolas, monospace',
  fontSize: window.innerWidth < 500 ? 12 : 14,
  theme: { background: "#101418", foreground: "#d8dee9", cursor: "#d8dee9" },
});
const fit = new FitAddon();
term.loadAddon(fit);
term.loadAddon(new WebLinksAddon());
const unicode = new Unicode11Addon();
term.loadAddon(unicode);
term.unicode.activeVersion = "11";
term.open($("#terminal"));
const feed = new TerminalFeed(term);
let renderer = "dom";
/**
 * The DOM renderer is the default: it draws at the right size at every devicePixelRatio.
 * The WebGL addon, in Chromium at the ratios phones report (2, 2.625, 3), sized its canvas
 * in CSS pixels while drawing device-pixel glyphs, so text came out DPR times too large and
 * only a corner of the screen was visible. `?renderer=webgl` opts in, and even then the
 * page checks the canvas after each render and falls back to the DOM renderer if the
 * backing store does not match devicePixelRatio.
 */
const wantWebgl = new URLSearchParams(location.search).get("renderer") === "webgl";
if (wantWebgl) try {
  const webgl = new WebglAddon();
  const fallBack = () => {
    if (renderer !== "webgl") return;
    webgl.dispose(); // the DOM renderer takes over
    document.body.dataset.renderer = renderer = "dom";
  };
  webgl.onContextLoss(fallBack);
  term.loadAddon(webgl);
  renderer = "webgl";
  term.onRender(() => {
    if (renderer === "webgl" && !canvasMatchesPixelRatio()) fallBack();
  });
} catch {
  renderer = "dom"; // no WebGL2 here: the DOM renderer is built in
}

/** Every canvas in the terminal has a backing store of its CSS size × devicePixelRatio. */
function canvasMatchesPixelRatio(): boolean {
  const dpr = window.devicePixelRatio || 1;
  for (const c of document.querySelectorAll<HTMLCanvasElement>("#terminal .xterm-screen canvas")) {
    const css = c.getBoundingClientRect();
    if (css.width === 0) continue;
    if (Math.abs(c.width - css.width * dpr) > dpr + 1) return false;
  }
  return true;
}
document.body.dataset.renderer = renderer;

// ---- Layout: follow the visual viewport so the keyboard does not cover the prompt.
function layout(): void {
  const vv = window.visualViewport;
  if (vv) document.documentElement.style.setProperty("--vvh", `${Math.round(vv.height)}px`);
  try {
    fit.fit();
  } catch {
    /* not visible yet */
  }
  if (vv && vv.offsetTop > 0) window.scrollTo(0, 0);
}
window.visualViewport?.addEventListener("resize", layout);
window.visualViewport?.addEventListener("scroll", layout);
window.addEventListener("resize", layout);
layout();

// ---- The link to the server.
let ws: WebSocket | undefined;
let readOnly = false;
let backoffMs = 500;
let reconnectTimer: number | undefined;
let lastPong = Date.now();
let unacked = 0;
let ackTimer: number | undefined;
/** Bumped for every new socket, so stale write callbacks from a previous one are ignored. */
let generation = 0;
/** READY received on the current socket: input goes to the session. */
let live = false;
/** Set when reconnecting gave up (repeated fast failures); the Restart button clears it. */
let stopped: string | undefined;
/** When the current socket became live, and how many sessions in a row ended soon after. */
let liveSince = 0;
let fastEnds = 0;
/** Sessions that end within this long of connecting count as fast failures; after MAX_FAST_ENDS the page stops. */
const FAST_END_MS = 10_000;
const MAX_FAST_ENDS = 3;

const disconnectedEl = $("#disconnected");
function refusedInput(): void {
  disconnectedEl.hidden = false;
  disconnectedEl.dataset.refused = "true";
  disconnectedEl.querySelector(".why")!.textContent = "Not connected: what you typed was NOT sent. Type it again once the terminal is back.";
}
function showDisconnected(on: boolean, why = ""): void {
  disconnectedEl.hidden = !on;
  if (!on) delete disconnectedEl.dataset.refused;
  else if (!disconnectedEl.dataset.refused) disconnectedEl.querySelector(".why")!.textContent = why;
}

/** A Restart button in the notice area: `action` runs once, then the notice goes away. */
function offerRestart(text: string, action: () => Promise<void> | void): void {
  noticeEl.hidden = false;
  noticeEl.textContent = text + " ";
  const b = document.createElement("button");
  b.type = "button";
  b.id = "restart";
  b.textContent = "Restart";
  b.addEventListener("click", () => {
    b.disabled = true;
    void Promise.resolve(action()).finally(() => notice(undefined));
  });
  noticeEl.appendChild(b);
}

/** The session's command exited: tmux keeps its pane (remain-on-exit) with the last output; say so and offer a restart. */
let exitCheck: number | undefined;
let commandDead = false;
function checkCommandExit(): void {
  if (exitCheck !== undefined) return;
  exitCheck = window.setTimeout(async () => {
    exitCheck = undefined;
    const b = term.buffer.active;
    let tail = "";
    for (let i = Math.max(0, b.length - term.rows); i < b.length; i++) tail += (b.getLine(i)?.translateToString(true) ?? "") + "\n";
    if (!EXITED_TEXT.test(tail)) {
      if (commandDead) {
        commandDead = false;
        setState(readOnly ? "read-only" : "connected", readOnly ? "read-only" : "connected");
      }
      return;
    }
    const res = await fetch("api/status", { credentials: "same-origin", cache: "no-store" }).catch(() => undefined);
    const st = res?.ok ? ((await res.json()) as { command?: { dead: boolean; exitStatus: number | null } | null }) : undefined;
    if (!st?.command?.dead || commandDead) return;
    commandDead = true;
    const code = st.command.exitStatus;
    setState("exited", `command exited${code === null ? "" : ` (status ${code})`}`);
    if (readOnly) notice(`The session's command exited${code === null ? "" : ` with status ${code}`}; its last output is above.`);
    else
      offerRestart(`The session's command exited${code === null ? "" : ` with status ${code}`}; its last output is above.`, async () => {
        await fetch("api/restart", { method: "POST", credentials: "same-origin", cache: "no-store" });
        commandDead = false;
        setState("connected", "connected");
        term.focus();
      });
  }, 400);
}

function send(data: Uint8Array): void {
  if (ws?.readyState === WebSocket.OPEN) ws.send(data);
}
function flushAck(): void {
  ackTimer = undefined;
  if (unacked > 0) {
    send(ackFrame(unacked));
    unacked = 0;
  }
}
/** Called when xterm.js has parsed a chunk: only then does it count as delivered. */
function processed(bytes: number): void {
  unacked += bytes;
  if (unacked >= LIMITS.ackEveryBytes) flushAck();
  else if (ackTimer === undefined) ackTimer = window.setTimeout(flushAck, 30);
}

const extraKeys = mountExtraKeys($("#keys"), {
  send: (data) => sendInput(data),
  paste: (text) => term.paste(text),
  applicationCursor: () => term.modes.applicationCursorKeysMode,
  focus: () => term.focus(),
});

function sendInput(data: string): void {
  if (readOnly) return;
  if (ws?.readyState !== WebSocket.OPEN || !live) {
    // Never dropped silently: the keys typed while the link is down are refused, visibly.
    refusedInput();
    return;
  }
  const bytes = new TextEncoder().encode(data);
  for (let off = 0; off < bytes.length; off += LIMITS.maxMessageBytes - 1) {
    send(frame(ClientType.INPUT, bytes.subarray(off, off + LIMITS.maxMessageBytes - 1)));
  }
}
// Focus reports (tmux asks for them: with `window-size latest` a focus-in makes this device
// the one the window fits). They are not keystrokes: they never consume a sticky Ctrl, and
// one that cannot be sent (the link is down) is dropped without the "NOT sent" notice.
const FOCUS_REPORT = /^\x1b\[[IO]$/;
term.onData((data) => {
  if (FOCUS_REPORT.test(data)) {
    if (!readOnly && ws?.readyState === WebSocket.OPEN && live) send(frame(ClientType.INPUT, new TextEncoder().encode(data)));
    return;
  }
  sendInput(extraKeys.transform(data));
});
term.onBinary((data) => sendInput(data));
term.onTitleChange((title) => {
  document.title = title ? `${title} · picortex` : "picortex portal";
});
term.onResize(({ cols, rows }) => {
  if (!readOnly) send(resizeFrame(cols, rows));
});


function connect(): void {
  window.clearTimeout(reconnectTimer);
  reconnectTimer = undefined;
  const url = new URL("ws", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  ws = socket;
  generation++;
  unacked = 0;
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    lastPong = Date.now();
    socket.send(jsonFrame(ClientType.HELLO, { v: PROTOCOL_VERSION, cols: term.cols, rows: term.rows }));
  };
  socket.onmessage = (ev) => {
    const msg = new Uint8Array(ev.data as ArrayBuffer);
    const payload = msg.subarray(1);
    lastPong = Date.now();
    switch (msg[0]) {
      case ServerType.OUTPUT: {
        const gen = generation;
        // Acks belong to the connection that sent the bytes; a callback that fires after a
        // reconnect must not ack the new connection (the server would reject the count).
        feed.output(payload, () => {
          if (gen === generation) processed(payload.length);
          // After xterm parsed it: the check reads the screen this output drew.
          checkCommandExit();
        });
        break;
      }
      case ServerType.READY: {
        const info = JSON.parse(decodeText(payload)) as ReadyInfo;
        readOnly = info.readOnly;
        term.reset(); // the history and tmux's redraw that follow are the whole screen
        feed.reset();
        unacked = 0;
        backoffMs = 500;
        live = true;
        liveSince = Date.now();
        showDisconnected(false);
        if (!commandDead) notice(undefined);
        sessionEl.textContent = `tmux: ${info.session}`;
        setState(readOnly ? "read-only" : "connected", readOnly ? "read-only" : "connected");
        term.options.disableStdin = readOnly;
        layout();
        if (!readOnly) send(resizeFrame(term.cols, term.rows));
        break;
      }
      case ServerType.HISTORY:
        feed.history(decodeText(payload));
        break;
      case ServerType.EXIT: {
        live = false;
        const reason = (JSON.parse(decodeText(payload)) as { reason?: string }).reason ?? "";
        fastEnds = Date.now() - liveSince < FAST_END_MS ? fastEnds + 1 : 0;
        setState("ended", "session ended");
        if (fastEnds >= MAX_FAST_ENDS) stopped = `The session ended ${fastEnds} times within seconds of starting (${reason}). Reconnecting stopped.`;
        break;
      }
      case ServerType.ERROR:
        notice((JSON.parse(decodeText(payload)) as { message: string }).message);
        window.setTimeout(() => notice(undefined), 4000);
        break;
      case ServerType.PONG:
        break;
    }
  };
  socket.onclose = (ev) => {
    if (ws !== socket) return;
    ws = undefined;
    live = false;
    if (stopped) {
      // A command that keeps failing at once: do not respawn it forever; let the user decide.
      setState("error", "stopped");
      showDisconnected(true, stopped);
      offerRestart(stopped, () => {
        stopped = undefined;
        fastEnds = 0;
        connect();
      });
      return;
    }
    if (ev.code === CloseCode.IDLE || ev.code === CloseCode.DISPLACED) {
      // Closed for idleness, or this viewer gave its slot to the operator: reconnecting on
      // our own would defeat the cap (or be refused). Wait for the user.
      setState("ended", ev.code === CloseCode.IDLE ? "idle: tap to reconnect" : "viewer slot given to the operator (portal full): tap to retry");
      const again = () => {
        statusEl.removeEventListener("click", again);
        $("#terminal").removeEventListener("pointerdown", again);
        connect();
      };
      statusEl.addEventListener("click", again);
      $("#terminal").addEventListener("pointerdown", again);
      return;
    }
    void scheduleReconnect();
  };
}

async function scheduleReconnect(): Promise<void> {
  if (reconnectTimer !== undefined) return;
  // A refused upgrade looks like any other close in a browser: ask why.
  const who = await fetch("api/whoami", { credentials: "same-origin", cache: "no-store" }).catch(() => undefined);
  if (who && who.status === 401) {
    setState("error", "signed out");
    notice("Your portal session expired or the token was rotated. Open the portal link again.");
    return;
  }
  setState("reconnecting", `reconnecting in ${Math.round(backoffMs / 100) / 10} s`);
  showDisconnected(true, "Disconnected from the session; reconnecting. Keys typed now are not sent.");
  reconnectTimer = window.setTimeout(connect, backoffMs);
  backoffMs = Math.min(backoffMs * 2, 10_000);
}

// Heartbeat: browsers never see WebSocket pings, so detect a dead link ourselves.
window.setInterval(() => {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  if (Date.now() - lastPong > 45_000) {
    ws.close();
    return;
  }
  send(frame(ClientType.PING));
}, 15_000);
window.addEventListener("online", () => {
  if (!ws) connect();
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && !ws) connect();
});

void authenticate().then((ok) => {
  if (!ok) return;
  connect();
  term.focus();
});

// A read-only view of the terminal for the browser tests and for debugging from devtools
// (the WebGL renderer draws to a canvas, so the text is not in the DOM).
(window as unknown as { picortexPortal: unknown }).picortexPortal = {
  renderer: () => renderer,
  size: () => ({ cols: term.cols, rows: term.rows }),
  canvasMatchesPixelRatio: () => canvasMatchesPixelRatio(),
  font: () => ({ family: term.options.fontFamily, size: term.options.fontSize }),
  text: () => {
    const b = term.buffer.active;
    const out: string[] = [];
    for (let i = 0; i < b.length; i++) out.push(b.getLine(i)?.translateToString(true) ?? "");
    return out.join("\n");
  },
};
