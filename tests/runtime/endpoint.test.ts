/**
 * Issue 16 item 4: one way to choose where the runtime listens, and every client finds it.
 * A real `picortex serve` (what `npm start` runs) on a free port, started without
 * --data-dir in a project folder; the clients run from a subfolder with no flags at all.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const REPO = resolve(import.meta.dirname, "../..");
const CLI = join(REPO, "agent-runtime/cli/picortex.ts");
const work = mkdtempSync(join(tmpdir(), "pcx-endpoint-"));
const project = join(work, "project");
const sub = join(project, "src", "deeper");
const dataDir = join(project, ".picortex");
const elsewhere = join(work, "elsewhere");
const env = { PATH: process.env.PATH, HOME: work };

function run(args: string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
    const child = spawn(process.execPath, ["--import", join(REPO, "node_modules/tsx/dist/esm/index.mjs"), CLI, ...args], { cwd, env: { ...env, ...extraEnv } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (status) => done({ status, stdout, stderr }));
    child.stdin.end();
  });
}

function serve(args: string[], cwd: string): Promise<{ child: ChildProcess; summary: any }> {
  const child = spawn(process.execPath, ["--import", join(REPO, "node_modules/tsx/dist/esm/index.mjs"), CLI, "serve", "--local", "--json", ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let logs = "";
  child.stderr!.on("data", (c) => (logs += c));
  return new Promise((ok, fail) => {
    let out = "";
    child.stdout!.on("data", (c) => {
      out += c;
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) ok({ child, summary: JSON.parse(line) });
    });
    child.on("exit", (code) => fail(new Error(`serve exited ${code}: ${logs}`)));
  });
}

let server: ChildProcess;
let summary: { urls: string[]; dataDir: string };

beforeAll(async () => {
  mkdirSync(sub, { recursive: true });
  mkdirSync(elsewhere, { recursive: true });
  writeFileSync(join(project, "config.json"), JSON.stringify({ turns: { warm: { enabled: false } } }));
  ({ child: server, summary } = await serve(["--port", "0", "--config", "config.json"], project));
}, 90_000);

afterAll(() => {
  server?.kill("SIGTERM");
  rmSync(work, { recursive: true, force: true });
});

describe("the endpoint record and the data dir rule", () => {
  it("serve without --data-dir uses ./.picortex and records where it listens (url, pid), 0600", () => {
    expect(summary.dataDir).toBe(dataDir);
    const path = join(dataDir, "endpoint.json");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const record = JSON.parse(readFileSync(path, "utf8"));
    expect(record).toMatchObject({ pid: server.pid, url: summary.urls[0], mode: "local" });
    expect(record.port).toBeGreaterThan(0);
    expect(record.url).not.toContain(":7420");
  });

  it("chat, portal status and portal token find the running runtime from a subfolder, with no flags", async () => {
    const list = await run(["chat", "list", "--json"], sub);
    expect(list.status, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual({ chats: [] });

    const status = await run(["portal", "status", "--json"], sub);
    expect(status.status, status.stdout + status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: true, pid: server.pid, via: "serve", urls: summary.urls });

    const token = await run(["portal", "token", "--json"], sub);
    expect(token.status, token.stderr).toBe(0);
    const links = JSON.parse(token.stdout).links as string[];
    expect(links[0]!.startsWith(`${summary.urls[0]}/portal/#token=`)).toBe(true);
  });

  it("chat create warns when turns cannot run: this runtime has no Anthropic key (issue 16 item 1)", async () => {
    const r = await run(["chat", "create", "nokey"], sub);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: turns cannot run yet: no Anthropic API key configured/);
    const j = await run(["chat", "create", "nokey2", "--json"], sub);
    expect(JSON.parse(j.stdout).warnings[0]).toMatch(/no Anthropic API key/);
  });

  it("portal token from an unrelated folder refuses instead of minting a token in a new ./.picortex", async () => {
    const r = await run(["portal", "token"], elsewhere);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--data-dir");
    expect(existsSync(join(elsewhere, ".picortex"))).toBe(false);
    const chat = await run(["chat", "list"], elsewhere);
    expect(chat.status).toBe(2); // the same code as portal token: a configuration problem
    expect(chat.stderr).toContain("npm start");
  });

  it("a data dir named by PICORTEX_DATA_DIR or --data-dir that does not exist is named in the message", async () => {
    const nope = join(elsewhere, "nope");
    const env = await run(["chat", "list"], elsewhere, { PICORTEX_DATA_DIR: nope });
    expect(env.status).toBe(2);
    expect(env.stderr).toContain(`PICORTEX_DATA_DIR=${nope} names a folder that does not exist`);
    const flag = await run(["chat", "list", "--data-dir", nope], elsewhere);
    expect(flag.status).toBe(2);
    expect(flag.stderr).toContain(`--data-dir ${nope} names a folder that does not exist`);
  });

  it("portal start refuses while serve already runs the portal on this data dir (review item 10)", async () => {
    const r = await run(["portal", "start", "--host", "127.0.0.1", "--port", "0"], sub);
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toContain(`picortex serve (pid ${server.pid}) already serves the portal for ${dataDir}`);
    expect(existsSync(join(dataDir, "portal.pid"))).toBe(false);
  });

  it("portal token refuses a data dir whose endpoint record names another runtime, minting nothing (review item 9)", async () => {
    const other = join(work, "other", ".picortex");
    mkdirSync(other, { recursive: true, mode: 0o700 });
    writeFileSync(join(other, "api-token"), "pct_" + "y".repeat(40) + "\n", { mode: 0o600 });
    writeFileSync(join(other, "endpoint.json"), readFileSync(join(dataDir, "endpoint.json")), { mode: 0o600 });
    const r = await run(["portal", "token", "--data-dir", other], elsewhere);
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toContain("does not take its API token");
    expect(r.stdout).toBe("");
    expect(existsSync(join(other, "portal-token"))).toBe(false);
  });

  it("a wrong token says what a CLI user should do, not an HTTP header recipe", async () => {
    const r = await run(["chat", "list"], sub, { PICORTEX_API_TOKEN: "pct_" + "x".repeat(40) });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("PICORTEX_API_TOKEN");
    expect(r.stderr).not.toContain("Authorization");
  });

  it("a second runtime on the same port gets a hint (EADDRINUSE), --port abc and an unusable data dir plain messages", async () => {
    const port = new URL(summary.urls[0]!).port;
    const busy = await run(["serve", "--local", "--port", port, "--data-dir", join(work, "other")], work);
    expect(busy.status).toBe(1);
    expect(busy.stderr).toContain("already in use");
    expect(busy.stderr).toContain("--port");
    expect(busy.stderr).not.toContain("    at ");

    const abc = await run(["serve", "--local", "--port", "abc", "--data-dir", join(work, "other2")], work);
    expect(abc.status).toBe(2);
    expect(abc.stderr).toContain('--port must be a port number from 0 to 65535');
    const envPort = await run(["serve", "--local", "--data-dir", join(work, "other3")], work, { PICORTEX_PORT: "80a" });
    expect(envPort.status).toBe(2);
    expect(envPort.stderr).toContain("PICORTEX_PORT must be a port number");

    writeFileSync(join(work, "a-file"), "");
    const bad = await run(["serve", "--local", "--port", "0", "--data-dir", join(work, "a-file", "data")], work);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("Cannot use data dir");
    expect(bad.stderr).not.toContain("    at ");
  });

  it("the record goes away when the runtime stops, and clients then say it is not running", async () => {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
    expect(existsSync(join(dataDir, "endpoint.json"))).toBe(false);
    const r = await run(["chat", "list"], sub);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("not running");
  });
});
