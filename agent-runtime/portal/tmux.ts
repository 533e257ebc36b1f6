import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { TMUX_PATH, BIN } from "../host/contract.js";
import { EXIT_STATUS_OPTION, wrapSessionCommand } from "./session-command.js";
import { PicortexError } from "../errors.js";

/** How the portal reaches its tmux server and session. Argv only; never a shell string. */
export interface TmuxTarget {
  session: string;
  command: readonly string[];
  cwd?: string;
  /** `tmux -S <path>`; unset = the user's default server. */
  socket?: string;
  /** `tmux -f <file>`. */
  config?: string;
  windowSize: "largest" | "latest" | "smallest";
  env?: NodeJS.ProcessEnv;
  /**
   * Run every tmux process (server, commands, and the clients the portal attaches) as
   * this account, through `sudo -n -u <runAs> -- /usr/bin/tmux -S <socket> …` (the
   * drop-in allows exactly that shape). On a host this is `picortex-agent`: the agent
   * then holds none of the runtime's rights, and a hostile agent that drives its tmux
   * server (e.g. `detach-client -E <cmd>`, which makes a client run a command) only ever
   * reaches clients running as itself.
   */
  runAs?: string;
}

/** The file and argv that run `tmux <args>` for this target (as runAs when set). */
export function tmuxInvocation(t: Pick<TmuxTarget, "socket" | "config" | "runAs">, args: readonly string[]): { file: string; args: string[] } {
  if (!t.runAs) return { file: "tmux", args: [...tmuxBase(t), ...args] };
  if (!t.socket) throw new TmuxError("portal.runAs needs portal.tmuxSocket: the sudo rule names the socket");
  return { file: BIN.sudo, args: ["-n", "-u", t.runAs, "--", TMUX_PATH, ...tmuxBase(t), ...args] };
}

export class TmuxError extends PicortexError {
  constructor(
    message: string,
    readonly stderr = "",
  ) {
    super("failed", "tmux_failed", stderr ? `${message}: ${stderr.trim()}` : message);
  }
}

export function tmuxBase(t: Pick<TmuxTarget, "socket" | "config">): string[] {
  return [...(t.socket ? ["-S", t.socket] : []), ...(t.config ? ["-f", t.config] : [])];
}

/**
 * What a terminal needs, and nothing else: the runtime's own environment can hold
 * ANTHROPIC_API_KEY (local mode), CREDENTIALS_DIRECTORY and tokens, which the agent in the
 * tmux session must not inherit. TMUX/TMUX_PANE are left out too, so a runtime started
 * inside a developer's tmux still attaches its own clients.
 */
const TERMINAL_ENV = /^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|LC_[A-Z]+|TZ|TERM|COLORTERM|XDG_RUNTIME_DIR|TMPDIR)$/;

/** Login-refusing shells: tmux would run the session command through them and exit at once. */
const NON_LOGIN_SHELL = /(^|\/)(nologin|false)$/;

/**
 * The environment for tmux: only TERMINAL_ENV. SHELL is replaced when it is a non-login
 * shell: systemd sets SHELL from the service user's passwd entry (`/usr/sbin/nologin` for `picortex`), and tmux runs the session
 * command and new panes through it, so the agent session would die on creation.
 */
export function tmuxEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const rest: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && TERMINAL_ENV.test(k)) rest[k] = v;
  if (!rest.SHELL || NON_LOGIN_SHELL.test(rest.SHELL)) rest.SHELL = "/bin/sh";
  // tmux draws UTF-8 only for clients whose locale says so; a service started without one
  // (systemd sets no LANG) would show `_` for Claude Code's symbols. C.UTF-8 is built into glibc.
  const locale = rest.LC_ALL || rest.LC_CTYPE || rest.LANG || "";
  if (!/utf-?8/i.test(locale)) {
    delete rest.LC_ALL;
    rest.LANG = "C.UTF-8";
    rest.LC_CTYPE = "C.UTF-8";
  }
  return rest;
}

