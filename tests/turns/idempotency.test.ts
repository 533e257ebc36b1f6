import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startFakeAnthropicApi } from "../support/fake-anthropic-api.js";
import { REPO, startTestRuntime } from "./helpers.js";
import { CLI, RuntimeProcess, freePort, until } from "./runtime-process.js";

describe("idempotent submissions", { timeout: 240_000 }, () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("the same Idempotency-Key gets the first result back; a different body with it is refused (422); a bad key is 400", async () => {
    const rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: false } } });
    cleanups.push(() => rt.close());
    const k1 = { "idempotency-key": "chat-create-0001" };
    const first = await rt.call("POST", "/v1/chats", { id: "idem-a" }, k1);
    expect(first.status).toBe(201);
    const again = await rt.call("POST", "/v1/chats", { id: "idem-a" }, k1);
    expect(again.status).toBe(201); // not 409 "already exists"
    expect(again.json).toMatchObject({ id: "idem-a", status: "ready" });
    expect((await rt.call("POST", "/v1/chats", { id: "idem-other" }, k1)).status).toBe(422);
    expect((await rt.call("POST", "/v1/chats", { id: "idem-a" })).status).toBe(409); // without a key: still a conflict

    const k2 = { "idempotency-key": "5b0e3c55-7d5e-4f33-9a61-1f0f4e8e0001" };
    const t1 = await rt.call("POST", "/v1/chats/idem-a/turns", { text: "only once" }, k2);
    expect(t1.status).toBe(202);
    const t1again = await rt.call("POST", "/v1/chats/idem-a/turns", { text: "only once" }, k2);
    expect(t1again.status).toBe(202);
    expect(t1again.json.id).toBe(t1.json.id);
    const reused = await rt.call("POST", "/v1/chats/idem-a/turns", { text: "something else" }, k2);
    expect(reused.status).toBe(422);
    expect(reused.json.error.code).toBe("idempotency_key_reused");
    for (const bad of ["short", "has space in it", "x".repeat(129)]) {
      expect((await rt.call("POST", "/v1/chats/idem-a/turns", { text: "x" }, { "idempotency-key": bad })).status).toBe(400);
    }
    await rt.waitTurn("idem-a", t1.json.id);
    const turns = (await rt.call("GET", "/v1/chats/idem-a/turns")).json.turns;
    expect(turns.map((t: any) => t.text)).toEqual(["only once"]);
    expect(rt.fake.messageRequests().filter((r) => r.lastUserText === "only once")).toHaveLength(1);
  });

  it("a resend after kill -9 (stored, never answered) gets the stored turn, which runs once; `chat send` follows its turn across the restart", async () => {
    const fake = await startFakeAnthropicApi();
    cleanups.push(() => fake.close());
    const dir = mkdtempSync(join(tmpdir(), "pc-idem-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const rt = new RuntimeProcess(dir, fake, await freePort());
    await rt.start();
    cleanups.push(() => rt.kill9());
    expect((await rt.call("POST", "/v1/chats", { id: "idem-b" })).status).toBe(201);

    // 1. The API: the first POST is stored, then the runtime dies before anything else.
    const key = { "idempotency-key": "resend-after-crash-1" };
    fake.enqueue({ hang: true });
    const first = await rt.call("POST", "/v1/chats/idem-b/turns", { text: "resent" }, key);
    await until("the request upstream", () => (fake.messageRequests().length === 1 ? true : undefined));
    await rt.kill9();
    await rt.start();
    const resent = await rt.call("POST", "/v1/chats/idem-b/turns", { text: "resent" }, key);
    expect(resent.replayed).toBe("true");
    expect(resent.json.id).toBe(first.json.id);
    await until("the turn", async () => ((await rt.call("GET", `/v1/chats/idem-b/turns/${first.json.id}`)).json.status === "done" ? true : undefined));
    expect((await rt.call("GET", "/v1/chats/idem-b/turns")).json.turns.map((t: any) => t.text)).toEqual(["resent"]);

    // 2. The CLI: its runtime is killed mid-turn and comes back; it prints the final reply and exits 0.
    let release!: () => void;
    fake.enqueue({ gate: new Promise<void>((r) => (release = r)) });
    const before = fake.messageRequests().length;
    const cli = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ["--import", "tsx", CLI, "chat", "send", "idem-b", "across a restart", "--url", rt.url, "--data-dir", rt.dataDir],
        { cwd: REPO, env: { ...process.env, PICORTEX_API_TOKEN: "" }, timeout: 180_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    await until("the CLI's turn upstream", () => (fake.messageRequests().length > before ? true : undefined));
    await rt.kill9();
    release(); // the old upstream answer goes nowhere: the runtime that asked is gone
    await rt.start();
    const r = await cli;
    expect(r.stderr).toMatch(/connection to the runtime broke; following the turn/);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("across a restart");
    const turns = (await rt.call("GET", "/v1/chats/idem-b/turns")).json.turns;
    expect(turns.map((t: any) => [t.text, t.status])).toEqual([
      ["resent", "done"],
      ["across a restart", "done"],
    ]);
    // The CLI sent a key (a resend would have been safe).
    const db = (await import("../../agent-runtime/store/database.js")).openDatabase(join(rt.dataDir, "runtime.sqlite"));
    expect((db.prepare("SELECT count(*) AS n FROM turn_idempotency WHERE scope = 'turn:idem-b'").get() as { n: number }).n).toBe(2);
    db.close();
  });
});
