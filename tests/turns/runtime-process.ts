/** A real runtime as its own process (node + tsx), for kill -9 and SIGTERM tests. */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { FakeAnthropicApi } from "../support/fake-anthropic-api.js";
import { CLAUDE, REPO } from "./helpers.js";

export const CLI = join(REPO, "agent-runtime/cli/picortex.ts");

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 120_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A runtime started from a config file, as its own process: its URL once it listens, and everything it wrote. */
export interface SpawnedRuntime {
  child: ChildProcess;
  url: string;
  /** stderr (the log) and any stdout after the listening line. */
  output: () => string;
}

export async function spawnRuntimeProcess(configFile: string): Promise<SpawnedRuntime> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "serve", "--config", configFile, "--json"], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stderr!.on("data", (c) => (out += c));
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once("line", (l) => {
      resolve(l);
      rl.on("line", (x) => (out += x + "\n"));
    });
    child.once("exit", (code) => reject(new Error(`runtime exited (${code}) before listening:\n${out}`)));
  });
  return { child, url: JSON.parse(line).urls[0], output: () => out };
}

/** A runtime as its own process on a fixed port, so it can be killed and come back at the same URL. */
export class RuntimeProcess {
  child!: ChildProcess;
  readonly url: string;
  readonly dataDir: string;
  private readonly configFile: string;

  /** Everything the process wrote to stderr (its log), across restarts. */
  stderr = "";

  constructor(dir: string, fake: FakeAnthropicApi, port: number, turns: Record<string, unknown> = {}) {
    this.dataDir = join(dir, "data");
    this.url = `http://127.0.0.1:${port}`;
    writeFileSync(join(dir, "key"), "sk-ant-test-idem\n", { mode: 0o600 });
    this.configFile = join(dir, "runtime.json");
    writeFileSync(
      this.configFile,
      JSON.stringify({
        mode: "local",
        dataDir: this.dataDir,
        server: { hosts: ["127.0.0.1"], port },
        portal: { enabled: false },
        brain: { enabled: false },
        turns: { claudePath: CLAUDE, upstreamBaseUrl: fake.url, apiKeyFile: join(dir, "key"), killGraceSeconds: 1, warm: { enabled: false }, ...turns },
      }),
    );
  }

  async start(): Promise<void> {
    this.child = spawn(process.execPath, ["--import", "tsx", CLI, "serve", "--config", this.configFile, "--json"], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stderr!.on("data", (c) => (this.stderr += c));
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: this.child.stdout! }).once("line", () => resolve());
      this.child.once("exit", (code) => reject(new Error(`runtime exited (${code}):\n${this.stderr}`)));
    });
  }

  async kill9(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGKILL");
    await exited;
  }

  /** Sends SIGTERM (a deploy, `systemctl stop`) and resolves with the exit code. */
  async terminate(): Promise<number | null> {
    const exited = new Promise<number | null>((r) => this.child.once("exit", (code) => r(code)));
    this.child.kill("SIGTERM");
    return exited;
  }

  token(): string {
    return readFileSync(join(this.dataDir, "api-token"), "utf8").trim();
  }

  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${this.token()}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json().catch(() => undefined)) as any, replayed: res.headers.get("idempotent-replayed") };
  }
}

