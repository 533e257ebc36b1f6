/**
 * Local mode and the real key (issue 13 items 8 and 9): `npm start` runs
 * `picortex serve --local` with ANTHROPIC_API_KEY exported, and chats run as the same
 * Unix user. A process of that user reads /proc/<runtime pid>/environ: the runtime has
 * overwritten the key there. Its ancestors (npm, tsx, the shell) still hold their copies,
 * which no process can take back, so the banner must say plainly that local mode is not
 * a boundary instead of promising that chats only ever see a per-chat token. With stdout
 * not a terminal (a pipe, the journal) the generated API token is never printed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";

const REPO = resolve(import.meta.dirname, "../..");
const CLI = join(REPO, "agent-runtime/cli/picortex.ts");
const KEY = "sk-ant-exposed-" + "Z".repeat(24);
const dataDir = mkdtempSync(join(tmpdir(), "pcx-exposure-"));
let server: ChildProcess;
let banner = "";

beforeAll(async () => {
  const config = join(dataDir, "config.json");
  writeFileSync(config, JSON.stringify({ portal: { enabled: false }, brain: { enabled: false }, turns: { warm: { enabled: false } } }));
  server = spawn(process.execPath, ["--import", "tsx", CLI, "serve", "--local", "--port", "0", "--data-dir", join(dataDir, "data"), "--config", config], {
    cwd: REPO,
    env: { PATH: process.env.PATH, HOME: dataDir, ANTHROPIC_API_KEY: KEY },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let logs = "";
  server.stderr!.on("data", (c) => (logs += c));
  await new Promise<void>((ok, fail) => {
    server.stdout!.on("data", (c) => {
      banner += c;
      if (/data: /.test(banner) && /brain|chats:/.test(banner)) ok();
    });
    server.on("exit", (code) => fail(new Error(`serve exited ${code}: ${logs}`)));
  });
}, 60_000);

afterAll(async () => {
  if (server?.exitCode === null) {
    const exited = new Promise((r) => server.once("exit", r));
    server.kill("SIGTERM");
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

it("a same-user process reading the runtime's /proc/<pid>/environ does not find the key, and the banner names what still holds it", () => {
  const environ = readFileSync(`/proc/${server.pid}/environ`, "utf8");
  expect(environ).not.toContain(KEY);
  // Overwritten in place: the variable is still listed, its value is not.
  expect(environ.split("\0")).toContain(`ANTHROPIC_API_KEY=${"*".repeat(KEY.length)}`);
  // The processes that started it (npm, tsx, a shell) keep their copy; the banner says so plainly.
  expect(banner).toMatch(/Not a security boundary/);
  expect(banner).toMatch(/\/proc\/<pid>\/environ of the npm\/tsx\/shell processes that started this runtime/);
  expect(banner).toMatch(/host mode/i);
  expect(banner).not.toMatch(/only ever see a per-chat token/);
  // The key itself is never printed.
  expect(banner).not.toContain(KEY);
});

it("the key was read before it was overwritten (main-job.test.ts proves a turn still reaches the upstream with it)", () => {
  expect(banner).not.toMatch(/no Anthropic key yet/);
});

it("does not print a generated API token when stdout is not a terminal (a pipe, the journal)", () => {
  const token = readFileSync(join(dataDir, "data/api-token"), "utf8").trim();
  expect(token.length).toBeGreaterThan(16);
  expect(banner).not.toContain(token);
  expect(banner).toContain(join(dataDir, "data/api-token"));
});
