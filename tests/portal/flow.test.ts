import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROMPT, TestClient, eventually, signIn, startTestPortal, type TestPortal } from "./helpers.js";

const HIGH = 16 * 1024;
let p: TestPortal;
let cookie: string;

beforeAll(async () => {
  p = await startTestPortal({ highWatermarkBytes: HIGH, lowWatermarkBytes: 4 * 1024 });
  cookie = await signIn(p, p.token);
});
afterAll(async () => {
  await p?.close();
});

const lastNonEmpty = (c: TestClient) => c.screen().split("\n").filter((l) => l.trim() !== "").pop() ?? "";

describe("portal flow control", () => {
  it("pauses only a stalled client's stream; the other keeps receiving, and the stalled one catches up", async () => {
    const stalled = await TestClient.connect(p, { cookie, ack: false, cols: 200, rows: 50 });
    const active = await TestClient.connect(p, { cookie, cols: 200, rows: 50 });
    await active.waitForText(PROMPT);
    // Enough output that the stalled client must cross its high watermark many times over.
    active.type("head -c 2000000 /dev/urandom | od -An -tx1 -w64; echo flood-done-$((6*7))\r");
    await active.waitForText("flood-done-42", 60_000);

    const stalledStats = (await p.portal.status()).clients.find((c) => c.id === stalled.ready!.client);
    expect(stalledStats?.pausedForAck).toBe(true);
    // Bounded: what the server sent the stalled client stops near the watermark (plus reads already in flight).
    expect(stalled.outputBytes).toBeLessThan(HIGH + 256 * 1024);
    expect(active.outputBytes).toBeGreaterThan(stalled.outputBytes * 2);

    // Once it acknowledges, it is resumed and tmux redraws it up to date.
    stalled.setAck(true);
    await stalled.waitForText("flood-done-42", 60_000);
    const after = (await p.portal.status()).clients.find((c) => c.id === stalled.ready!.client);
    expect(after?.pausedForAck ?? false).toBe(false);
    await stalled.close();
    await active.close();
  }, 180_000);

  it("stops `yes` on Ctrl-C: output stops and the prompt comes back", async () => {
    const c = await TestClient.connect(p, { cookie });
    await c.waitForText(PROMPT);
    c.type("yes portal-flood\r");
    await c.until(() => c.screen().split("\n").filter((l) => l === "portal-flood").length >= 10, "yes output filling the screen");
    c.type("\x03");
    await c.until(() => lastNonEmpty(c) === PROMPT.trim() || lastNonEmpty(c) === PROMPT, "the prompt after ^C");
    c.type("echo stopped-$((9*9))\r");
    await c.waitForText("stopped-81");
    await c.until(() => lastNonEmpty(c).startsWith(PROMPT.trim()), "the prompt after echo");
    // Nothing from `yes` arrives after the shell printed our marker: the flood really stopped.
    const lines = c.screen().split("\n").filter((l) => l.trim() !== "");
    const marker = lines.lastIndexOf("stopped-81");
    expect(marker).toBeGreaterThan(0);
    expect(lines.slice(marker + 1).every((l) => l.startsWith(PROMPT.trim()))).toBe(true);
    await c.close();
  });

  it("refuses connections over the cap with 503", async () => {
    const capped = await startTestPortal({ maxClients: 2 });
    try {
      const ck = await signIn(capped, capped.token);
      const a = await TestClient.connect(capped, { cookie: ck });
      const b = await TestClient.connect(capped, { cookie: ck });
      await expect(TestClient.connect(capped, { cookie: ck })).rejects.toThrow(/503/);
      await a.close();
      await eventually(async () => (await capped.portal.status()).clients.length === 1, "a slot to free up");
      const c = await TestClient.connect(capped, { cookie: ck });
      await c.close();
      await b.close();
    } finally {
      await capped.close();
    }
  });
});
