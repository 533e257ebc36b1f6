import { spawn } from "node:child_process";
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dirname, "../..");
const CLI = join(REPO, "agent-runtime/cli/picortex.ts");
const TSX = join(REPO, "node_modules/tsx/dist/esm/index.mjs");

/**
 * Runs the real `picortex` CLI from the sources as a separate process, asynchronously: a
 * runtime under test in this process must keep answering while the CLI talks to it.
 */
export function runPicortex(args: string[], o: { cwd?: string; env: NodeJS.ProcessEnv; input?: string }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ["--import", TSX, CLI, ...args], { cwd: o.cwd ?? REPO, env: o.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (status) => done({ status, stdout, stderr }));
    child.stdin.end(o.input ?? "");
  });
}
