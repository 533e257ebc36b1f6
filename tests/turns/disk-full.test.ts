/**
 * Fault injection: the runtime's data dir on a real, small filesystem (tmpfs) that fills
 * up while a turn runs. Needs root (mount); run under the shared system lock:
 *   flock /tmp/picortex-system.lock npx vitest run tests/turns/disk-full.test.ts
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { runtimeHealthChecks } from "../../scripts/doctor.js";
import { openDatabase } from "../../agent-runtime/store/database.js";
import { startFakeAnthropicApi } from "../support/fake-anthropic-api.js";
import { CLAUDE, REPO, requireRoot } from "./helpers.js";
import { until } from "./runtime-process.js";

/** Writes until the filesystem refuses (ENOSPC), in ever smaller pieces, so not a block is left. */
function fillUp(file: string): number {
  const fd = openSync(file, "w");
  let written = 0;
  try {
    for (let size = 1 << 20; size >= 1; size >>= 1) {
      const buf = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          written += writeSync(fd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}


describe("disk full: a real full filesystem under the data dir", { timeout: 300_000 }, () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("fails only the writes that need space (507 'disk full'), keeps serving, holds the running turn, and recovers without a restart", async () => {
    requireRoot();
    const work = mkdtempSync(join(tmpdir(), "pc-diskfull-"));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const mnt = join(work, "mnt");
    mkdirSync(mnt);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", mnt]);
    cleanups.push(() => void execFileSync("umount", ["-l", mnt]));
    const dataDir = join(mnt, "data");
    mkdirSync(dataDir, { mode: 0o700 });
    // Chat workspaces (Claude's own files) live elsewhere: this test is about the
    // runtime's database, not about what claude does when its HOME is full.
    const chats = join(work, "chats");
    mkdirSync(chats, { mode: 0o700 });
    mkdirSync(join(dataDir, "chats"), { mode: 0o700 });
    execFileSync("mount", ["--bind", chats, join(dataDir, "chats")]);
    cleanups.push(() => void execFileSync("umount", ["-l", join(dataDir, "chats")]));

    const fake = await startFakeAnthropicApi();
    cleanups.push(() => fake.close());
    writeFileSync(join(work, "key"), "sk-ant-test-diskfull\n", { mode: 0o600 });
    const configFile = join(work, "runtime.json");
    writeFileSync(
      configFile,
      JSON.stringify({
        mode: "local",
        dataDir,
        server: { hosts: ["127.0.0.1"], port: 0 },
        portal: { enabled: false },
        brain: { enabled: true },
        turns: { claudePath: CLAUDE, upstreamBaseUrl: fake.url, apiKeyFile: join(work, "key"), killGraceSeconds: 1, warm: { enabled: false } },
      }),
    );
    // --init: the data dir is new, only the chats link is there already.
    const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", join(REPO, "agent-runtime/cli/picortex.ts"), "serve", "--config", configFile, "--json", "--init"], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "pipe"],
    });
    cleanups.push(() => void child.kill("SIGKILL"));
    let stderr = "";
    child.stderr!.on("data", (c) => (stderr += c));
    let url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once("line", (l) => resolve(JSON.parse(l).urls[0]));
      child.once("exit", (code) => reject(new Error(`runtime exited (${code}):\n${stderr}`)));
    });
    let exited: number | null | undefined;
    child.once("exit", (code) => (exited = code));
    const token = readFileSync(join(dataDir, "api-token"), "utf8").trim();
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : undefined, text };
    };
    const turnDone = (id: string) =>
      until(`turn ${id}`, async () => {
        const t = (await call("GET", `/v1/chats/full-a/turns/${id}`)).json;
        return ["done", "failed", "interrupted"].includes(t.status) ? t : undefined;
      });

    expect((await call("POST", "/v1/chats", { id: "full-a" })).status).toBe(201);
    const t1 = (await call("POST", "/v1/chats/full-a/turns", { text: "before" })).json.id;
    expect((await turnDone(t1)).status).toBe("done");

    // The next answer is held upstream while the disk fills up.
    let release!: () => void;
    fake.enqueue({ gate: new Promise<void>((r) => (release = r)) });
    const before = fake.messageRequests().length;
    const t2 = (await call("POST", "/v1/chats/full-a/turns", { text: "during" })).json.id;
    await until("the held request", () => (fake.messageRequests().length > before ? true : undefined)).catch(async (err) => {
      throw new Error(`${err.message}: ${JSON.stringify((await call("GET", "/v1/chats/full-a/turns")).json)}\n${stderr.slice(-3000)}`);
    });
    // Fold the -wal into the database so the next commit must grow the file, then fill the disk.
    const side = openDatabase(join(dataDir, "runtime.sqlite"));
    side.pragma("wal_checkpoint(TRUNCATE)");
    side.close();
    const filler = join(mnt, "filler");
    expect(fillUp(filler)).toBeGreaterThan(0);
    release();

    // The answer reaches claude, its usage cannot be written (the gateway used to crash
    // the process here), the finished turn is held, and the runtime says why.
    const health = await until("disk full in /healthz", async () => {
      const h = await call("GET", "/healthz");
      return h.status === 200 && h.json.disk?.full ? h : undefined;
    });
    expect(health.json.ok).toBe(true);
    expect(health.json.disk.message).toContain(`disk full: ${dataDir}, need ~16 MiB`);
    const checks = runtimeHealthChecks(health.status, health.text);
    expect(checks.find((c) => c.name === "runtime data disk")).toMatchObject({ ok: false, detail: expect.stringContaining("disk full") });

    // Writes that need space fail with 507 and the path; reads keep working.
    const refused = await call("POST", "/v1/chats/full-a/turns", { text: "no room" });
    expect(refused.status).toBe(507);
    expect(refused.json.error.code).toBe("disk_full");
    expect(refused.json.error.message).toMatch(new RegExp(`^disk full: ${dataDir}, need ~16 MiB free`));
    expect((await call("POST", "/v1/chats", { id: "full-b" })).status).toBe(507);
    const brainToken = await call("GET", "/v1/chats/full-a/turns");
    expect(brainToken.status).toBe(200);
    expect(brainToken.json.turns.map((t: any) => t.text)).toEqual(["before", "during"]);
    expect(brainToken.json.turns[1].status).toBe("running");
    expect((await call("GET", "/v1/chats/full-a/messages")).status).toBe(200);
    expect(exited).toBeUndefined();

    // Space comes back: the held turn is saved, with its usage, and new work is accepted.
    unlinkSync(filler);
    const done2 = await turnDone(t2);
    expect(done2.status).toBe("done");
    expect(done2.reply).toContain("during");
    const chat = (await call("GET", "/v1/chats/full-a")).json;
    const n = fake.messageRequests().length;
    await until("held usage written", async () => {
      const c = (await call("GET", "/v1/chats/full-a")).json;
      return c.usage.outputTokens === n * fake.usage.output_tokens ? c : undefined;
    });
    expect(chat.status).toBe("ready");
    const after = await call("POST", "/v1/chats/full-a/turns", { text: "after" });
    expect(after.status).toBe(202);
    expect((await turnDone(after.json.id)).status).toBe("done");
    expect((await call("GET", "/healthz")).json.disk.full).toBe(false);
    expect(exited).toBeUndefined();
    expect(stderr).not.toMatch(/SqliteError|uncaught/i);

    // A restart while the disk is full (a deploy, a reboot) comes up and serves reads
    // instead of crash-looping; writes get 507 until there is room, then work again.
    const stopped = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    expect(await stopped).toBe(0);
    expect(fillUp(filler)).toBeGreaterThan(0);
    const again: ChildProcess = spawn(process.execPath, ["--import", "tsx", join(REPO, "agent-runtime/cli/picortex.ts"), "serve", "--config", configFile, "--json"], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "pipe"],
    });
    cleanups.push(() => void again.kill("SIGKILL"));
    let stderr2 = "";
    again.stderr!.on("data", (c) => (stderr2 += c));
    url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: again.stdout! }).once("line", (l) => resolve(JSON.parse(l).urls[0]));
      again.once("exit", (code) => setTimeout(() => reject(new Error(`runtime exited (${code}) on a full disk:\n${stderr2}`)), 200));
    });
    const h2 = await call("GET", "/healthz");
    expect(h2.status).toBe(200);
    expect(h2.json.disk.full).toBe(true);
    expect((await call("GET", "/v1/chats/full-a/turns")).json.turns).toHaveLength(3);
    expect((await call("POST", "/v1/chats/full-a/turns", { text: "still no room" })).status).toBe(507);
    unlinkSync(filler);
    const later = await call("POST", "/v1/chats/full-a/turns", { text: "room again" });
    expect(later.status).toBe(202);
    expect((await turnDone(later.json.id)).status).toBe("done");
    expect(again.exitCode).toBeNull();
  });
});
