/**
 * The engine lane: the real Pulumi CLI (built by scripts/pulumi-toolchain.ts) with a
 * file backend and a private PULUMI_HOME, the three resource plugins installed
 * (provider doubles, or the real providers from PICORTEX_ENGINE_PROVIDERS_DIR), and the
 * stacks' real programs run inline through the Automation API (driver.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { basename, dirname } from "node:path";
import { ensurePulumiCli, pinnedVersion } from "../../../scripts/lib/pulumi-toolchain.js";
import { REPO_ROOT } from "../providers/versions.js";
import { installPlugins, describePlugins, type InstalledPlugin } from "./plugins.js";
import type { DriverRequest, DriverResult } from "./driver.js";
import { killPids, lanePluginPids } from "./procs.js";

export const PASSPHRASE = "engine-lane-passphrase-not-a-secret";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Project {
  /** The checkout-like folder the CLI runs in (Pulumi.yaml, Pulumi.<stack>.yaml). */
  workDir: string;
  projectName: string;
  /** Entry module `pulumi up` would run (absolute). */
  program: string;
}

export interface Lane {
  root: string;
  backendDir: string;
  env: NodeJS.ProcessEnv;
  pulumi: string;
  plugins: InstalledPlugin[];
  /** Runs the real CLI with the lane's environment; `stdin` is written and closed. */
  cli(args: string[], opts?: { cwd?: string; stdin?: string; env?: NodeJS.ProcessEnv }): Promise<CliResult>;
  /** A fresh "checkout" of the workspace project (root Pulumi.yaml) or the chat project. */
  project(kind: "workspace" | "chat", name?: string): Project;
  run(project: Project, stackName: string, op: DriverRequest["op"], opts?: Partial<DriverRequest>): Promise<DriverResult>;
  /** Starts an operation and returns its process, for fault injection. */
  start(project: Project, stackName: string, op: DriverRequest["op"], opts?: Partial<DriverRequest>): { child: ChildProcess; done: Promise<DriverResult> };
  /** Every file of the backend (state, history, backups) as text. */
  backendText(): string;
  /** The engine's gRPC debug log (PULUMI_DEBUG_GRPC) of every operation so far. */
  grpcLogFile: string;
  close(): void;
}

/**
 * The CLI: PICORTEX_ENGINE_PULUMI names an existing binary (it must report the version
 * tools/pulumi pins), else the toolchain cache, built when cold.
 */
async function pulumiCli(log: (l: string) => void): Promise<{ pulumi: string; binDir: string; version: string; built: boolean; buildSeconds?: number }> {
  const given = process.env.PICORTEX_ENGINE_PULUMI;
  if (!given) return ensurePulumiCli({ log });
  const version = pinnedVersion();
  const got = execFileSync(given, ["version"], { encoding: "utf8", env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "1" } }).trim();
  if (got !== version) throw new Error(`PICORTEX_ENGINE_PULUMI=${given} reports ${got}, but tools/pulumi pins ${version}`);
  if (basename(given) !== "pulumi" || dirname(given) === "") throw new Error(`PICORTEX_ENGINE_PULUMI must name a file called pulumi, got ${given}`);
  return { pulumi: given, binDir: dirname(given), version, built: false };
}

