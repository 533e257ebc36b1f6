import { execFile } from "node:child_process";
import { chmodSync, writeFileSync, statSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBrainRuntime, tempDir } from "./helpers.js";

// Spawns the real CLI (bin/picortex.mjs through tsx) and checks the JSON shapes agents rely on.
const BIN = resolve("agent-runtime/bin/picortex.mjs");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function cli(args: string[], env: Record<string, string>, cwd?: string): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      done({ code: typeof code === "number" ? code : 1, stdout, stderr, json });
    });
  });
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const entryShape = {
  id: expect.any(String),
  workspaceId: expect.any(String),
  projectId: expect.any(String),
  agent: expect.any(String),
  kind: expect.stringMatching(/^(experiment|decision|insight|note)$/),
  title: expect.any(String),
  summary: expect.any(String),
  conclusion: expect.any(String),
  tags: expect.any(Array),
  refs: expect.any(Array),
  confidence: expect.toBeOneOf([null, expect.any(Number)]),
  status: expect.stringMatching(/^(active|superseded|deleted)$/),
  supersededBy: expect.toBeOneOf([null, expect.any(String)]),
  createdAt: expect.stringMatching(ISO),
  updatedAt: expect.stringMatching(ISO),
  version: expect.stringMatching(/^\d{15}-\d{6}-[0-9a-f]+$/),
};