/** Runs one tmux invocation (possibly several `;`-separated commands) and returns stdout. */
export function runTmux(t: Pick<TmuxTarget, "socket" | "config" | "env" | "runAs">, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const inv = tmuxInvocation(t, args);
    // As another account, start from "/": the runtime's cwd (its 0700 state dir) is not
    // the agent's to enter.
    execFile(inv.file, inv.args, { env: tmuxEnv(t.env), timeout: 10_000, cwd: t.runAs ? "/" : undefined }, (err, stdout, stderr) => {
      if (err) reject(new TmuxError(`tmux ${args[0]} failed`, String(stderr) || err.message));
      else resolve(String(stdout));
    });
  });
}

export async function sessionExists(t: TmuxTarget): Promise<boolean> {
  return runTmux(t, ["has-session", "-t", `=${t.session}`]).then(
    () => true,
    () => false,
  );
}

/**
 * Creates the session detached if it does not exist (the portal's `new-session -A`:
 * attach when present, create when not; the attach itself happens in the pty). Also
 * applies the portal's options:
 * - `window-size` per config (default `latest`: the window fits the device used last) and
 *   `focus-events on`, so focusing a page's terminal makes its device the latest;
 * - no alternate screen for clients (`smcup@:rmcup@`), so lines tmux scrolls off land in
 *   the browser's own scrollback and a phone can swipe back through them.
 */
export async function ensureSession(t: TmuxTarget, size: { cols: number; rows: number }): Promise<{ created: boolean }> {
  let created = false;
  if (!(await sessionExists(t))) {
    try {
      await runTmux(t, [
        "new-session",
        "-d",
        "-s",
        t.session,
        "-x",
        String(size.cols),
        "-y",
        String(size.rows),
        ...(t.cwd ? ["-c", t.cwd] : []),
        "--",
        ...paneCommand(t),
        // Same command queue as the creation, so it holds even for a command that exits at
        // once: a command that FAILS leaves its pane (dead) with its last output and tmux's
        // "Pane is dead (status N)" line, instead of the session ending and every tab
        // respawning it in a loop. A clean exit (status 0) still ends the session.
        ";",
        "set-option",
        "-w",
        "-t",
        `=${t.session}:`,
        "remain-on-exit",
        "failed",
      ]);
      created = true;
    } catch (err) {
      // Two tabs connecting at once: the other one created it first; that is fine.
      if (err instanceof TmuxError && /duplicate session/.test(err.message)) {
        // fall through to the options below
      } else if (t.runAs) {
        // On a host the agent's own unit owns the session (the runtime's sandbox cannot
        // create the socket): say where to look rather than tmux's socket error.
        throw new TmuxError(
          `the agent session "${t.session}" is not running as ${t.runAs} and could not be started from the portal; its unit starts it (systemctl status picortex-agent.service)`,
          err instanceof TmuxError ? err.stderr : String(err),
        );
      } else throw err;
    }
  }
  await runTmux(t, ["set-option", "-w", "-t", `=${t.session}:`, "window-size", t.windowSize]);
  // Focus reports from the clients' terminals: a page whose terminal gets focus sends a
  // focus-in (xterm.js does it once tmux asks for them), which tmux counts as activity, so
  // with `window-size latest` the window fits the device a person just turned to.
  await runTmux(t, ["set-option", "-s", "focus-events", "on"]);
  // Append once: the option is server-wide and would otherwise grow on every connect.
  const overrides = await runTmux(t, ["show-options", "-s", "-v", "terminal-overrides"]).catch(() => "");
  if (!overrides.includes("smcup@")) await runTmux(t, ["set-option", "-s", "-a", "terminal-overrides", ",*:smcup@:rmcup@"]);
  return { created };
}

/**
 * The argv (after `tmux`) that atomically captures the pane's history into a named
 * paste buffer and attaches a new client. Both commands run in one tmux command queue,
 * so no pane output can fall between the capture and the attach: the history plus the
 * redraw that follows are exactly the session, with nothing lost or repeated.
 */