export async function startLane(opts: { log?: (l: string) => void } = {}): Promise<Lane> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`engine-lane: ${l}\n`));
  const cli = await pulumiCli(log);
  const root = mkdtempSync(join(process.env.PICORTEX_ENGINE_TMP ?? tmpdir(), "picortex-engine-"));
  const home = join(root, "pulumi-home");
  const backendDir = join(root, "backend");
  mkdirSync(home, { recursive: true });
  mkdirSync(backendDir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${cli.binDir}:${process.env.PATH ?? ""}`,
    PULUMI_HOME: home,
    PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
    PULUMI_SKIP_UPDATE_CHECK: "1",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_IGNORE_AMBIENT_PLUGINS: "true",
    PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
    PULUMI_SKIP_CONFIRMATIONS: "true",
    PICORTEX_PROVIDER_TRACE: join(root, "provider-trace.jsonl"),
    // The engine's record of every provider call and answer, compared with the real
    // providers' recordings (harness/recording.ts, tests/engine/recordings/).
    PULUMI_DEBUG_GRPC: join(root, "grpc.jsonl"),
    NO_COLOR: "1",
  };
  // Never inherit a real backend or cloud credentials into the lane.
  for (const k of ["PULUMI_BACKEND_URL", "PULUMI_ACCESS_TOKEN", "HCLOUD_TOKEN", "TAILSCALE_API_KEY", "TAILSCALE_OAUTH_CLIENT_ID", "TAILSCALE_OAUTH_CLIENT_SECRET"]) delete env[k];

  const runCli: Lane["cli"] = (args, o = {}) =>
    new Promise((resolve, reject) => {
      const child = spawn(cli.pulumi, args, { cwd: o.cwd ?? root, env: { ...env, ...(o.env ?? {}) }, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(o.stdin ?? "");
    });

  const login = await runCli(["login", `file://${backendDir}`]);
  if (login.code !== 0) throw new Error(`pulumi login failed: ${login.stderr}`);
  const plugins = await installPlugins({ pulumi: cli.pulumi, env, scratch: join(root, "launchers"), lane: root });
  log(`Pulumi CLI ${cli.version} (${cli.built ? `built in ${cli.buildSeconds} s` : "cached"}); providers: ${describePlugins(plugins)}`);

  let projects = 0;
  const project: Lane["project"] = (kind, name) => {
    const dir = join(root, "checkouts", name ?? `${kind}-${++projects}`);
    mkdirSync(dir, { recursive: true });
    if (kind === "workspace") {
      copyFileSync(join(REPO_ROOT, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
      copyFileSync(join(REPO_ROOT, "Pulumi.example.yaml"), join(dir, "Pulumi.example.yaml"));
      // `main: stacks/workspace/index.ts` must exist for the CLI to accept the project.
      symlinkSync(join(REPO_ROOT, "stacks"), join(dir, "stacks"));
      return { workDir: dir, projectName: "picortex", program: join(REPO_ROOT, "stacks/workspace/index.ts") };
    }
    copyFileSync(join(REPO_ROOT, "stacks/chat/Pulumi.yaml"), join(dir, "Pulumi.yaml"));
    symlinkSync(join(REPO_ROOT, "stacks/chat/index.ts"), join(dir, "index.ts"));
    return { workDir: dir, projectName: "picortex-chat", program: join(REPO_ROOT, "stacks/chat/index.ts") };
  };

  let runs = 0;
  const start: Lane["start"] = (p, stackName, op, o = {}) => {
    const n = ++runs;
    const resultFile = join(root, `run-${n}.json`);
    const req: DriverRequest = { op, workDir: p.workDir, projectName: p.projectName, stackName, program: p.program, pulumiBinDir: cli.binDir, resultFile, ...o };
    const reqFile = join(root, `run-${n}.request.json`);
    writeFileSync(reqFile, JSON.stringify(req));
    const tsx = join(REPO_ROOT, "node_modules/tsx/dist/loader.mjs");
    const child = spawn(process.execPath, ["--import", tsx, join(REPO_ROOT, "tests/engine/harness/driver.ts"), reqFile], {
      cwd: p.workDir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: false,
    });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const done = new Promise<DriverResult>((resolve) => {
      child.on("close", (code, signal) => {
        if (existsSync(resultFile)) resolve(JSON.parse(readFileSync(resultFile, "utf8")) as DriverResult);
        else resolve({ ok: false, error: `driver exited (${signal ?? code}) without a result:\n${out.slice(-4000)}`, stdout: out, stderr: "" });
      });
    });
    return { child, done };
  };

  return {
    root,
    backendDir,
    env,
    pulumi: cli.pulumi,
    plugins,
    cli: runCli,
    project,
    start,
    run: (p, s, op, o) => start(p, s, op, o).done,
    grpcLogFile: env.PULUMI_DEBUG_GRPC!,
    backendText() {
      const parts: string[] = [];
      const walk = (d: string) => {
        for (const f of readdirSync(d)) {
          const full = join(d, f);
          if (statSync(full).isDirectory()) walk(full);
          else parts.push(readFileSync(full, "utf8"));
        }
      };
      walk(backendDir);
      return parts.join("\n");
    },
    close() {
      // Plugins orphaned by a killed CLI (fault scenarios): ours, found by the lane marker.
      killPids(lanePluginPids(root));
      // PICORTEX_ENGINE_KEEP=1 keeps the backend, PULUMI_HOME and traces for inspection.
      if (process.env.PICORTEX_ENGINE_KEEP === "1") log(`kept ${root}`);
      else rmSync(root, { recursive: true, force: true });
    },
  };
}

/** `pulumi config set [--secret] <key>` with the value on stdin (never in argv). */
export async function setConfig(lane: Lane, p: Project, stack: string, key: string, value: string, o: { secret?: boolean } = {}): Promise<void> {
  const r = await lane.cli(["config", "set", ...(o.secret ? ["--secret"] : []), key, "--stack", stack, "--non-interactive"], { cwd: p.workDir, stdin: value });
  if (r.code !== 0) throw new Error(`pulumi config set ${key} failed: ${r.stderr || r.stdout}`);
}
