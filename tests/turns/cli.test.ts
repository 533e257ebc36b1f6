import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, startTestRuntime, type TestRuntime } from "./helpers.js";

describe("picortex chat CLI against a running runtime (real claude)", { timeout: 240_000 }, () => {
  let rt: TestRuntime;
  // Async: the runtime under test lives in this process, so a sync spawn would deadlock it.
  const run = (argv: string[], input?: string) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "agent-runtime/cli/picortex.ts"), ...argv], { cwd: REPO, env: { PATH: process.env.PATH } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c) => (stdout += c));
      child.stderr.on("data", (c) => (stderr += c));
      child.on("close", (status) => resolve({ status, stdout, stderr }));
      child.stdin.end(input ?? "");
    });
  const cli = (args: string[], input?: string) => run(["chat", "--url", rt.url, "--data-dir", rt.dataDir, ...args], input);
  beforeAll(async () => {
    rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: false } } });
  });
  afterAll(async () => rt?.close());

  it("`picortex bridges` against a runtime without bridges says how to turn one on (exit 2)", async () => {
    const r = await run(["bridges", "--url", rt.url, "--data-dir", rt.dataDir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/No bridge is on in this runtime\. Turn one on with bridges\.telegram\.enabled/);
    const j = await run(["bridges", "--url", rt.url, "--data-dir", rt.dataDir, "--json"]);
    expect(j.status).toBe(2);
    expect(JSON.parse(j.stdout || j.stderr).error.code).toBe("no_bridges");
  });

  it("creates, sends (stdin and args), lists, shows and deletes; the token comes from the data dir", async () => {
    const help = (await cli(["--help"]));
    expect(help.stdout).toMatch(/create[\s\S]*send[\s\S]*delete/);
    const created = (await cli(["create", "cli-chat", "--json"]));
    expect(created.status, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout).status).toBe("ready");
    const sent = (await cli(["send", "cli-chat", "hello", "from", "cli"]));
    expect(sent.status, sent.stderr).toBe(0);
    expect(sent.stdout).toContain("hello from cli");
    const piped = (await cli(["send", "cli-chat", "-", "--json"], "$(touch /tmp/pwned) `id` ; rm -rf /"));
    expect(piped.status, piped.stderr).toBe(0);
    expect(JSON.parse(piped.stdout).reply).toContain("$(touch /tmp/pwned) `id` ; rm -rf /");
    const list = JSON.parse((await cli(["list", "--json"])).stdout);
    expect(list.chats.map((c: any) => c.id)).toEqual(["cli-chat"]);
    const shown = (await cli(["show", "cli-chat", "--json"]));
    expect(JSON.parse(shown.stdout).messages).toHaveLength(4);
    const bad = (await cli(["create", "Bad_Id", "--json"]));
    expect(bad.status).toBe(2);
    expect(JSON.parse(bad.stdout).error.code).toBe("bad_request");
    const del = (await cli(["delete", "cli-chat", "--purge", "--json"]));
    expect(del.status, del.stderr).toBe(0);
    expect(JSON.parse(del.stdout).purged).toBe(true);
    const noToken = await run(["chat", "--url", rt.url, "--data-dir", "/nonexistent", "list"]);
    expect(noToken.status).toBe(2);
    expect(noToken.stderr).toMatch(/No API token/);
  });
});
