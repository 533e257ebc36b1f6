import { afterEach, describe, expect, it } from "vitest";
import { CloseCode } from "../../agent-runtime/portal/protocol.js";
import { PROMPT, TestClient, eventually, signIn, startTestPortal, type TestPortal } from "./helpers.js";

let p: TestPortal | undefined;
afterEach(async () => {
  await p?.close();
  p = undefined;
});

const rowsSeen = (c: TestClient) => {
  const counts = new Map<number, number>();
  for (const line of c.lines()) {
    const m = /^row-(\d+)$/.exec(line);
    if (m) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1);
  }
  return counts;
};
const printRows = (from: number, to: number) => `i=${from}; while [ $i -le ${to} ]; do echo row-$i; i=$((i+1)); done\r`;

describe("portal resume", () => {
  it("restores screen and scrollback after a reconnect, without losing or repeating a line", async () => {
    p = await startTestPortal();
    const cookie = await signIn(p, p.token);
    const first = await TestClient.connect(p, { cookie });
    await first.waitForText(PROMPT);
    first.type(printRows(1, 150));
    await first.waitForText("row-150");
    first.ws.terminate(); // network loss

    // Output keeps coming while nobody is connected.
    await p.tmux(["send-keys", "-t", "=pcx-test:", printRows(151, 300).replace(/\r$/, ""), "Enter"]);
    await eventually(async () => (await p!.tmux(["capture-pane", "-p", "-t", "=pcx-test:"])).includes("row-300"), "row-300 in tmux");

    const second = await TestClient.connect(p, { cookie });
    await second.waitForText("row-300");
    await second.until(() => second.screen().trimEnd().endsWith(PROMPT.trim()), "the prompt");
    const counts = rowsSeen(second);
    const missing = [];
    const repeated = [];
    for (let i = 1; i <= 300; i++) {
      if (!counts.has(i)) missing.push(i);
      else if (counts.get(i)! > 1) repeated.push(i);
    }
    expect({ missing, repeated }).toEqual({ missing: [], repeated: [] });
    // The live screen is tmux's, the lines above it are history in the browser's scrollback.
    expect(second.term.buffer.active.baseY).toBeGreaterThan(250);
    await second.close();
  });

  it("bounds the replayed history to portal.scrollbackLines", async () => {
    p = await startTestPortal({ scrollbackLines: 50 });
    const cookie = await signIn(p, p.token);
    const a = await TestClient.connect(p, { cookie });
    a.type(printRows(1, 400));
    await a.waitForText("row-400");
    await a.close();
    const b = await TestClient.connect(p, { cookie });
    await b.waitForText("row-400");
    const counts = rowsSeen(b);
    expect(counts.has(1)).toBe(false);
    expect(counts.size).toBeLessThanOrEqual(50 + 24);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    await b.close();
  });

  it("drops a peer that stops answering heartbeats, and keeps one that answers", async () => {
    p = await startTestPortal({ heartbeatSeconds: 1 });
    const cookie = await signIn(p, p.token);
    const deaf = await TestClient.connect(p, { cookie, autoPong: false });
    const healthy = await TestClient.connect(p, { cookie });
    await deaf.waitClosed();
    expect(deaf.closeCode).toBe(1006); // terminated, no close frame
    // The healthy client lived through the same heartbeats and still works.
    healthy.type("echo alive-$((8*8))\r");
    await healthy.waitForText("alive-64");
    expect(healthy.closeCode).toBeUndefined();
    await healthy.close();
    await eventually(async () => (await p!.tmuxClients()).length === 0, "no tmux clients left");
  });

  it("closes a connection idle for longer than idleTimeoutSeconds", async () => {
    p = await startTestPortal({ heartbeatSeconds: 1, idleTimeoutSeconds: 1 });
    const cookie = await signIn(p, p.token);
    // Opened without waiting for READY: on a loaded machine the 1 s idle limit can pass
    // before the session is attached, and the close must be IDLE either way.
    const c = await TestClient.hello(p, { cookie });
    await c.waitClosed();
    expect(c.closeCode).toBe(CloseCode.IDLE);
  });
});
