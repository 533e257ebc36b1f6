import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ClientType, CloseCode, LIMITS, frame } from "../../agent-runtime/portal/protocol.js";
import { PROMPT, TestClient, eventually, signIn, startTestPortal, type TestPortal } from "./helpers.js";

let p: TestPortal;
let cookie: string;
let roCookie: string;

beforeAll(async () => {
  p = await startTestPortal({ readOnlyToken: true });
  cookie = await signIn(p, p.token);
  roCookie = await signIn(p, p.readOnlyToken!);
});
afterAll(async () => {
  await p?.close();
});

describe("portal terminal over a real WebSocket, node-pty and tmux", () => {
  it("attaches to the session, shows its prompt and runs what is typed", async () => {
    const c = await TestClient.connect(p, { cookie });
    await c.waitForText(PROMPT);
    c.type("echo portal-$((6*7))\r");
    await c.waitForText("portal-42");
    expect(c.ready).toMatchObject({ session: "pcx-test", readOnly: false });
    await c.close();
  });

  it("lets several tabs share one live session, and closing a tab only detaches it", async () => {
    const a = await TestClient.connect(p, { cookie });
    const b = await TestClient.connect(p, { cookie });
    await eventually(async () => (await p.tmuxClients()).length === 2, "two tmux clients");
    a.type("echo shared-$((1+2))\r");
    await b.waitForText("shared-3");
    await a.close();
    await eventually(async () => (await p.tmuxClients()).length === 1, "one tmux client after a tab closed");
    expect(await p.tmux(["has-session", "-t", "=pcx-test"])).toBe("");
    b.type("echo still-$((2+2))\r");
    await b.waitForText("still-4");
    await b.close();
  });

  it("recreates the session on the next connect after the agent exits", async () => {
    const c = await TestClient.connect(p, { cookie });
    await c.waitForText(PROMPT);
    c.type("echo before-exit; exit\r");
    await c.waitClosed();
    expect(c.exited).toBe(true);
    expect(c.closeCode).toBe(CloseCode.SESSION_ENDED);
    await expect(p.tmux(["has-session", "-t", "=pcx-test"])).rejects.toThrow();
    const again = await TestClient.connect(p, { cookie });
    await again.waitForText(PROMPT);
    again.type("echo reborn-$((3+4))\r");
    await again.waitForText("reborn-7");
    expect(again.lines().join("\n")).not.toContain("before-exit");
    await again.close();
  });

  it("never lets a read-only viewer type or resize (server and tmux both refuse)", async () => {
    const rw = await TestClient.connect(p, { cookie, cols: 100, rows: 30 });
    await rw.waitForText(PROMPT);
    const ro = await TestClient.connect(p, { cookie: roCookie, cols: 60, rows: 15 });
    expect(ro.ready?.readOnly).toBe(true);
    const marker = join(p.dataDir, "viewer-wrote-this");
    ro.type(`touch ${marker}\r`);
    ro.resize(20, 5);
    await ro.until(() => ro.errors.length >= 2, "two read-only refusals");
    expect(ro.errors[0]).toMatch(/read-only/);
    // The writer's next command proves the viewer's bytes never reached the shell.
    rw.type("echo after-viewer-$((5*5))\r");
    await rw.waitForText("after-viewer-25");
    await ro.waitForText("after-viewer-25");
    expect(existsSync(marker)).toBe(false);
    expect(rw.lines().join("\n")).not.toContain("viewer-wrote-this");
    const clients = await p.tmuxClients();
    expect(clients.filter((c) => c.readOnly)).toHaveLength(1);
    const size = (await p.tmux(["display-message", "-p", "-t", "=pcx-test:", "#{window_width}x#{window_height}"])).trim();
    expect(size).not.toBe("20x5");
    expect(size).not.toMatch(/^60x/);
    await ro.close();
    await rw.close();
  });

  it("rejects unknown types, a missing handshake, out-of-bounds resizes and oversized frames", async () => {
    const unknown = await TestClient.connect(p, { cookie });
    unknown.sendRaw(Buffer.from([0x7e, 1, 2, 3]));
    await unknown.waitClosed();
    expect(unknown.closeCode).toBe(CloseCode.PROTOCOL);
    expect(unknown.closeReason).toMatch(/unknown message type 0x7e/);

    const badResize = await TestClient.connect(p, { cookie });
    badResize.resize(LIMITS.maxCols + 1, 10);
    await badResize.waitClosed();
    expect(badResize.closeCode).toBe(CloseCode.PROTOCOL);
    expect(badResize.closeReason).toMatch(/cols/);

    const tooBig = await TestClient.connect(p, { cookie });
    tooBig.sendRaw(frame(ClientType.INPUT, "x".repeat(LIMITS.maxMessageBytes + 10)));
    await tooBig.waitClosed();
    expect(tooBig.closeCode).toBe(CloseCode.TOO_BIG);

    const noHello = new TestClient(p, { cookie });
    await new Promise((r) => noHello.ws.once("open", r));
    noHello.type("echo sneaky\r");
    await noHello.waitClosed();
    expect(noHello.closeCode).toBe(CloseCode.PROTOCOL);
    expect(noHello.closeReason).toMatch(/HELLO/);
  });

  it("leaves no orphaned tmux clients after many connect/disconnect cycles", async () => {
    const cycles = 25;
    for (let i = 0; i < cycles; i++) {
      const c = await TestClient.connect(p, { cookie, cols: 80 + (i % 5), rows: 24 });
      if (i % 2 === 0) await c.close();
      else c.ws.terminate(); // an abrupt network drop, not a clean close
    }
    await eventually(async () => (await p.tmuxClients()).length === 0 && p.portal.status().then((s) => s.clients.length === 0), "all clients gone");
    expect(await p.tmuxClients()).toEqual([]);
    expect((await p.portal.status()).clients).toEqual([]);
  });
});

