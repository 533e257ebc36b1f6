/**
 * Issue 16 item 10: every command treats usage the same way. Usage errors exit 2 (commander's
 * own parse errors included), an unknown name exits 2 in chat and brain alike, a
 * subcommand's --help lists the options it inherits, and bad values get plain sentences.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const REPO = resolve(import.meta.dirname, "../..");
const CLI = join(REPO, "agent-runtime/cli/picortex.ts");
const TSX = join(REPO, "node_modules/tsx/dist/esm/index.mjs");
const work = mkdtempSync(join(tmpdir(), "pcx-cli-consistency-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const env = { PATH: process.env.PATH, HOME: work, PICORTEX_BRAIN_DB: join(work, "brain.sqlite") };

function run(args: string[]) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
    const child = spawn(process.execPath, ["--import", TSX, CLI, ...args], { cwd: work, env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (status) => done({ status, stdout, stderr }));
    child.stdin.end();
  });
}

describe("picortex CLI consistency", () => {
  it("argument parser errors exit 2, like picortex's own checks", async () => {
    for (const args of [["bogus"], ["chat", "send"], ["chat", "list", "--nope"], ["brain", "record", "--kind"], ["portal"]]) {
      const r = await run(args);
      expect(r.status, `${args.join(" ")}: ${r.stderr}`).toBe(2);
    }
    expect((await run(["--help"])).status).toBe(0);
    expect((await run(["--version"])).status).toBe(0);
  });

  it("an unknown brain entry exits 2, as an unknown chat does", async () => {
    const r = await run(["brain", "show", "nope", "--json"]);
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout).error.code).toBe("not_found");
  });

  it("brain token commands refuse a folder without a runtime database instead of creating one", async () => {
    const r = await run(["brain", "token", "list"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("No runtime database");
    const { existsSync } = await import("node:fs");
    expect(existsSync(join(work, ".picortex", "runtime.sqlite"))).toBe(false);
  });

  it("subcommand --help lists the options it inherits (--json, --url, --data-dir)", async () => {
    const r = await run(["chat", "send", "--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("--json");
    expect(r.stdout).toContain("--data-dir");
  });

  it("--port abc and an unusable --data-dir get plain messages, exit 2", async () => {
    const port = await run(["portal", "start", "--port", "abc", "--data-dir", join(work, "d1"), "--host", "127.0.0.1"]);
    expect(port.status).toBe(2);
    expect(port.stderr).toContain("--port must be a port number from 0 to 65535");
    writeFileSync(join(work, "file"), "");
    const dir = await run(["portal", "start", "--data-dir", join(work, "file", "sub"), "--host", "127.0.0.1"]);
    expect(dir.status).toBe(2);
    expect(dir.stderr).toContain("Cannot use data dir");
    expect(dir.stderr).not.toContain("    at ");
  });
});
