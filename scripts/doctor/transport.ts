/**
 * picortex doctor, the transport: how it runs commands and reaches the runtime on the
 * host it checks (local processes, loopback HTTP), and how it gets onto a remote host
 * (bundled into one ESM file, piped to the host's node over ssh).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Proc {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function sh(argv: string[], timeoutMs = 30_000): Proc {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"] });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}

export function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "GET", timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** Bundles the doctor (its entry, scripts/doctor.ts) into one ESM script that runs with plain `node` on the host. */
export async function bundleDoctor(outFile: string): Promise<string> {
  const { build } = await import("esbuild");
  const here = fileURLToPath(new URL("../doctor.ts", import.meta.url));
  await build({
    entryPoints: [here],
    outfile: outFile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "silent",
    define: { "process.env.PICORTEX_DOCTOR_BUNDLED": '"1"' },
  });
  return outFile;
}

/** The options that mean something only on this machine (the rest go to the remote doctor). */
const LOCAL_OPTIONS = ["--ssh", "--ssh-port", "--identity"];

/** Drops the local options (both `--opt value` and `--opt=value`) from argv. */
export function forwardedArgs(argv: string[]): string[] {
  return argv.filter((a, i) => !LOCAL_OPTIONS.includes(a) && !LOCAL_OPTIONS.includes(argv[i - 1] ?? "") && !LOCAL_OPTIONS.some((o) => a.startsWith(`${o}=`)));
}

/** Runs the doctor on `ssh.target`: bundled, piped to its node on stdin; nothing is left there. Returns the exit status. */
export async function runOverSsh(ssh: { target: string; port: number; identity?: string }, forward: string[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "picortex-doctor-"));
  try {
    const bundle = await bundleDoctor(join(dir, "doctor.mjs"));
    const sshArgv = ["ssh", "-p", String(ssh.port), ...(ssh.identity ? ["-i", ssh.identity] : []), ssh.target, "--", "node", "--input-type=module", "-", ...forward.map(shQuote)];
    const r = spawnSync(sshArgv[0]!, sshArgv.slice(1), { input: readFileSync(bundle), stdio: ["pipe", "inherit", "inherit"] });
    return r.status ?? 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** ssh joins its remote argv into one shell string, so quote each argument. */
export function shQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