describe("portal tmux options", () => {
  it("sets the window-size policy and the no-alternate-screen override exactly once", async () => {
    for (let i = 0; i < 3; i++) {
      const c = await TestClient.connect(p, { cookie });
      await c.close();
    }
    expect((await p.tmux(["show-options", "-w", "-v", "-t", "=pcx-test:", "window-size"])).trim()).toBe("latest");
    expect((await p.tmux(["show-options", "-s", "-v", "focus-events"])).trim()).toBe("on");
    const overrides = await p.tmux(["show-options", "-s", "-v", "terminal-overrides"]);
    expect(overrides.match(/smcup@/g)).toHaveLength(1);
  });
});

describe("portal window-size policy", () => {
  it("fits the window to the device used last (latest), and back when the other one is used", async () => {
    const laptop = await TestClient.connect(p, { cookie, cols: 160, rows: 45 });
    await laptop.waitForText(PROMPT);
    const size = () => p.tmux(["display-message", "-p", "-t", "=pcx-test:", "#{window_width}x#{window_height}"]).then((s) => s.trim());
    await eventually(async () => (await size()) === "160x44", "the laptop's size (one row for the status line)");
    const phone = await TestClient.connect(p, { cookie, cols: 48, rows: 30 });
    phone.type("echo phone-typed-$((4*4))\r");
    await laptop.waitForText("phone-typed-16");
    await eventually(async () => (await size()) === "48x29", "the phone's size once it typed");
    laptop.type("echo laptop-typed-$((5*5))\r");
    await phone.waitForText("laptop-typed-25");
    await eventually(async () => (await size()) === "160x44", "the laptop's size once it typed again");
    // A focus-in report (what a page sends when its terminal gets focus) is activity too.
    phone.type("\x1b[I");
    await eventually(async () => (await size()) === "48x29", "the phone's size once it got focus");
    await phone.close();
    await laptop.close();
  });
});

describe("portal started from inside tmux", () => {
  it("still attaches (TMUX is not passed on to its tmux clients)", async () => {
    const saved = process.env.TMUX;
    process.env.TMUX = "/tmp/tmux-0/default,12345,0";
    try {
      const c = await TestClient.connect(p, { cookie });
      c.type("echo nested-ok-$((2*3))\r");
      await c.waitForText("nested-ok-6");
      await c.close();
    } finally {
      if (saved === undefined) delete process.env.TMUX;
      else process.env.TMUX = saved;
    }
  });
});
