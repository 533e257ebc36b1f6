import { describe, it, expect, afterAll } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ChatStacks, UpdateQueue, acquireStackLock, type ChatStackBackend, type ChatStackHandle, type ConfigValue, type UpdateResult } from "../../scripts/lib/chat-stacks.js";
import { runChatCli } from "../../scripts/lib/chat-cli.js";
import { automationBackend, PulumiCliMissingError } from "../../scripts/lib/automation-backend.js";

const repoRoot = resolve(import.meta.dirname, "../..");
const work = mkdtempSync(join(tmpdir(), "picortex-chat-cli-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let lockSeq = 0;
const freshLockDir = () => join(work, `locks-${lockSeq++}`);

/** An in-memory Pulumi: stacks with config, and updates that take a little while. */
class FakeBackend implements ChatStackBackend {
  stacks = new Map<string, { config: Record<string, ConfigValue>; resources: number; lastUpdate?: string }>();
  active = 0;
  maxActive = 0;
  log: string[] = [];
  failNext: UpdateResult["result"] | undefined;
  constructor(extra: string[] = []) {
    for (const n of extra) this.stacks.set(n, { config: {}, resources: 0 });
  }
  async listStacks() {
    return [...this.stacks.entries()].map(([name, s]) => ({ name, resourceCount: s.resources, lastUpdate: s.lastUpdate }));
  }
  private handle(name: string): ChatStackHandle {
    const run = async (kind: "up" | "destroy", onOutput: (l: string) => void): Promise<UpdateResult> => {
      this.active++;
      this.maxActive = Math.max(this.maxActive, this.active);
      this.log.push(`${kind} ${name} start`);
      onOutput(`Updating (${name}):\n`);
      await new Promise((r) => setTimeout(r, 30));
      this.log.push(`${kind} ${name} end`);
      this.active--;
      const result = this.failNext ?? "succeeded";
      this.failNext = undefined;
      if (result === "succeeded") {
        const s = this.stacks.get(name)!;
        s.resources = kind === "up" ? 3 : 0;
        s.lastUpdate = "2026-11-23T00:00:00Z";
      }
      return { result, resourceChanges: kind === "up" ? { create: 3 } : { delete: 3 }, outputs: kind === "up" ? { chatId: name.slice(5) } : undefined };
    };
    return {
      name,
      setConfig: async (c) => {
        this.stacks.get(name)!.config = c;
      },
      up: (o) => run("up", o),
      destroy: (o) => run("destroy", o),
    };
  }
  async createOrSelectStack(name: string) {
    if (!this.stacks.has(name)) this.stacks.set(name, { config: {}, resources: 0 });
    return this.handle(name);
  }
  async selectStack(name: string) {
    return this.stacks.has(name) ? this.handle(name) : undefined;
  }
  async removeStack(name: string) {
    this.stacks.delete(name);
  }
}

async function cli(backend: FakeBackend, args: string[], lockDir = freshLockDir()) {
  let stdout = "";
  let stderr = "";
  const code = await runChatCli(args, { backend: async () => backend, lockDir, stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

describe("scripts/chat.ts create", () => {
  it("creates the chat-<id> stack with the program's config and runs up, with progress and JSON", async () => {
    const b = new FakeBackend();
    const r = await cli(b, ["create", "team-alpha", "--workspace-stack", "prod", "--budget", "5000", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      id: "team-alpha",
      stack: "chat-team-alpha",
      action: "created",
      result: "succeeded",
      resourceChanges: { create: 3 },
      outputs: { chatId: "team-alpha" },
    });
    expect(b.stacks.get("chat-team-alpha")!.config).toEqual({
      "picortex-chat:chatId": { value: "team-alpha" },
      "picortex-chat:workspaceStack": { value: "prod" },
      "picortex-chat:budgetTokens": { value: "5000" },
    });
    expect(r.stderr).toContain("chat: creating stack chat-team-alpha");
    expect(r.stderr).toContain("chat: pulumi up chat-team-alpha (workspace prod)");
    expect(r.stderr).toContain("chat: Updating (chat-team-alpha):");
    const again = await cli(b, ["create", "team-alpha", "--workspace-stack", "prod", "--json"]);
    expect(JSON.parse(again.stdout).action).toBe("updated");
  });

  it("rejects bad input before touching any stack", async () => {
    const b = new FakeBackend();
    const bad = await cli(b, ["create", "Team_Alpha", "--workspace-stack", "prod"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("Invalid chat id");
    expect((await cli(b, ["create", "ok-id"])).code).toBe(2);
    expect((await cli(b, ["create", "ok-id", "--workspace-stack", "a/b"])).stderr).toContain("fully qualified");
    expect((await cli(b, ["create", "ok-id", "--workspace-stack", "prod", "--budget", "-1"])).code).toBe(2);
    expect((await cli(b, ["create", "ok-id", "--workspace-stack", "prod", "--on-delete", "keep"])).code).toBe(2);
    expect((await cli(b, ["frobnicate"])).code).toBe(2);
    expect((await cli(b, ["create", "ok-id", "--nope"])).code).toBe(2);
    for (const url of ["javascript:alert(1)", "http://user:pw@host:7420", "http://h:7420/x?y", "ftp://h", "http://h 1", "http://h\\evil:7420", "http://h:7420#x", "HTTP://h:7420/.."]) {
      const r = await cli(b, ["create", "ok-id", "--workspace-stack", "prod", "--runtime-url", url]);
      expect(r.code, url).toBe(1);
      expect(r.stderr).toContain("--runtime-url must be an http(s) URL");
    }
    expect(b.stacks.size).toBe(0);
  });

  it("--runtime-url sets the chat stack's runtimeUrl override", async () => {
    const b = new FakeBackend();
    const r = await cli(b, ["create", "team-alpha", "--workspace-stack", "prod", "--runtime-url", "http://127.0.0.1:17420", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(b.stacks.get("chat-team-alpha")!.config["picortex-chat:runtimeUrl"]).toEqual({ value: "http://127.0.0.1:17420" });
  });

  it("reports a failed update with exit 1 and a JSON error", async () => {
    const b = new FakeBackend();
    b.failNext = "failed";
    const r = await cli(b, ["create", "gamma", "--workspace-stack", "prod", "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error.message).toContain("pulumi up of chat-gamma failed");
  });
});

describe("at most one update per stack at a time", () => {
  it("serializes concurrent updates in one process (same and different stacks)", async () => {
    const b = new FakeBackend();
    const chats = new ChatStacks(b, { progress: () => {} }, { lockDir: freshLockDir() });
    await Promise.all([
      chats.create("one", { workspaceStack: "prod" }),
      chats.create("one", { workspaceStack: "prod" }),
      chats.create("two", { workspaceStack: "prod" }),
      chats.destroy("one").catch(() => undefined),
    ]);
    expect(b.maxActive).toBe(1);
    // Every start is immediately followed by its own end.
    for (let i = 0; i < b.log.length; i += 2) expect(b.log[i + 1]).toBe(b.log[i]!.replace("start", "end"));
  });

  it("a per-key queue allows different stacks in parallel but never the same one twice", async () => {
    const q = new UpdateQueue(false);
    const running = new Map<string, number>();
    let maxSame = 0;
    let maxAll = 0;
    let all = 0;
    const job = (k: string) =>
      q.run(k, async () => {
        running.set(k, (running.get(k) ?? 0) + 1);
        all++;
        maxSame = Math.max(maxSame, running.get(k)!);
        maxAll = Math.max(maxAll, all);
        await new Promise((r) => setTimeout(r, 20));
        running.set(k, running.get(k)! - 1);
        all--;
      });
    await Promise.all([job("a"), job("a"), job("b"), job("a"), job("b")]);
    expect(maxSame).toBe(1);
    expect(maxAll).toBe(2);
  });

  it("refuses a stack another live process is updating, and takes over the lock of one killed with -9", async () => {
    const lockDir = freshLockDir();
    mkdirSync(lockDir, { recursive: true });
    const holder = spawn("sleep", ["60"], { stdio: "ignore" });
    await new Promise((r) => holder.once("spawn", r));
    writeFileSync(join(lockDir, "chat-delta.lock"), String(holder.pid));
    const b = new FakeBackend();
    const blocked = await cli(b, ["create", "delta", "--workspace-stack", "prod"], lockDir);
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toContain(`being updated by process ${holder.pid}`);
    expect(b.log).toEqual([]);
    holder.kill("SIGKILL");
    await new Promise((r) => holder.once("exit", r));
    const after = await cli(b, ["create", "delta", "--workspace-stack", "prod"], lockDir);
    expect(after.code).toBe(0);
    expect(existsSync(join(lockDir, "chat-delta.lock"))).toBe(false);
  });

  it("releases the lock even when the update throws", async () => {
    const lockDir = freshLockDir();
    const b = new FakeBackend();
    b.failNext = "failed";
    await cli(b, ["create", "eps", "--workspace-stack", "prod"], lockDir);
    const release = acquireStackLock(lockDir, "chat-eps");
    release();
    expect(() => acquireStackLock(lockDir, "chat-eps")()).not.toThrow();
  });
});

describe("scripts/chat.ts destroy and list", () => {
  it("destroys then removes the stack; --keep-stack keeps it; unknown chat is an error", async () => {
    const b = new FakeBackend();
    await cli(b, ["create", "alpha", "--workspace-stack", "prod"]);
    await cli(b, ["create", "beta", "--workspace-stack", "prod"]);
    const d = await cli(b, ["destroy", "alpha", "--json"]);
    expect(d.code).toBe(0);
    expect(JSON.parse(d.stdout)).toMatchObject({ id: "alpha", action: "destroyed", result: "succeeded" });
    expect(b.stacks.has("chat-alpha")).toBe(false);
    expect((await cli(b, ["destroy", "beta", "--keep-stack"])).code).toBe(0);
    expect(b.stacks.get("chat-beta")!.resources).toBe(0);
    const missing = await cli(b, ["destroy", "nobody"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("there is no stack chat-nobody");
  });

  it("destroy --all removes every chat stack one by one and leaves other stacks alone", async () => {
    const b = new FakeBackend(["prod"]);
    for (const id of ["c-one", "c-two", "c-three"]) await cli(b, ["create", id, "--workspace-stack", "prod"]);
    const r = await cli(b, ["destroy", "--all", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).destroyed.map((d: { id: string }) => d.id)).toEqual(["c-one", "c-three", "c-two"]);
    expect([...b.stacks.keys()]).toEqual(["prod"]);
    expect((await cli(b, ["destroy", "x1", "--all"])).code).toBe(2);
  });

  it("destroy --all stops at the first failure (exit 1) so teardown never continues past a live chat", async () => {
    const b = new FakeBackend();
    for (const id of ["d-one", "d-two"]) await cli(b, ["create", id, "--workspace-stack", "prod"]);
    b.failNext = "failed";
    const r = await cli(b, ["destroy", "--all"]);
    expect(r.code).toBe(1);
    expect(b.stacks.has("chat-d-one")).toBe(true);
    expect(b.stacks.has("chat-d-two")).toBe(true);
  });

  it("keeps the stack when destroy fails so it can be retried", async () => {
    const b = new FakeBackend();
    await cli(b, ["create", "zeta", "--workspace-stack", "prod"]);
    b.failNext = "failed";
    const r = await cli(b, ["destroy", "zeta"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the stack is kept so you can retry");
    expect(b.stacks.has("chat-zeta")).toBe(true);
  });

  it("lists only chat stacks, sorted, also with qualified names", async () => {
    const b = new FakeBackend(["prod", "acme/picortex-chat/chat-zulu", "chat-alpha", "dev-chat-x"]);
    const r = await cli(b, ["list", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).chats.map((c: { id: string; stack: string }) => [c.id, c.stack])).toEqual([
      ["alpha", "chat-alpha"],
      ["zulu", "chat-zulu"],
    ]);
    expect((await cli(new FakeBackend(), ["list"])).stdout).toContain("no chats");
  });

  it("has --help", async () => {
    const r = await cli(new FakeBackend(), ["--help"]);
    expect(r.code).toBe(0);
    for (const word of ["create <id>", "destroy <id>", "list", "--json", "--workspace-stack"]) expect(r.stdout).toContain(word);
  });
});

describe("the real Automation API backend", () => {
  it("explains that the Pulumi CLI is needed when it is absent", async () => {
    const emptyRoot = join(work, "no-pulumi");
    mkdirSync(emptyRoot);
    await expect(automationBackend({ workDir: join(repoRoot, "stacks/chat"), pulumiRoot: emptyRoot })).rejects.toThrow(PulumiCliMissingError);
    await expect(automationBackend({ workDir: join(repoRoot, "stacks/chat"), pulumiRoot: emptyRoot })).rejects.toThrow(/pulumi.com\/docs\/install/);
  });

  it("the script entry prints help without needing the CLI", () => {
    const r = spawnSync(join(repoRoot, "node_modules/.bin/tsx"), ["scripts/chat.ts", "--help"], { cwd: repoRoot, encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("Usage: tsx scripts/chat.ts");
  });
});


describe("failures read as one line of cause and the next step (issue 21 item 9)", () => {
  it("does not print the CLI's whole output with the inline program in it, even repeated", async () => {
    const { chatApiScript } = await import("../../components/chat-workspace.js");
    const script = chatApiScript("create");
    const cliOutput = [
      "Updating (chat-team-alpha):",
      " +  command:local:Command team-alpha-chat creating (0s) " + script,
      "picortex chat: cannot reach the runtime at http://picortex:7420 (ENOTFOUND): is this machine on the tailnet and the workspace stack up?",
      "error: exit status 1: running " + JSON.stringify(script),
      "Diagnostics:\n  command:local:Command (team-alpha-chat):\n    error: " + script,
      "error: update failed",
    ].join("\n");
    class Failing extends FakeBackend {
      override async createOrSelectStack(name: string): Promise<ChatStackHandle> {
        const h = await super.createOrSelectStack(name);
        return { ...h, up: async () => { throw new Error(cliOutput); } };
      }
    }
    const r = await cli(new Failing(), ["create", "team-alpha", "--workspace-stack", "prod"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot reach the runtime at http://picortex:7420");
    expect(r.stderr).toContain("next: is this machine on the tailnet");
    expect(r.stderr).not.toContain("const action");
    expect(r.stderr.length).toBeLessThan(600);
    const j = await cli(new Failing(), ["create", "team-alpha", "--workspace-stack", "prod", "--json"]);
    expect(JSON.parse(j.stdout).error.message).not.toContain("const action");
  });
});

describe("destroying a chat stack from a fresh checkout (issue 21 item 15)", () => {
  it("recovers the secrets provider settings destroy needs from the state in the backend", async () => {
    const { stackSettingsFromState } = await import("../../scripts/lib/automation-backend.js");
    const salt = "v1:ThS5UPPOkzU=:v1:Fm5oWbqGmW8pTMJj:2cxqo8JUtbTMbX1QU6X5p4zS1v7R0g==";
    expect(stackSettingsFromState({ deployment: { secrets_providers: { type: "passphrase", state: { salt } } } })).toEqual({ encryptionSalt: salt });
    expect(stackSettingsFromState({ deployment: { secrets_providers: { type: "service", state: {} } } })).toBeUndefined();
    expect(stackSettingsFromState({ deployment: { secrets_providers: { type: "cloud", state: { url: "awskms://alias/x" } } } })).toEqual({ secretsProvider: "awskms://alias/x" });
    expect(stackSettingsFromState({ deployment: {} })).toBeUndefined();
    expect(() => stackSettingsFromState({ deployment: { secrets_providers: { type: "passphrase", state: {} } } })).toThrow(/restore its Pulumi/);
  });
});
