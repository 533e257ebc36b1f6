import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "../../agent-runtime/log.js";
import { openDatabase } from "../../agent-runtime/store/database.js";
import type { ChatHost, ProvisionEvent } from "../../agent-runtime/turns/host/chat-host.js";
import { MAX_PROVISION_ATTEMPTS, Provisioner } from "../../agent-runtime/turns/engine/provisioner.js";
import { TurnStore } from "../../agent-runtime/turns/store.js";
import { startFakeAnthropicApi } from "../support/fake-anthropic-api.js";
import { CLAUDE } from "./helpers.js";
import { spawnRuntimeProcess, until } from "./runtime-process.js";



describe("provisioning survives a crash", { timeout: 240_000 }, () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("kill -9 while a chat is being created: the next start resumes it to ready, and it takes turns", async () => {
    const fake = await startFakeAnthropicApi();
    cleanups.push(() => fake.close());
    const dir = mkdtempSync(join(tmpdir(), "pc-prov-crash-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const dataDir = join(dir, "data");
    // A claude that hangs in provisioning's `--version` check once (so the crash lands
    // mid-provisioning, after the chat's home exists), then is the real CLI.
    const wrapper = join(dir, "claude");
    writeFileSync(
      wrapper,
      `#!/bin/sh\nif [ "$1" = "--version" ] && [ -e ${dir}/hang-once ]; then rm -f ${dir}/hang-once; echo $$ > ${dir}/hung; exec sleep 600; fi\nexec ${CLAUDE} "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
    writeFileSync(join(dir, "hang-once"), "");
    writeFileSync(join(dir, "key"), "sk-ant-test-prov\n", { mode: 0o600 });
    const configFile = join(dir, "runtime.json");
    writeFileSync(
      configFile,
      JSON.stringify({
        mode: "local",
        dataDir,
        server: { hosts: ["127.0.0.1"], port: 0 },
        portal: { enabled: false },
        brain: { enabled: false },
        turns: { claudePath: wrapper, upstreamBaseUrl: fake.url, apiKeyFile: join(dir, "key"), killGraceSeconds: 1, warm: { enabled: false } },
      }),
    );
    let rt = await spawnRuntimeProcess(configFile);
    cleanups.push(() => void rt.child.kill("SIGKILL"));
    const token = readFileSync(join(dataDir, "api-token"), "utf8").trim();
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(rt.url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, json: (await res.json().catch(() => undefined)) as any };
    };
    const creating = call("POST", "/v1/chats", { id: "prov-a" }).catch((err: Error) => err);
    await until("provisioning to hang", () => (existsSync(join(dir, "hung")) ? true : undefined));
    const hungPid = Number(readFileSync(join(dir, "hung"), "utf8").trim());
    expect((await call("GET", "/v1/chats/prov-a")).json.status).toBe("provisioning");

    rt.child.kill("SIGKILL");
    await new Promise((r) => rt.child.once("exit", r));
    process.kill(hungPid, "SIGKILL");
    expect(await creating).toBeInstanceOf(Error); // the client saw the connection drop
    const db = openDatabase(join(dataDir, "runtime.sqlite"));
    expect((db.prepare("SELECT status, provision_attempts FROM turn_chats WHERE id = 'prov-a'").get() as any)).toEqual({ status: "provisioning", provision_attempts: 1 });
    db.close();

    rt = await spawnRuntimeProcess(configFile);
    const chat = await until("the chat to leave provisioning", async () => {
      const c = (await call("GET", "/v1/chats/prov-a")).json;
      return c.status === "provisioning" ? undefined : c;
    });
    expect(chat.status).toBe("ready");
    const steps = (chat.provisioning as ProvisionEvent[]).map((e) => e.step);
    expect(steps).toContain("resume");
    expect(steps.at(-1)).toBe("complete");
    const sent = await call("POST", "/v1/chats/prov-a/turns", { text: "hello after resume" });
    expect(sent.status).toBe(202);
    const turn = await until("the turn", async () => {
      const t = (await call("GET", `/v1/chats/prov-a/turns/${sent.json.id}`)).json;
      return ["done", "failed"].includes(t.status) ? t : undefined;
    });
    expect(turn.status).toBe("done");
    expect(turn.reply).toContain("hello after resume");
    // A second create of the same id is still a clear conflict, not a second chat.
    expect((await call("POST", "/v1/chats", { id: "prov-a" })).status).toBe(409);
  });

  it("a chat whose provisioning keeps being interrupted is marked failed with what to do, never left provisioning", async () => {
    const store = new TurnStore(openDatabase(":memory:"));
    store.createChat("prov-b", "h0", null);
    for (let i = 0; i < MAX_PROVISION_ATTEMPTS; i++) store.beginProvisionAttempt("prov-b", `h${i + 1}`);
    const removed: string[] = [];
    const host = { mode: "local", provision: async () => {}, remove: async (id: string) => void removed.push(id) } as unknown as ChatHost;
    const p = new Provisioner(store, host, () => "http://127.0.0.1:1/gw", () => {}, createLogger("t", () => {}), 2);
    const [final] = await p.resumeAll();
    expect(final!.status).toBe("failed");
    expect(final!.error).toMatch(/interrupted 3 times.*picortex chat delete prov-b/);
    expect(store.provisioningChats()).toEqual([]);
  });
});

describe("provisioning concurrency is bounded", () => {
  it("runs at most maxParallelProvision at once; the rest wait in order with a queued progress event", async () => {
    const store = new TurnStore(openDatabase(":memory:"));
    let running = 0;
    let peak = 0;
    const gates: Array<() => void> = [];
    const host = {
      mode: "local",
      provision: async (_id: string, _f: unknown, progress: (e: ProvisionEvent) => void) => {
        running++;
        peak = Math.max(peak, running);
        progress({ step: "create_user", progress: 0.1, message: "x" });
        await new Promise<void>((r) => gates.push(r));
        running--;
      },
      remove: async () => {},
    } as unknown as ChatHost;
    const p = new Provisioner(store, host, () => "http://127.0.0.1:1/gw", () => {}, createLogger("t", () => {}), 2);
    const events = new Map<string, ProvisionEvent[]>();
    const ids = ["q-a", "q-b", "q-c", "q-d", "q-e"];
    const done = ids.map((id) => {
      store.createChat(id, `h-${id}`, null);
      events.set(id, []);
      return p.provision(id, (e) => events.get(id)!.push(e));
    });
    await until("two to start", () => (gates.length === 2 ? true : undefined), 10_000);
    expect(p.load).toEqual({ active: 2, queued: 3 });
    expect(events.get("q-c")![0]).toMatchObject({ step: "queued", message: expect.stringMatching(/1 in line, 2 at a time/) });
    expect(events.get("q-e")![0]).toMatchObject({ step: "queued", message: expect.stringMatching(/3 in line/) });
    while (gates.length > 0 || running > 0) {
      gates.shift()?.();
      await new Promise((r) => setTimeout(r, 5));
    }
    const finals = await Promise.all(done);
    expect(finals.map((c) => c.status)).toEqual(["ready", "ready", "ready", "ready", "ready"]);
    expect(peak).toBe(2);
    expect(p.load).toEqual({ active: 0, queued: 0 });
  });
});
