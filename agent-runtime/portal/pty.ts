import * as nodePty from "node-pty";

/**
 * The narrow pty interface the portal needs (the ttyd shape): spawn, write, resize,
 * pause, resume, kill. Keeping it this small lets tests and benches swap the backend.
 */
export interface TerminalProcess {
  readonly pid: number;
  write(data: Uint8Array | string): void;
  resize(cols: number, rows: number): void;
  pause(): void;
  resume(): void;
  /**
   * Ends the terminal for good and releases it: output is discarded from now on, the
   * reader is resumed so a client blocked writing to a full pty can finish, SIGHUP is
   * sent, and SIGKILL follows if the process has not exited within a grace period.
   * Idempotent. `onExit` listeners still run once the process is gone.
   */
  kill(): void;
  onData(listener: (data: Buffer) => void): void;
  onExit(listener: (exit: { exitCode: number; signal?: number }) => void): void;
}

export interface SpawnOptions {
  file: string;
  args: readonly string[];
  cols: number;
  rows: number;
  cwd?: string;
  env: NodeJS.ProcessEnv;
}

/** How long a released terminal gets to exit after SIGHUP before SIGKILL. */
export const KILL_GRACE_MS = 3000;

export function spawnTerminal(opts: SpawnOptions): TerminalProcess {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.env)) if (v !== undefined) env[k] = v;
  const pty = nodePty.spawn(opts.file, [...opts.args], {
    name: "xterm-256color",
    cols: opts.cols,
    rows: opts.rows,
    cwd: opts.cwd,
    env: { ...env, TERM: "xterm-256color", COLORTERM: "truecolor" },
    // Bytes, not strings: exact byte counts for flow control, and no decoding cost.
    encoding: null,
  });
  let exited = false;
  let released = false;
  let killTimer: NodeJS.Timeout | undefined;
  pty.onExit(() => {
    exited = true;
    if (killTimer) clearTimeout(killTimer);
  });
  return {
    pid: pty.pid,
    write: (data) => {
      // A keystroke after the client exited would only reach node-pty's EBADF log line.
      if (!released && !exited) pty.write(typeof data === "string" ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    },
    resize: (cols, rows) => {
      if (!exited && !released) pty.resize(cols, rows);
    },
    pause: () => {
      if (!released) pty.pause();
    },
    resume: () => pty.resume(),
    kill: () => {
      if (exited || released) return;
      released = true;
      // A tab paused by flow control leaves the pty's buffer full. The tmux client,
      // told to exit, prints "[detached]"/"[lost tty]" and restores the terminal with
      // tcsetattr(TCSAFLUSH), which waits for that output to drain: with nobody reading
      // it would block forever, holding a process and our fds. So read (and discard) until
      // it is gone, and escalate if it still will not go.
      pty.resume();
      // SIGHUP is what a closed terminal sends: the tmux client detaches cleanly.
      pty.kill("SIGHUP");
      killTimer = setTimeout(() => {
        if (!exited) pty.kill("SIGKILL");
      }, KILL_GRACE_MS);
      killTimer.unref();
    },
    onData: (listener) => {
      pty.onData((d) => {
        if (!released) listener(typeof d === "string" ? Buffer.from(d) : (d as unknown as Buffer));
      });
    },
    onExit: (listener) => {
      pty.onExit(listener);
    },
  };
}
