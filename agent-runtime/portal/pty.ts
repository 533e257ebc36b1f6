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
  pty.onExit(() => {
    exited = true;
  });
  return {
    pid: pty.pid,
    write: (data) => pty.write(typeof data === "string" ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)),
    resize: (cols, rows) => {
      if (!exited) pty.resize(cols, rows);
    },
    pause: () => pty.pause(),
    resume: () => pty.resume(),
    kill: () => {
      // SIGHUP is what a closed terminal sends: the tmux client detaches cleanly.
      if (!exited) pty.kill("SIGHUP");
    },
    onData: (listener) => {
      pty.onData((d) => listener(typeof d === "string" ? Buffer.from(d) : (d as unknown as Buffer)));
    },
    onExit: (listener) => {
      pty.onExit(listener);
    },
  };
}
