import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, statSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadRuntimeConfig, ConfigError } from "../../agent-runtime/config/load.js";
import { startRuntime, type RunningRuntime } from "../../agent-runtime/server.js";
import { createLogger } from "../../agent-runtime/log.js";

let runtime: RunningRuntime | undefined;
afterEach(async () => {
  await runtime?.close();
  runtime = undefined;
});

describe("runtime server", () => {
  it("serves /healthz on loopback and stores its API token 0600", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "pcx-rt-"));
    const config = loadRuntimeConfig({ overrides: { dataDir, server: { port: 0 } }, env: {} });
    runtime = await startRuntime(config, createLogger("test", () => {}));
    expect(runtime.urls[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${runtime.urls[0]}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, mode: "local" });
    const tokenPath = join(dataDir, "api-token");
    expect(statSync(tokenPath).mode & 0o777).toBe(0o600);
    expect(readFileSync(tokenPath, "utf8").trim()).toBe(runtime.apiToken);
    const missing = await fetch(`${runtime.urls[0]}/nope`);
    expect(missing.status).toBe(404);
  });

  it("rejects invalid configuration with the offending key named", () => {
    expect(() => loadRuntimeConfig({ overrides: { server: { port: 70000 } }, env: {} })).toThrowError(ConfigError);
    expect(() => loadRuntimeConfig({ overrides: { server: { port: 70000 } }, env: {} })).toThrowError(/server\.port/);
    expect(() => loadRuntimeConfig({ overrides: { bogus: 1 }, env: {} })).toThrowError(/bogus|Unrecognized/);
  });
});

describe("API token file", () => {
  it("tightens a token file loosened by hand; replaces one too short only while initialising", async () => {
    const { readApiToken } = await import("../../agent-runtime/store/data-dir.js");
    const { writeFileSync, chmodSync } = await import("node:fs");
    const dir = mkdtempSync(join(tmpdir(), "pcx-tok-"));
    const path = join(dir, "api-token");
    writeFileSync(path, "operator-chosen-token-1234\n");
    chmodSync(path, 0o644);
    expect(readApiToken(dir, false)).toEqual({ token: "operator-chosen-token-1234", created: false });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    writeFileSync(path, "short\n");
    expect(() => readApiToken(dir, false)).toThrowError(/truncated.*token rotate/);
    const replaced = readApiToken(dir, true);
    expect(replaced.created).toBe(true);
    expect(replaced.token).toMatch(/^pct_.{40,}$/);
  });
});
