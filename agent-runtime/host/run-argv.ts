import { spawn } from "node:child_process";
import type { Writable } from "node:stream";

export interface ArgvResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunArgvOptions {
  /** Bytes written to stdin, which is then closed. */
  input?: Buffer | string;
  /** Stream stdout here instead of collecting it (e.g. an archive file). */
  stdoutTo?: Writable;
  timeoutMs?: number;
}

/** A fixed, minimal environment for host commands: nothing of the runtime's leaks through. */
export const HOST_COMMAND_ENV = Object.freeze({ PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" });

/** Runs an argv (never a shell string) and collects its output. */
export function runArgv(argv: readonly string[], options: RunArgvOptions = {}): Promise<ArgvResult> {
  return new Promise((resolve, reject) => {
    const [command, ...args] = argv;
    if (!command) return reject(new Error("runArgv: empty argv"));
    const child = spawn(command, args, { env: { ...HOST_COMMAND_ENV }, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    if (options.stdoutTo) child.stdout.pipe(options.stdoutTo);
    else child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    const timer = options.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), options.timeoutMs) : undefined;
    child.once("error", (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.once("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
    child.stdin.on("error", () => {}); // the command may exit without reading stdin
    child.stdin.end(options.input ?? "");
  });
}
