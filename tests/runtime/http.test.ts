import { describe, expect, it, afterEach } from "vitest";
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { Router, Reply } from "../../agent-runtime/http/router.js";
import { secretsEqual, bearerToken } from "../../agent-runtime/http/auth.js";
import { redact } from "../../agent-runtime/log.js";
import { writeFileAtomic } from "../../agent-runtime/store/atomic-file.js";
import { openDatabase, migrate } from "../../agent-runtime/store/database.js";

let server: Server | undefined;
afterEach(() => server?.close());

async function serve(router: Router): Promise<string> {
  server = createServer((req, res) => {
    void router.handle(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  const addr = server.address() as { port: number };
  return `http://127.0.0.1:${addr.port}`;
}

describe("http router", () => {
  it("routes params, validates bodies and maps errors to status codes", async () => {
    const router = new Router().add(
      { method: "GET", path: "/v1/things/:id", handler: (c) => ({ id: c.params.id }) },
      {
        method: "POST",
        path: "/v1/things",
        handler: async (c) => new Reply(201, await c.body(z.object({ name: z.string().max(5) }).strict(), 64)),
      },
    );
    const base = await serve(router);
    expect(await (await fetch(`${base}/v1/things/a-1`)).json()).toEqual({ id: "a-1" });
    const created = await fetch(`${base}/v1/things`, { method: "POST", body: JSON.stringify({ name: "ok" }) });
    expect(created.status).toBe(201);
    const bad = await fetch(`${base}/v1/things`, { method: "POST", body: JSON.stringify({ name: "too long" }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/name/);
    const notJson = await fetch(`${base}/v1/things`, { method: "POST", body: "{" });
    expect(notJson.status).toBe(400);
    const big = await fetch(`${base}/v1/things`, { method: "POST", body: JSON.stringify({ name: "x".repeat(100) }) });
    expect(big.status).toBe(413);
    const wrongMethod = await fetch(`${base}/v1/things/a`, { method: "DELETE" });
    expect(wrongMethod.status).toBe(405);
  });
});

describe("auth helpers", () => {
  it("compares secrets exactly", () => {
    expect(secretsEqual("abc", "abc")).toBe(true);
    expect(secretsEqual("abc", "abd")).toBe(false);
    expect(secretsEqual("abc", "abcd")).toBe(false);
    expect(secretsEqual("", "a")).toBe(false);
  });
  it("parses only well-formed bearer headers", () => {
    const req = (h?: string) => ({ headers: { authorization: h } }) as never;
    expect(bearerToken(req("Bearer pct_abc"))).toBe("pct_abc");
    expect(bearerToken(req("Basic abc"))).toBeUndefined();
    expect(bearerToken(req("Bearer a b"))).toBeUndefined();
    expect(bearerToken(req())).toBeUndefined();
  });
  it("redacts credentials from log lines", () => {
    const line = redact("auth Bearer pct_0123456789abcdef and sk-ant-api03-ABCDEFGHIJKLMNOP");
    expect(line).not.toMatch(/0123456789abcdef/);
    expect(line).not.toMatch(/ABCDEFGHIJKLMNOP/);
  });
});

describe("store", () => {
  it("writes files atomically with the requested mode and leaves no temp files", () => {
    const dir = mkdtempSync(join(tmpdir(), "pcx-atomic-"));
    const path = join(dir, "secret");
    writeFileAtomic(path, "one", 0o600);
    writeFileAtomic(path, "two", 0o600);
    expect(readFileSync(path, "utf8")).toBe("two");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["secret"]);
    rmSync(dir, { recursive: true, force: true });
  });
  it("applies migrations once per module and refuses a newer schema", () => {
    const dbDir = mkdtempSync(join(tmpdir(), "pcx-db-"));
    const db = openDatabase(join(dbDir, "t.sqlite"));
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    migrate(db, "m", ["CREATE TABLE a (x INTEGER)", "CREATE TABLE b (y INTEGER)"]);
    migrate(db, "m", ["CREATE TABLE a (x INTEGER)", "CREATE TABLE b (y INTEGER)"]);
    expect(db.prepare("SELECT version FROM schema_migrations WHERE module='m'").get()).toEqual({ version: 2 });
    expect(() => migrate(db, "m", ["CREATE TABLE a (x INTEGER)"])).toThrow(/newer/);
    db.close();
    rmSync(dbDir, { recursive: true, force: true });
  });
});

describe("API token guard", () => {
  it("accepts the token, answers 401 otherwise, and limits a guessing client with 429", async () => {
    const { ApiTokenGuard } = await import("../../agent-runtime/http/api-token-guard.js");
    const { FailureLimiter } = await import("../../agent-runtime/http/rate-limit.js");
    const guard = new ApiTokenGuard("pct_right", new FailureLimiter(3, 60_000));
    const req = (auth: string | undefined, ip = "127.0.0.9") =>
      ({ headers: { authorization: auth }, socket: { remoteAddress: ip } }) as never;
    const status = (fn: () => void) => {
      try {
        fn();
        return 200;
      } catch (err) {
        return (err as { status: number }).status;
      }
    };
    expect(status(() => guard.check(req("Bearer pct_right")))).toBe(200);
    expect(status(() => guard.check(req("Bearer pct_wrong")))).toBe(401);
    expect(status(() => guard.check(req(undefined)))).toBe(401);
    expect(status(() => guard.check(req("Bearer pct_wrong")))).toBe(401);
    // Three failures: wrong tokens from this bucket now get 429; a right token never does.
    expect(status(() => guard.check(req("Bearer pct_wrong")))).toBe(429);
    expect(status(() => guard.check(req("Bearer pct_right")))).toBe(200);
    // Rotating the source over 127.0.0.0/8 (or ::1, or IPv4-mapped) does not escape the limit.
    expect(status(() => guard.check(req("Bearer pct_wrong", "127.0.0.10")))).toBe(429);
    expect(status(() => guard.check(req("Bearer pct_wrong", "127.200.3.4")))).toBe(429);
    expect(status(() => guard.check(req("Bearer pct_wrong", "::1")))).toBe(429);
    expect(status(() => guard.check(req("Bearer pct_wrong", "::ffff:127.0.0.2")))).toBe(429);
    // Another (tailnet) address has its own bucket.
    expect(status(() => guard.check(req("Bearer pct_wrong", "100.64.0.7")))).toBe(401);
  });
});
