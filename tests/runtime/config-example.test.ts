/**
 * Issue 16 item 9: the shipped example runtime config parses (the schema is strict, so a
 * renamed key breaks this test), and ANTHROPIC_BASE_URL in the shell that runs
 * `npm start` is honoured as the upstream, or refused with a message, never ignored.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadRuntimeConfig } from "../../agent-runtime/config/load.js";

const REPO = resolve(import.meta.dirname, "../..");
const EXAMPLE = join(REPO, "agent-runtime/runtime.example.json");

describe("agent-runtime/runtime.example.json", () => {
  it("parses with the runtime's own loader and states the defaults it shows", () => {
    const c = loadRuntimeConfig({ file: EXAMPLE, env: {}, cwd: "/tmp" });
    expect(c.mode).toBe("local");
    expect(c.server.port).toBe(7420);
    expect(c.turns.upstreamBaseUrl).toBe("https://api.anthropic.com");
    expect(c.dataDir).toBe("/tmp/.picortex");
    // Every key in the example is one the schema knows (strict schema: unknown keys throw).
    expect(JSON.parse(readFileSync(EXAMPLE, "utf8")).turns.upstreamBaseUrl).toBe(c.turns.upstreamBaseUrl);
  });
});

describe("ANTHROPIC_BASE_URL", () => {
  it("is the gateway's upstream when set in the environment", () => {
    const c = loadRuntimeConfig({ env: { ANTHROPIC_BASE_URL: "http://127.0.0.1:9999" }, cwd: "/tmp" });
    expect(c.turns.upstreamBaseUrl).toBe("http://127.0.0.1:9999");
  });

  it("is refused, with a message, when it is not an http(s) URL or contradicts the config file", () => {
    expect(() => loadRuntimeConfig({ env: { ANTHROPIC_BASE_URL: "localhost:8080" }, cwd: "/tmp" })).toThrow(/ANTHROPIC_BASE_URL must be an http\(s\) URL/);
    expect(() => loadRuntimeConfig({ file: EXAMPLE, env: { ANTHROPIC_BASE_URL: "http://127.0.0.1:9999" }, cwd: "/tmp" })).toThrow(ConfigError);
    expect(() => loadRuntimeConfig({ file: EXAMPLE, env: { ANTHROPIC_BASE_URL: "http://127.0.0.1:9999" }, cwd: "/tmp" })).toThrow(/disagree/);
    // The same URL in both places is fine.
    expect(loadRuntimeConfig({ file: EXAMPLE, env: { ANTHROPIC_BASE_URL: "https://api.anthropic.com/" }, cwd: "/tmp" }).turns.upstreamBaseUrl).toBe("https://api.anthropic.com");
  });
});
