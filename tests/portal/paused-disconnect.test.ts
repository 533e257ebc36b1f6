import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PROMPT, TestClient, eventually, signIn, startTestPortal, upgradeStatus, type TestPortal } from "./helpers.js";

/**
 * Issue 18 item 2: phones and background tabs stop reading (flow control pauses their
 * stream), then close or vanish. Each such tab used to leave its tmux client process and
 * the pty's file descriptors behind, invisible to `tmux list-clients` and to the portal's
 * own count, and frozen tabs held maxClients slots so new tabs got 503.
 *
 * These tests play those tabs with real WebSocket clients whose sockets stop reading, and
 * count what really exists: `tmux attach-session` processes that are children of this
 * process (node-pty forks them here) and this process's open file descriptors.
 */

let p: TestPortal | undefined;
afterEach(async () => {
  await p?.close();
  p = undefined;
});

/** tmux clients this process spawned through node-pty (short-lived `tmux has-session` etc. excluded). */
function attachedTmuxChildren(): number[] {
  let out = "";
  try {
    out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(process.pid)], { encoding: "utf8" });
  } catch {
    return []; // ps exits 1 when there are no children
  }
  return out
    .split("\n")
    .filter((l) => /\btmux\b/.test(l) && /attach-session/.test(l))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

const openFds = () => readdirSync("/proc/self/fd").length;

/** A tab that stops reading: no ACKs, no pongs, and its TCP socket no longer reads. */
function freeze(c: TestClient): void {
  c.setAck(false);
  (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
}

/**
 * Output until stopped, however long the tabs take to fill on a loaded machine. Stopped by
 * a file as well as ^C: a ^C that lands between two iterations does not end every shell's
 * loop, and a flood left running buries the next tab's prompt.
 */
const flood = (stopFile: string) => `while [ ! -e ${stopFile} ]; do head -c 30000 /dev/urandom | od -An -tx1 -w64; done`;

async function frozenTabs(portal: TestPortal, cookie: string, n: number): Promise<TestClient[]> {
  const tabs: TestClient[] = [];
  for (let i = 0; i < n; i++) tabs.push(await TestClient.connect(portal, { cookie, autoPong: false, cols: 200, rows: 50 }));
  await eventually(async () => (await portal.tmuxClients()).length === n, `${n} tmux clients attached`, 60_000);
  for (const t of tabs) freeze(t);
  // One writer floods the session; every frozen tab fills its socket and watermark.
  const stopFile = join(mkdtempSync(join(tmpdir(), "pcx-flood-")), "stop");
  await portal.tmux(["send-keys", "-t", "=pcx-test:", flood(stopFile), "Enter"]);
  await eventually(
    async () => {
      const stats = (await portal.portal.status()).clients;
      return stats.length === n && stats.every((s) => s.pausedForAck || s.pausedForBuffer);
    },
    "every frozen tab paused by flow control",
    120_000,
  );
  writeFileSync(stopFile, "");
  await portal.tmux(["send-keys", "-t", "=pcx-test:", "C-c"]);
  return tabs;
}

async function expectNothingLeft(portal: TestPortal, tabs: TestClient[], fdBaseline: number): Promise<void> {
  await eventually(() => attachedTmuxChildren().length === 0, "no tmux client processes left", 60_000).catch(() => {
    throw new Error(`tmux client processes left behind: ${attachedTmuxChildren().join(", ")}`);
  });
  await eventually(async () => (await portal.tmuxClients()).length === 0, "tmux list-clients empty", 30_000);
  const status = await portal.portal.status();
  expect(status.clients).toEqual([]);
  expect(status.terminals).toBe(0);
  // The tabs live in this process too: end their side before counting descriptors.
  for (const t of tabs) t.ws.terminate();
  // A few descriptors of slack for sockets in TIME_WAIT handling and libuv internals.
  await eventually(() => openFds() <= fdBaseline + 4, `fds back to baseline (${fdBaseline}, now ${openFds()})`, 30_000);
}

describe("portal tabs that disconnect while paused by flow control", () => {
  it("releases the tmux client and fds of 20 paused tabs that close", async () => {
    p = await startTestPortal();
    const cookie = await signIn(p, p.token);
    // Warm up (first connect creates the session and loads lazy modules), then take the baseline.
    const warm = await TestClient.connect(p, { cookie });
    await warm.waitForText(PROMPT);
    await warm.close();
    await eventually(() => attachedTmuxChildren().length === 0, "warm-up client gone");
    const fdBaseline = openFds();

    const tabs = await frozenTabs(p, cookie, 20);
    // The tab closes (a close frame goes out; it never reads the answer).
    for (const t of tabs) t.ws.close();
    await expectNothingLeft(p, tabs, fdBaseline);

    // New tabs are served, not refused.
    const fresh = await TestClient.connect(p, { cookie });
    fresh.type("echo fresh-$((5*5))\r");
    await fresh.waitForText("fresh-25");
    await fresh.close();
  }, 300_000);

  it("releases 20 paused tabs that vanish (TCP reset or silence), and a frozen tab gives way to a new one", async () => {
    // Heartbeats far apart: only the faster eviction of stalled paused tabs can free these.
    p = await startTestPortal({ maxClients: 20, heartbeatSeconds: 300 });
    const cookie = await signIn(p, p.token);
    const warm = await TestClient.connect(p, { cookie });
    await warm.waitForText(PROMPT);
    await warm.close();
    await eventually(() => attachedTmuxChildren().length === 0, "warm-up client gone");
    const fdBaseline = openFds();

    const tabs = await frozenTabs(p, cookie, 20);
    // The portal is full of frozen tabs: a new tab gets in (a stalled paused tab gives way)
    // instead of 503 until heartbeats drop them.
    let status = 0;
    await eventually(async () => (status = await upgradeStatus(p!.url, { origin: p!.origin, cookie })) === 101, "a new tab admitted", 60_000).catch(() => {
      throw new Error(`a new tab was refused with ${status} while 20 frozen tabs held the slots`);
    });
    // Half are reset (a phone whose network dropped), half just stay silent.
    for (const t of tabs.slice(10)) (t.ws as unknown as { _socket: { destroy(): void } })._socket.destroy();
    await expectNothingLeft(p, tabs, fdBaseline);
    expect(p.logs.some((l) => l.includes("stopped reading"))).toBe(true);

    const fresh = await TestClient.connect(p, { cookie });
    fresh.type("echo fresh-$((6*6))\r");
    await fresh.waitForText("fresh-36");
    await fresh.close();
  }, 300_000);
});
