/**
 * The README's main job, as a new user runs it: `picortex serve --local` (what `npm start`
 * runs) with ANTHROPIC_API_KEY in its environment, then the chat CLI. The key must reach
 * the upstream only through the gateway, never a chat's environment or files.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startFakeAnthropicApi, type FakeAnthropicApi } from "../support/fake-anthropic-api.js";

const REPO = resolve(import.meta.dirname, "../..");
const CLI = join(REPO, "agent-runtime/cli/picortex.ts");
const KEY = "sk-ant-envkey-" + "Q".repeat(24);

let api: FakeAnthropicApi;
let server: ChildProcess;
let url = "";
const dataDir = mkdtempSync(join(tmpdir(), "pcx-main-"));

function run(args: string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH }) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
    const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: REPO, env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (status) => done({ status, stdout, stderr }));
    child.stdin.end();
  });
}

beforeAll(async () => {
  api = await startFakeAnthropicApi();
  const config = join(dataDir, "config.json");
  writeFileSync(config, JSON.stringify({ turns: { upstreamBaseUrl: api.url, warm: { enabled: false } }, portal: { enabled: false } }));
  server = spawn(process.execPath, ["--import", "tsx", CLI, "serve", "--local", "--port", "0", "--data-dir", dataDir, "--config", config, "--json"], {
    cwd: REPO,
    env: { PATH: process.env.PATH, HOME: dataDir, ANTHROPIC_API_KEY: KEY },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let logs = "";
  server.stderr!.on("data", (c) => (logs += c));
  url = await new Promise<string>((ok, fail) => {
    let out = "";
    server.stdout!.on("data", (c) => {
      out += c;
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) ok(JSON.parse(line).urls[0]);
    });
    server.on("exit", (code) => fail(new Error(`serve exited ${code}: ${logs}`)));
  });
}, 60_000);

afterAll(async () => {
  server?.kill("SIGTERM");
  await api?.close();
});

it("answers a chat turn in local mode with the key taken from ANTHROPIC_API_KEY, which no chat can see", async () => {
  expect(statSync(join(dataDir, "api-token")).mode & 0o777).toBe(0o600);
  const chat = (a: string[]) => run(["chat", "--url", url, "--data-dir", dataDir, ...a]);
  const created = await chat(["create", "readme-chat", "--json"]);
  expect(created.status, created.stderr).toBe(0);
  const sent = await chat(["send", "readme-chat", "hello", "main", "job", "--json"]);
  expect(sent.status, sent.stderr).toBe(0);
  expect(JSON.parse(sent.stdout).reply).toContain("hello main job");

  const upstream = api.messageRequests().at(-1)!;
  expect(upstream.headers["x-api-key"]).toBe(KEY);

  // Nothing under the chat's HOME holds the key (its settings carry only the per-chat token).
  const home = join(dataDir, "chats", "readme-chat");
  const stack = [home];
  let files = 0;
  while (stack.length) {
    const dir = stack.pop()!;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        files++;
        expect(readFileSync(p, "utf8").includes(KEY), p).toBe(false);
      }
    }
  }
  expect(files).toBeGreaterThan(0);
}, 120_000);
