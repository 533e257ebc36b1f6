import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { turnsConfigSchema } from "../../agent-runtime/config/turns.js";
import { startFakeAnthropicApi } from "../support/fake-anthropic-api.js";
import { REPO } from "./helpers.js";
import { RuntimeProcess, freePort, until } from "./runtime-process.js";

describe("SIGTERM is a clean stop, not a crash", { timeout: 240_000 }, () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("lets a running turn finish within the grace period; the turn is done once, on its first attempt", async () => {
    const fake = await startFakeAnthropicApi();
    cleanups.push(() => fake.close());
    const dir = mkdtempSync(join(tmpdir(), "pc-term-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const rt = new RuntimeProcess(dir, fake, await freePort(), { stopGraceSeconds: 120 });
    await rt.start();
    cleanups.push(() => rt.kill9());
    expect((await rt.call("POST", "/v1/chats", { id: "term-a" })).status).toBe(201);
    let release!: () => void;
    fake.enqueue({ gate: new Promise<void>((r) => (release = r)) });
    const t = (await rt.call("POST", "/v1/chats/term-a/turns", { text: "long one" })).json.id;
    await until("the turn upstream", () => (fake.messageRequests().length === 1 ? true : undefined));
    const exit = rt.terminate();
    await until("draining", () => (rt.stderr.includes("letting running turns finish") ? true : undefined));
    release();
    expect(await exit).toBe(0);
    await rt.start();
    const turn = (await rt.call("GET", `/v1/chats/term-a/turns/${t}`)).json;
    expect(turn).toMatchObject({ status: "done", attempts: 1, retried: false });
    expect(turn.reply).toContain("long one");
    expect(fake.messageRequests()).toHaveLength(1); // not sent upstream again by the restart
  });

  it("a turn that outlives the grace period runs again after the restart, as a retry the model is told about, without using up an attempt", async () => {
    const fake = await startFakeAnthropicApi();
    cleanups.push(() => fake.close());
    const dir = mkdtempSync(join(tmpdir(), "pc-term-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const rt = new RuntimeProcess(dir, fake, await freePort(), { stopGraceSeconds: 1 });
    await rt.start();
    cleanups.push(() => rt.kill9());
    expect((await rt.call("POST", "/v1/chats", { id: "term-b" })).status).toBe(201);
    // Two deploys during one turn that never finishes in time: still not `interrupted`.
    for (let deploy = 1; deploy <= 2; deploy++) {
      fake.enqueue({ hang: true });
      if (deploy === 1) expect((await rt.call("POST", "/v1/chats/term-b/turns", { text: "deployed twice" })).status).toBe(202);
      await until("the turn upstream", () => (fake.messageRequests().length === deploy ? true : undefined));
      expect(await rt.terminate()).toBe(0);
      await rt.start();
    }
    const turns = await until("the turn to finish", async () => {
      const all = (await rt.call("GET", "/v1/chats/term-b/turns")).json.turns;
      return all.every((x: any) => ["done", "failed", "interrupted"].includes(x.status)) ? all : undefined;
    });
    expect(turns).toHaveLength(1);
    expect(turns[0]).toMatchObject({ status: "done", retried: true, attempts: 1 });
    const last = fake.messageRequests().at(-1)!;
    const retryText = last.userTexts!.find((x) => x.endsWith("deployed twice"))!;
    expect(retryText).toMatch(/^\[picortex: the runtime restarted while you were answering .* may already have acted on it in part/s);
  });

  it("the default grace period fits the unit's TimeoutStopSec with room to stop processes and close", () => {
    const unit = readFileSync(join(REPO, "templates/render-units.ts"), "utf8");
    const timeoutStop = Number(/\["TimeoutStopSec", "(\d+)s"\]/.exec(unit)![1]);
    const d = turnsConfigSchema.parse({});
    expect(d.stopGraceSeconds + d.killGraceSeconds + 5).toBeLessThanOrEqual(timeoutStop);
  });
});
