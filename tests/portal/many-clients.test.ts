import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { portalConfigSchema } from "../../agent-runtime/config/portal.js";
import { PROMPT, TestClient, eventually, signIn, startTestPortal, type TestPortal } from "./helpers.js";

/**
 * Issue 15: 20 phones and tabs at once work with the shipped config. The default
 * maxClients used to be 16, so the 17th tab got 503. Nothing here raises a limit.
 */
let p: TestPortal;
let cookie: string;
beforeAll(async () => {
  p = await startTestPortal();
  cookie = await signIn(p, p.token);
});
afterAll(async () => {
  await p?.close();
});

describe("20 clients on the default config", () => {
  it("the default maxClients leaves room for 20 tabs and more", () => {
    expect(portalConfigSchema.parse({}).maxClients).toBeGreaterThanOrEqual(32);
  });

  it("connects 20 tabs, and every one of them receives the output of a command typed in one", async () => {
    const tabs: TestClient[] = [];
    for (let i = 0; i < 20; i++) tabs.push(await TestClient.connect(p, { cookie }));
    await tabs[0]!.waitForText(PROMPT);
    tabs[7]!.type("echo twenty-$((4*5))\r");
    for (const t of tabs) await t.waitForText("twenty-20", 60_000);
    const status = await p.portal.status();
    expect(status.clients).toHaveLength(20);
    expect(status.terminals).toBe(20);
    expect((await p.tmuxClients()).length).toBe(20);
    // A 21st tab is welcome too.
    const extra = await TestClient.connect(p, { cookie });
    await extra.waitForText("twenty-20");
    for (const t of [...tabs, extra]) await t.close();
    await eventually(async () => (await p.portal.status()).terminals === 0, "every tmux client released", 60_000);
  }, 240_000);
});