async function freePortThatIsClosed(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

// Each test spawns the CLI 5-20 times (~0.6 s each, more on a loaded machine): a generous budget, not a speed claim.
describe("picortex brain CLI", { timeout: 240_000 }, () => {
  const tmp = tempDir("picortex-brain-cli-");
  const env = (name: string, extra: Record<string, string> = {}) => ({
    HOME: tmp.dir,
    PICORTEX_BRAIN_DB: join(tmp.dir, `${name}.sqlite`),
    PICORTEX_WORKSPACE_ID: "acme",
    PICORTEX_PROJECT_ID: "github.com/acme/api",
    PICORTEX_AGENT: "codex",
    ...extra,
  });
  afterAll(() => tmp.cleanup());

  it("record, recall, list, show, supersede, delete and status print stable JSON", async () => {
    const e = env("shapes");
    const rec = await cli(
      ["brain", "record", "--title", "Retry with jitter cut 5xx", "--summary", "Added exponential backoff", "--conclusion", "p99 errors dropped 60%; adopt as default", "--kind", "experiment", "--tags", "sync,reliability", "--refs", "STA-412,abc1234", "--confidence", "0.8", "--json"],
      e,
    );
    expect(rec.code, rec.stderr).toBe(0);
    expect(rec.json).toEqual({ entry: entryShape });
    expect(rec.json.entry).toMatchObject({ workspaceId: "acme", projectId: "github.com/acme/api", agent: "codex", tags: ["sync", "reliability"], refs: ["STA-412", "abc1234"], confidence: 0.8 });
    const id = rec.json.entry.id as string;

    const recall = await cli(["brain", "recall", "retries?", "--json"], e);
    expect(recall.code, recall.stderr).toBe(0);
    expect(recall.json).toEqual({ query: "retries?", matched: "all-terms", scope: { workspaceId: "acme", projectId: "github.com/acme/api" }, results: [{ ...entryShape, rank: expect.any(Number) }] });

    const people = await cli(["brain", "recall", "jitter"], e);
    // For people, the conclusion comes first.
    expect(people.stdout.split("\n").find((l) => l.startsWith("•"))).toBe("• p99 errors dropped 60%; adopt as default");

    const show = await cli(["brain", "show", id, "--json"], e);
    expect(show.json).toEqual({ entry: { ...entryShape, id } });
    const missing = await cli(["brain", "show", id.slice(0, -1), "--json"], e);
    expect(missing.code).toBe(2); // a name that does not exist is a usage error, as `chat show nope` (issue 16 item 10)
    expect(missing.json).toEqual({ error: { code: "not_found", message: expect.stringContaining("No brain entry") } });

    const sup = await cli(["brain", "supersede", id, "--title", "Retry with decorrelated jitter", "--conclusion", "better than full jitter", "--json"], e);
    expect(sup.code, sup.stderr).toBe(0);
    expect(sup.json).toEqual({ superseded: { ...entryShape, id, status: "superseded", supersededBy: sup.json.replacement.id }, replacement: entryShape });

    const list = await cli(["brain", "list", "--json"], e);
    expect(list.json).toEqual({ entries: [{ ...entryShape, id: sup.json.replacement.id }] });
    const listAll = await cli(["brain", "list", "--all", "--json"], e);
    expect(listAll.json.entries).toHaveLength(2);

    const del = await cli(["brain", "delete", sup.json.replacement.id, "--json"], e);
    expect(del.json).toEqual({ entry: { ...entryShape, status: "deleted", title: "" } });

    const status = await cli(["brain", "status", "--json"], e);
    expect(status.json).toEqual({
      dbPath: e.PICORTEX_BRAIN_DB,
      workspaceId: "acme",
      projectId: "github.com/acme/api",
      projectSource: "env",
      agent: "codex",
      nodeId: expect.stringMatching(/^[0-9a-f]{16}$/),
      serverUrl: null,
      entries: 1,
      pending: 2,
      cursor: 0,
      lastSyncAt: null,
      lastError: null,
    });
  });

  it("rejects bad input with exit 2 and a JSON error, and has --help", async () => {
    const e = env("bad");
    const noTitle = await cli(["brain", "record", "--json"], e);
    expect(noTitle.code).toBe(2);
    expect(noTitle.json.error.code).toBe("invalid_input");
    const badLimit = await cli(["brain", "recall", "x", "--limit", "zero", "--json"], e);
    expect(badLimit.code).toBe(2);
    const help = await cli(["brain", "--help"], e);
    expect(help.stdout).toMatch(/record[\s\S]*recall[\s\S]*list[\s\S]*show[\s\S]*supersede[\s\S]*sync[\s\S]*status[\s\S]*mcp/);
    const recallHelp = await cli(["brain", "recall", "--help"], e);
    expect(recallHelp.stdout).toMatch(/--org[\s\S]*--json/);
  });

  it("derives the project id from the git remote, so every clone shares it", async () => {
    const repo = tempDir("picortex-brain-repo-");
    try {
      const { mkdirSync } = await import("node:fs");
      mkdirSync(join(repo.dir, ".git"));
      writeFileSync(join(repo.dir, ".git", "config"), '[core]\n\tbare = false\n[remote "origin"]\n\turl = git@github.com:Acme/API.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n');
      mkdirSync(join(repo.dir, "src"));
      const { PICORTEX_PROJECT_ID: _drop, ...noProject } = env("git");
      const status = await cli(["brain", "status", "--json"], noProject, join(repo.dir, "src"));
      expect(status.json).toMatchObject({ projectId: "github.com/acme/api", projectSource: "git-remote" });
    } finally {
      repo.cleanup();
    }
  });

  describe("sync", () => {
    let rt: Awaited<ReturnType<typeof startBrainRuntime>>;
    beforeAll(async () => {
      rt = await startBrainRuntime();
    });
    afterAll(async () => rt?.stop());

    it("with the server down: record/recall work, sync exits 1 with the error, local state intact", async () => {
      const port = await freePortThatIsClosed();
      const e = env("offline", { PICORTEX_BRAIN_URL: `http://127.0.0.1:${port}`, PICORTEX_BRAIN_TOKEN: "pcb_whatever-token-value" });
      expect((await cli(["brain", "record", "--title", "offline insight", "--kind", "insight", "--json"], e)).code).toBe(0);
      const before = readFileSync(e.PICORTEX_BRAIN_DB).length;
      const sync = await cli(["brain", "sync", "--retries", "3", "--json"], e);
      expect(sync.code).toBe(1);
      expect(sync.json).toEqual({ ok: false, direction: "both", error: { kind: "unreachable", message: expect.stringContaining("unreachable") }, pending: 1 });
      // It retried with backoff before giving up (progress goes to stderr).
      expect(sync.stderr.match(/retrying in \d+ ms/g)).toHaveLength(2);
      expect(sync.stderr).not.toContain("pcb_whatever");
      const recall = await cli(["brain", "recall", "offline", "--json"], e);
      expect(recall.json.results).toHaveLength(1);
      const status = await cli(["brain", "status", "--json"], e);
      expect(status.json).toMatchObject({ pending: 1, lastSyncAt: null, lastError: expect.stringContaining("unreachable") });
      expect(readFileSync(e.PICORTEX_BRAIN_DB).length).toBeGreaterThanOrEqual(before);
      const human = await cli(["brain", "sync"], e);
      expect(human.code).toBe(1);
      expect(human.stderr).toMatch(/sync failed: .*unreachable[\s\S]*1 entries stay pending/);
    });

    it("two machines share entries through the runtime; a token file must be 0600", async () => {
      const tokenFile = join(tmp.dir, "brain-token");
      const created = await cli(["brain", "token", "create", "--workspace", "acme", "--label", "ci", "--data-dir", rt.dataDir, "--out", tokenFile, "--json"], { HOME: tmp.dir });
      expect(created.code, created.stderr).toBe(0);
      expect(created.json).toEqual({ tokenId: expect.any(String), workspaceId: "acme", tokenFile });
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
      const listed = await cli(["brain", "token", "list", "--data-dir", rt.dataDir, "--json"], { HOME: tmp.dir });
      expect(listed.json.tokens).toEqual([expect.objectContaining({ tokenId: created.json.tokenId, workspaceId: "acme", label: "ci", revokedAt: null })]);
      expect(JSON.stringify(listed.json)).not.toContain(readFileSync(tokenFile, "utf8").trim());

      const a = env("machine-a", { PICORTEX_BRAIN_URL: rt.url, PICORTEX_BRAIN_TOKEN_FILE: tokenFile });
      const b = env("machine-b", { PICORTEX_BRAIN_URL: rt.url, PICORTEX_BRAIN_TOKEN_FILE: tokenFile, PICORTEX_PROJECT_ID: "github.com/acme/web" });
      const rec = await cli(["brain", "record", "--title", "Zod for request validation", "--conclusion", "standardize on zod", "--kind", "decision", "--json"], a);
      const pushA = await cli(["brain", "sync", "--push", "--json"], a);
      expect(pushA.json).toEqual({ ok: true, direction: "push", pushed: 1, pushIgnored: 0, pulled: 0, pullSkipped: 0, cursor: 0, pending: 0, repaired: 0, restamped: 0, superseded: 0 });
      const syncB = await cli(["brain", "sync", "--json"], b);
      expect(syncB.json).toMatchObject({ ok: true, direction: "both", pushed: 0, pulled: 1, pending: 0 });
      // Scope is kept as written: on B (another repo) it shows up only with --org.
      expect((await cli(["brain", "recall", "zod", "--json"], b)).json.results).toEqual([]);
      const org = await cli(["brain", "recall", "zod", "--org", "--json"], b);
      expect(org.json.results.map((r: { id: string; projectId: string }) => [r.id, r.projectId])).toEqual([[rec.json.entry.id, "github.com/acme/api"]]);
      // B supersedes it; A pulls the supersede.
      await cli(["brain", "supersede", rec.json.entry.id, "--title", "Zod v4 everywhere", "--json"], b);
      expect((await cli(["brain", "sync", "--json"], b)).json).toMatchObject({ ok: true, pushed: 2 });
      const syncA = await cli(["brain", "sync", "--pull", "--json"], a);
      expect(syncA.json).toMatchObject({ ok: true, pulled: 2, pending: 0 });
      const shown = await cli(["brain", "show", rec.json.entry.id, "--json"], a);
      expect(shown.json.entry).toMatchObject({ status: "superseded", supersededBy: expect.any(String) });
      // Pulled rows are not echoed back.
      expect((await cli(["brain", "sync", "--push", "--json"], a)).json).toMatchObject({ pushed: 0, pushIgnored: 0 });
      const status = await cli(["brain", "status", "--json"], a);
      expect(status.json).toMatchObject({ pending: 0, lastError: null, lastSyncAt: expect.any(Number), cursor: 3 });

      chmodSync(tokenFile, 0o644);
      const loose = await cli(["brain", "sync", "--json"], a);
      expect(loose.code).toBe(2);
      expect(loose.json.error).toEqual({ code: "config", message: expect.stringMatching(/readable by others.*chmod 600/) });
    });

    it("a wrong token fails without retrying and says so", async () => {
      const e = env("badtoken", { PICORTEX_BRAIN_URL: rt.url, PICORTEX_BRAIN_TOKEN: "pcb_definitely-not-issued" });
      await cli(["brain", "record", "--title", "x"], e);
      const sync = await cli(["brain", "sync", "--json"], e);
      expect(sync.code).toBe(1);
      expect(sync.json.error.kind).toBe("unauthorized");
      expect(sync.json.error.message).toContain("brain token create"); // what a CLI user does, not an HTTP recipe
      expect(sync.stderr).not.toMatch(/retrying/);
    });
  });
});
