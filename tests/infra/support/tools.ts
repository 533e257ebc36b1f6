/**
 * Helpers for tests that run real tools. A missing tool or privilege is a FAILURE with
 * a message naming the fix, never a skip: these tests are the proof the artifacts work.
 */
import { spawnSync } from "node:child_process";

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run argv without a shell; never throws on a non-zero exit. */
export function run(argv: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string } = {}): RunResult {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error("run: empty argv");
  const r = spawnSync(cmd, args, { encoding: "utf8", input: options.input ?? "", env: options.env ?? process.env, cwd: options.cwd, timeout: 60_000 });
  if (r.error) throw new Error(`could not run ${cmd}: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Throws (failing the suite) unless every tool is on PATH. */
export function requireTools(...tools: string[]): void {
  const missing = tools.filter((t) => spawnSync("sh", ["-c", 'command -v "$1"', "sh", t]).status !== 0);
  if (missing.length > 0) {
    throw new Error(`required tool(s) missing: ${missing.join(", ")}. Install the Debian packages with \`bash .ci/run\` (or apt-get install cloud-init sudo systemd openssh-server util-linux).`);
  }
}

export function requireRoot(why: string): void {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    throw new Error(`this test must run as root: ${why}. Run it via \`sudo npm test\` or \`bash .ci/run\`.`);
  }
}

/** Run argv and return stdout as bytes (for archives). */
export function runBytes(argv: string[]): Buffer {
  const [cmd, ...args] = argv;
  const r = spawnSync(cmd!, args, { timeout: 60_000 });
  if (r.error || r.status !== 0) throw new Error(`${argv.join(" ")} failed: ${r.error?.message ?? r.stderr.toString()}`);
  return r.stdout;
}