/** Arguments after `tmux -S … -f …` (tmuxInvocation adds those) when t.runAs is set; else after `tmux`. */
export function attachArgs(t: TmuxTarget, opts: { readOnly: boolean; historyBuffer?: string; historyLines: number }): string[] {
  const capture =
    opts.historyBuffer && opts.historyLines > 0
      ? ["capture-pane", "-e", "-S", `-${opts.historyLines}`, "-E", "-1", "-b", opts.historyBuffer, "-t", `=${t.session}:`, ";"]
      : [];
  return [
    ...(t.runAs ? [] : tmuxBase(t)),
    ...capture,
    "attach-session",
    "-t",
    `=${t.session}`,
    // A viewer can neither type nor change the window size (tmux enforces it too).
    ...(opts.readOnly ? ["-f", "read-only,ignore-size"] : []),
  ];
}

export function historyBufferName(): string {
  return `pcx-portal-${randomBytes(6).toString("hex")}`;
}

/** Reads and deletes a paste buffer the attach captured; empty when there was no history. */
export async function takeBuffer(t: TmuxTarget, name: string): Promise<string> {
  try {
    const text = await runTmux(t, ["show-buffer", "-b", name]);
    await runTmux(t, ["delete-buffer", "-b", name]).catch(() => {});
    return text;
  } catch {
    return ""; // capture-pane of an empty history creates no buffer
  }
}

export interface TmuxClientInfo {
  tty: string;
  readOnly: boolean;
  pid: number;
}

export async function listClients(t: TmuxTarget): Promise<TmuxClientInfo[]> {
  let out: string;
  try {
    out = await runTmux(t, ["list-clients", "-F", "#{client_tty}\t#{client_readonly}\t#{client_pid}"]);
  } catch {
    return []; // no server running: no clients
  }
  return out
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [tty, ro, pid] = line.split("\t");
      return { tty: tty ?? "", readOnly: ro === "1", pid: Number(pid) };
    });
}

/**
 * The pane's argv: the command under the exit-recording wrapper (session-command.ts).
 * tmux splits its argv into commands at arguments ending in ";": those are escaped.
 */
export function paneCommand(t: Pick<TmuxTarget, "command" | "runAs">): string[] {
  return wrapSessionCommand(t.runAs ? TMUX_PATH : "tmux", t.command).map((a) => (a.endsWith(";") ? `${a.slice(0, -1)}\\;` : a));
}

/**
 * Whether the session's command has exited (the pane is kept dead by remain-on-exit), and
 * its status: tmux's own, or the wrapper's record when tmux lost it.
 */
export async function paneState(t: TmuxTarget): Promise<{ dead: boolean; status: number | null } | undefined> {
  let out: string;
  try {
    out = (await runTmux(t, ["display-message", "-p", "-t", `=${t.session}:`, `#{pane_dead}|#{pane_dead_status}|#{${EXIT_STATUS_OPTION}}`])).trim();
  } catch {
    return undefined; // no session
  }
  const [dead, tmuxStatus, recorded] = out.split("|");
  if (dead !== "1") return { dead: false, status: null };
  const status = /^\d+$/.test(tmuxStatus ?? "") ? tmuxStatus : recorded;
  return { dead: true, status: status !== undefined && /^\d+$/.test(status) ? Number(status) : null };
}

/**
 * The tmux arguments of the portal's Restart. As another account (runAs, a host) the
 * session is the agent unit's: respawn-pane without a command runs the pane's own start
 * command again, exactly as the unit gave it (the agent's key path, host/agent-key.ts),
 * in its own directory; the runtime's config never has to repeat it.
 */
export function respawnArgs(t: TmuxTarget): string[] {
  const pane = `=${t.session}:`;
  return [
    // The old status must not describe the new run.
    ...["set-option", "-p", "-u", "-t", pane, EXIT_STATUS_OPTION, ";"],
    ...["respawn-pane", "-k", "-t", pane],
    ...(t.runAs ? [] : [...(t.cwd ? ["-c", t.cwd] : []), "--", ...paneCommand(t)]),
  ];
}

/** Starts the session's command again in its dead pane (the portal's Restart button). */
export async function respawnPane(t: TmuxTarget): Promise<void> {
  await runTmux(t, respawnArgs(t));
}
