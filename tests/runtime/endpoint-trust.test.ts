/**
 * Where the CLI sends the operator's API token. A checked-out repository can carry a
 * `.picortex/endpoint.json`; with PICORTEX_API_TOKEN exported, `picortex chat …` or
 * `picortex bridges` run anywhere under it would find that record (pid 1 is always alive)
 * and send `Authorization: Bearer <token>` to the URL it names. Written as that attacker.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { endpointUrlOf, isLoopbackHttpUrl, resolveRuntimeClient } from "../../agent-runtime/cli/endpoint.js";

const work = mkdtempSync(join(tmpdir(), "pcx-endpoint-trust-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const TOKEN = "operator-secret-token";
let n = 0;

/** A "repository" with a planted record, and a subfolder the operator runs the CLI in. */
function plantedRepo(url: string, opts: { mode?: number; write?: (path: string, body: string) => void } = {}) {
  const repo = join(work, `repo-${n++}`);
  mkdirSync(join(repo, ".picortex"), { recursive: true });
  mkdirSync(join(repo, "src"));
  const path = join(repo, ".picortex", "endpoint.json");
  const body = JSON.stringify({ pid: 1, url, urls: [url], port: 443, mode: "local", modules: [], version: "x", startedAt: "" });
  (opts.write ?? ((p, b) => writeFileSync(p, b, { mode: 0o600 })))(path, body);
  if (opts.mode !== undefined) chmodSync(path, opts.mode);
  return { cwd: join(repo, "src"), path };
}

function refusal(cwd: string, env: NodeJS.ProcessEnv = { PICORTEX_API_TOKEN: TOKEN }) {
  try {
    const client = resolveRuntimeClient({}, env, cwd);
    return { client };
  } catch (err) {
    return { err: err as Error & { code?: string; category?: string } };
  }
}

describe("an endpoint record decides where the API token goes only if the runtime wrote it", () => {
  for (const url of [
    "https://collector.attacker.example",
    "http://collector.attacker.example:7420",
    "http://127.0.0.1.attacker.example:7420",
    "http://127.0.0.1:7420@attacker.example",
    "http://localhost.attacker.example",
    "http://10.0.0.5:7420",
    "http://100.64.0.1:7420",
    "http://[::2]:7420",
    "http://[::ffff:203.0.113.9]:7420",
    "https://127.0.0.1:7420",
    "file:///etc/passwd",
    "not a url",
  ]) {
    it(`a planted record naming ${url} is refused, naming the file, before any token is read`, () => {
      const { cwd, path } = plantedRepo(url);
      const { client, err } = refusal(cwd);
      expect(client?.token).toBeUndefined();
      expect(err?.code).toBe("untrusted_endpoint");
      expect(err?.category).toBe("config");
      expect(err?.message).toContain(path);
      expect(err?.message).toContain("--url");
    });
  }

  it("the same with the token in the data dir's api-token file instead of the environment", () => {
    const { cwd, path } = plantedRepo("https://collector.attacker.example");
    writeFileSync(join(path, "..", "api-token"), "planted\n", { mode: 0o600 });
    expect(refusal(cwd, {}).err?.code).toBe("untrusted_endpoint");
  });

  it("a group- or world-writable record is refused even with a loopback URL", () => {
    for (const mode of [0o620, 0o602, 0o666]) {
      const { cwd, path } = plantedRepo("http://127.0.0.1:7420", { mode });
      const { err } = refusal(cwd);
      expect(err?.code, `mode ${mode.toString(8)}`).toBe("untrusted_endpoint");
      expect(err?.message).toContain(path);
      expect(err?.message).toMatch(/others can write it/);
    }
  });

  it("a record that is a symbolic link is refused", () => {
    const target = join(work, `elsewhere-${n++}.json`);
    writeFileSync(target, JSON.stringify({ pid: 1, url: "http://127.0.0.1:7420" }), { mode: 0o600 });
    const { cwd } = plantedRepo("", { write: (p) => symlinkSync(target, p) });
    expect(refusal(cwd).err?.message).toMatch(/symbolic link/);
  });

  it("a record that belongs to another user is refused", () => {
    const { cwd, path } = plantedRepo("http://127.0.0.1:7420");
    const uid = process.getuid!();
    if (uid === 0) chownSync(path, 65534, 65534); // root trusts root's own files: give it to nobody
    else vi.spyOn(process as { getuid(): number }, "getuid").mockReturnValue(uid + 4242); // as if another user wrote it
    const { err } = refusal(cwd);
    expect(err?.code).toBe("untrusted_endpoint");
    expect(err?.message).toMatch(/belongs to uid \d+, not to you/);
  });

  it("the runtime's own kind of record (0600, yours, loopback) is used", () => {
    for (const url of ["http://127.0.0.1:7420", "http://127.3.4.5:1", "http://[::1]:7420", "http://localhost:7420/"]) {
      const { cwd } = plantedRepo(url);
      const { client, err } = refusal(cwd);
      expect(err, url).toBeUndefined();
      expect(client).toMatchObject({ url: url.replace(/\/$/, ""), token: TOKEN, source: "endpoint" });
    }
  });

  it("--url and PICORTEX_URL may name a remote runtime: the operator chose it", () => {
    const { cwd } = plantedRepo("https://collector.attacker.example");
    expect(resolveRuntimeClient({ url: "https://runtime.tailnet.example" }, { PICORTEX_API_TOKEN: TOKEN }, cwd)).toMatchObject({ url: "https://runtime.tailnet.example", source: "flag" });
    expect(resolveRuntimeClient({}, { PICORTEX_API_TOKEN: TOKEN, PICORTEX_URL: "http://100.64.0.1:7420" }, cwd)).toMatchObject({ url: "http://100.64.0.1:7420", source: "env" });
  });
});

describe("the URL a runtime records", () => {
  it("is its first loopback URL, whatever order the hosts were configured in", () => {
    expect(endpointUrlOf(["http://100.64.0.1:7420", "http://127.0.0.1:7420"])).toBe("http://127.0.0.1:7420");
    expect(endpointUrlOf(["http://[::1]:7420"])).toBe("http://[::1]:7420");
    expect(endpointUrlOf(["http://100.64.0.1:7420"])).toBeUndefined();
  });
  it("loopback means 127.0.0.0/8, ::1 or localhost over plain http, however the address is spelled", () => {
    expect(isLoopbackHttpUrl("http://127.1:7420")).toBe(true);
    expect(isLoopbackHttpUrl("http://0x7f.0.0.1:7420")).toBe(true);
    expect(isLoopbackHttpUrl("http://LOCALHOST:7420")).toBe(true);
    expect(isLoopbackHttpUrl("http://128.0.0.1:7420")).toBe(false);
    expect(isLoopbackHttpUrl("http://user:pw@127.0.0.1:7420")).toBe(false);
  });
});
