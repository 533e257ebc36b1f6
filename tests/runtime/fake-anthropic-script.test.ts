/**
 * Review item 6: "try it without a key". `npm run fake-anthropic` serves the fake Messages
 * API and prints the two variables to export; a request to that URL gets a reply.
 */
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const REPO = resolve(import.meta.dirname, "../..");

describe("npm run fake-anthropic", () => {
  it("prints ANTHROPIC_BASE_URL to export and answers /v1/messages there", async () => {
    const pkg = (await import(join(REPO, "package.json"), { with: { type: "json" } })).default as { scripts: Record<string, string> };
    expect(pkg.scripts["fake-anthropic"]).toBe("tsx scripts/fake-anthropic.ts");
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "scripts/fake-anthropic.ts"), "--port", "0"], { cwd: REPO, stdio: ["ignore", "pipe", "inherit"] });
    try {
      let stdout = "";
      const url = await new Promise<string>((done, fail) => {
        child.stdout!.on("data", (c) => {
          stdout += c;
          const m = /export ANTHROPIC_BASE_URL=(\S+) ANTHROPIC_API_KEY=sk-ant-fake/.exec(stdout);
          if (m) done(m[1]!);
        });
        child.on("exit", (code) => fail(new Error(`exited ${code}: ${stdout}`)));
      });
      const res = await fetch(`${url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": "sk-ant-fake", "anthropic-version": "2023-06-01" },
        body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 64, stream: true, messages: [{ role: "user", content: "hello fake" }] }),
      });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("message_stop");
    } finally {
      child.kill("SIGTERM");
    }
  }, 60_000);

  it("refuses a bad --port with exit 2", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "scripts/fake-anthropic.ts"), "--port", "abc"], { cwd: REPO, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (c) => (stderr += c));
    const code = await new Promise<number | null>((done) => child.on("exit", done));
    expect(code).toBe(2);
    expect(stderr).toContain("--port must be 0-65535");
  }, 60_000);
});
