import { spawn, type SpawnOptions } from "node:child_process";
import { progress } from "./log.js";

/** A host command of the harness failed; carries the argv, exit status and stderr tail. */
export class HarnessCommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stderrTail: string,
  ) {
    super(
      `command failed (${signal ? `signal ${signal}` : `exit ${exitCode}`}): ${argv.join(" ")}\n${stderrTail}`,
    );
    this.name = "HarnessCommandError";
  }
}

export interface RunOptions {
  /** Step name for progress lines; when set, stderr lines are echoed as progress. */
  step?: string;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Pipe stdout into this file descriptor instead of capturing it. */
  stdoutFd?: number;
}

/** Runs argv (never a shell string) and resolves with stdout; rejects with HarnessCommandError. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error("run: empty argv");
  const spawnOpts: SpawnOptions = {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: [opts.input === undefined ? "ignore" : "pipe", opts.stdoutFd ?? "pipe", "pipe"],
  };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, spawnOpts);
    const out: Buffer[] = [];
    let err = "";
    child.stdout?.on("data", (d: Buffer) => out.push(d));
    child.stderr?.on("data", (d: Buffer) => {
      const s = d.toString();
      err = (err + s).slice(-8000);
      if (opts.step) for (const line of s.split("\n")) if (line.trim()) progress(opts.step, line.trim().slice(0, 200));
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve(Buffer.concat(out).toString());
      else reject(new HarnessCommandError(argv, code, signal, err));
    });
  });
}
