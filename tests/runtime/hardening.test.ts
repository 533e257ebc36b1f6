/**
 * Smaller holes from the attack run (issue 13 item 9): state files readable by other
 * users, DNS rebinding against the loopback API, and malformed % escapes answered 500.
 */
import { request } from "node:http";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadRuntimeConfig } from "../../agent-runtime/config/load.js";
import { startRuntime, type RunningRuntime } from "../../agent-runtime/server.js";
import { createLogger } from "../../agent-runtime/log.js";
import type { TurnsModule } from "../../agent-runtime/turns/module.js";

let runtime: RunningRuntime | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await runtime?.close();
  runtime = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(dataDir: string, server: Record<string, unknown> = {}): Promise<RunningRuntime> {
  const config = loadRuntimeConfig({
    env: {},
    overrides: { mode: "local", dataDir, server: { hosts: ["127.0.0.1"], port: 0, ...server }, portal: { enabled: false } },
  });
  runtime = await startRuntime(config, createLogger("test", () => {}));
  return runtime;
}

/** A raw request with a chosen Host header (fetch would not let a test set it). */
function raw(url: string, path: string, headers: Record<string, string>, method = "GET"): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method, headers, agent: false, setHost: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 101);
    });
    req.on("error", reject);
    req.end();
  });
}

const mode = (p: string) => statSync(p).mode & 0o777;

describe("runtime hardening", { timeout: 60_000 }, () => {
  it("tightens a pre-existing 0755 data dir to 0700 and its database to 0600", async () => {
    const parent = mkdtempSync(join(tmpdir(), "pcx-hard-"));
    dirs.push(parent);
    const dataDir = join(parent, "data");
    // A real earlier runtime's state (an empty database file would be refused as a
    // damaged one), then loosened as a careless copy or umask would leave it.
    await start(dataDir);
    await runtime!.close();
    runtime = undefined;
    chmodSync(dataDir, 0o755);
    for (const f of ["runtime.sqlite", "runtime.sqlite-wal"]) if (existsSync(join(dataDir, f))) chmodSync(join(dataDir, f), 0o644);
    expect(mode(dataDir)).toBe(0o755);
    expect(mode(join(dataDir, "runtime.sqlite"))).toBe(0o644);
    await start(dataDir);
    expect(mode(dataDir)).toBe(0o700);
    expect(mode(join(dataDir, "runtime.sqlite"))).toBe(0o600);
    expect(mode(join(dataDir, "runtime.sqlite-wal"))).toBe(0o600);
    expect(mode(join(dataDir, "api-token"))).toBe(0o600);
  });

  it("creates a fresh database 0600 in a 0700 dir even under a permissive umask", async () => {
    const parent = mkdtempSync(join(tmpdir(), "pcx-hard-"));
    dirs.push(parent);
    const old = process.umask(0o022);
    try {
      await start(join(parent, "fresh"));
    } finally {
      process.umask(old);
    }
    expect(mode(join(parent, "fresh"))).toBe(0o700);
    expect(mode(join(parent, "fresh/runtime.sqlite"))).toBe(0o600);
  });

  it("refuses Host names it is not known by (DNS rebinding), on the API, upgrades and the gateway", async () => {
    const parent = mkdtempSync(join(tmpdir(), "pcx-hard-"));
    dirs.push(parent);
    const rt = await start(join(parent, "d"), { allowedOrigins: ["http://agent-host.tail1234.ts.net:7420"], allowedHosts: ["picortex.example.org"] });
    const url = rt.urls[0]!;
    const port = new URL(url).port;
    const auth = { authorization: `Bearer ${rt.apiToken}` };
    expect(await raw(url, "/healthz", { host: `evil.example:${port}` })).toBe(421);
    expect(await raw(url, "/v1/chats", { ...auth, host: `rebind.attacker.test:${port}` })).toBe(421);
    expect(await raw(url, "/portal/ws", { host: "evil.example", connection: "upgrade", upgrade: "websocket" })).toBe(421);
    for (const ok of [`127.0.0.1:${port}`, `localhost:${port}`, "LOCALHOST", `agent-host.tail1234.ts.net:${port}`, "picortex.example.org"]) {
      expect(await raw(url, "/healthz", { host: ok }), ok).toBe(200);
    }
    const gw = new URL((rt.modules.find((m) => m.name === "turns") as TurnsModule).gatewayUrl());
    expect(await raw(gw.origin, "/gateway", { host: `evil.example:${gw.port}` })).toBe(421);
    expect(await raw(gw.origin, "/gateway", { host: `127.0.0.1:${gw.port}` })).toBe(200);
  });

  it("answers a malformed % escape with 400, not 500", async () => {
    const parent = mkdtempSync(join(tmpdir(), "pcx-hard-"));
    dirs.push(parent);
    const rt = await start(join(parent, "d"));
    const url = rt.urls[0]!;
    const host = new URL(url).host;
    const auth = { authorization: `Bearer ${rt.apiToken}`, host };
    expect(await raw(url, "/v1/chats/%zz", auth)).toBe(400);
    expect(await raw(url, "/v1/chats/%E0%A4%A", auth)).toBe(400);
    expect(await raw(url, "/v1/brain/tokens/%", auth, "DELETE")).toBe(400);
    expect(await raw(url, "/v1/chats/nope", auth)).toBe(404);
  });
});
