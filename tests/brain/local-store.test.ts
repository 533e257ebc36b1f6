/**
 * One local brain store (review item 3, 12, 13): in a runtime's folder, `brain record` and
 * `brain recall` use `<data dir>/brain.sqlite`, the store every chat's MCP server uses, under
 * the chats' project id; `--data-dir` / PICORTEX_DATA_DIR follow the rule of every client;
 * `brain mcp install` registers that store and can be re-run; the store files are 0600.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { chatBrainMcp } from "../../agent-runtime/cli/brain-mcp.js";

const REPO = resolve(import.meta.dirname, "../..");
const CLAUDE = join(REPO, "node_modules/.bin/claude");
const BIN = join(REPO, "agent-runtime/bin/picortex.mjs");
const work = mkdtempSync(join(tmpdir(), "pcx-brain-store-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }, command = process.execPath) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
    const child = spawn(command, command === process.execPath ? [BIN, ...args] : args, { cwd: opts.cwd, env: opts.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (status) => done({ status, stdout, stderr }));
    child.stdin.end();
  });
}
const quiet = { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1", DISABLE_AUTOUPDATER: "1" };

/** A clone whose `npm start` has run: `.picortex` holds the runtime's files. */
function clone(name: string) {
  const root = join(work, name);
  const dataDir = join(root, ".picortex");
  mkdirSync(join(root, "docs"), { recursive: true });
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, "api-token"), "pct_test_token_000000000000\n", { mode: 0o600 });
  const home = join(work, `${name}-home`);
  mkdirSync(home, { recursive: true });
  return { root, dataDir, home, env: { PATH: "/usr/bin:/bin", HOME: home, ...quiet } as NodeJS.ProcessEnv };
}

describe("the brain CLI follows the data dir rule", () => {
  it("records in the clone where a chat's brain server reads it, in private files", async () => {
    const c = clone("one");
    const rec = await run(["brain", "record", "--kind", "decision", "--title", "Use cx23 as the server type", "--conclusion", "cx22 is retired"], { cwd: join(c.root, "docs"), env: c.env });
    expect(rec.status, rec.stderr).toBe(0);
    expect(existsSync(join(c.dataDir, "brain.sqlite"))).toBe(true);
    expect(existsSync(join(c.home, ".picortex", "brain.sqlite"))).toBe(false);
    for (const f of ["brain.sqlite", "brain.sqlite-wal", "brain.sqlite-shm"]) {
      const p = join(c.dataDir, f);
      if (existsSync(p)) expect((statSync(p).mode & 0o777).toString(8), f).toBe("600");
    }
    // The chat side: the env the runtime gives each chat's MCP server, from the chat's own folder.
    const chatEnv = chatBrainMcp(c.dataDir)("alpha").env;
    const elsewhere = join(work, "chat-cwd");
    mkdirSync(elsewhere, { recursive: true });
    const got = await run(["brain", "recall", "server type", "--json"], { cwd: elsewhere, env: { ...c.env, ...chatEnv } });
    expect(got.status, got.stderr).toBe(0);
    expect(JSON.parse(got.stdout).results.map((r: { title: string }) => r.title)).toContain("Use cx23 as the server type");
  }, 120_000);

  it("takes --data-dir and PICORTEX_DATA_DIR, and refuses one that is not a runtime's", async () => {
    const c = clone("two");
    const outside = join(work, "outside");
    mkdirSync(outside, { recursive: true });
    const rec = await run(["brain", "record", "--data-dir", c.dataDir, "--title", "from flag", "--conclusion", "x", "--json"], { cwd: outside, env: c.env });
    expect(rec.status, rec.stderr).toBe(0);
    const list = await run(["brain", "list", "--json"], { cwd: outside, env: { ...c.env, PICORTEX_DATA_DIR: c.dataDir } });
    expect(list.status, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).entries.map((e: { title: string }) => e.title)).toEqual(["from flag"]);
    const nope = await run(["brain", "recall", "x", "--data-dir", join(work, "nope")], { cwd: outside, env: c.env });
    expect(nope.status).toBe(2);
    expect(nope.stderr).toContain(`--data-dir ${join(work, "nope")}: does not exist`);
  }, 120_000);
});

describe("brain mcp install", () => {
  it("registers the clone's store, and re-running it replaces the registration", async () => {
    const c = clone("three");
    const printed = await run(["brain", "mcp", "install", "--claude", CLAUDE, "--print", "--json"], { cwd: c.root, env: c.env });
    expect(printed.status, printed.stderr).toBe(0);
    expect(existsSync(join(c.home, ".claude.json"))).toBe(false); // --print installs nothing
    expect(JSON.parse(printed.stdout).args).toEqual(expect.arrayContaining([`PICORTEX_BRAIN_DB=${join(c.dataDir, "brain.sqlite")}`, "PICORTEX_PROJECT_ID=picortex-chats"]));
    for (let i = 0; i < 2; i++) {
      const r = await run(["brain", "mcp", "install", "--claude", CLAUDE, "--json"], { cwd: c.root, env: c.env });
      expect(r.status, `run ${i + 1}: ${r.stderr}${r.stdout}`).toBe(0);
      expect(JSON.parse(r.stdout).env.PICORTEX_BRAIN_DB).toBe(join(c.dataDir, "brain.sqlite"));
    }
    const server = JSON.parse(readFileSync(join(c.home, ".claude.json"), "utf8")).mcpServers.brain;
    expect(server.env.PICORTEX_BRAIN_DB).toBe(join(c.dataDir, "brain.sqlite"));
  }, 180_000);
});
