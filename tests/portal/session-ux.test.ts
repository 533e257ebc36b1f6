/**
 * Issue 16 item 7, in real Chromium on the default page:
 * - a session command that exits is shown as exited, with its status and last output, and
 *   the page does not respawn it in a loop; a Restart button runs it again;
 * - the session runs with a UTF-8 locale even when the runtime has none (systemd sets no
 *   LANG), so Claude Code's symbols are not drawn as `_`;
 * - a lost link is visibly disconnected, and keys typed meanwhile are refused visibly;
 * - the key bar's buttons are at least 44 x 44 CSS px and none is cut off on narrow phones.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page, type WebSocketRoute } from "playwright-core";
import { PROMPT, signIn, startTestPortal, type TestPortal } from "./helpers.js";
import { tmuxEnv } from "../../agent-runtime/portal/tmux.js";

const CHROMIUM = "/usr/bin/chromium";
let browser: Browser;
const portals: TestPortal[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Debian chromium is required at ${CHROMIUM}: apt-get install chromium`);
  // The runtime's own environment without a UTF-8 locale, as under systemd.
  delete process.env.LC_ALL;
  delete process.env.LC_CTYPE;
  process.env.LANG = "C";
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--no-first-run"] });
});
afterAll(async () => {
  await browser?.close();
  for (const p of portals) await p.close();
});

async function portal(command?: string[]): Promise<TestPortal> {
  const p = await startTestPortal(command ? { command } : {});
  portals.push(p);
  return p;
}
const text = (page: Page) => page.evaluate(() => (window as any).picortexPortal.text() as string);

describe("portal session locale", () => {
  it("runs tmux with a UTF-8 locale when the runtime has none, and keeps a UTF-8 one it has", () => {
    expect(tmuxEnv({ PATH: "/bin", LANG: "C" })).toMatchObject({ LANG: "C.UTF-8", LC_CTYPE: "C.UTF-8" });
    expect(tmuxEnv({ PATH: "/bin" })).toMatchObject({ LANG: "C.UTF-8" });
    expect(tmuxEnv({ PATH: "/bin", LC_ALL: "POSIX" }).LC_ALL).toBeUndefined();
    expect(tmuxEnv({ PATH: "/bin", LANG: "de_DE.UTF-8" }).LANG).toBe("de_DE.UTF-8");
  });
});

describe("POST /portal/api/restart", () => {
  it("is for signed-in read-write pages of this origin only", async () => {
    const p = await startTestPortal({ readOnlyToken: true });
    portals.push(p);
    const post = (headers: Record<string, string>) => fetch(`${p.url}/portal/api/restart`, { method: "POST", headers });
    expect((await post({ origin: p.origin })).status).toBe(401);
    const ro = await signIn(p, p.readOnlyToken!);
    expect((await post({ origin: p.origin, cookie: ro })).status).toBe(403);
    const rw = await signIn(p, p.token);
    expect((await post({ origin: "http://evil.example", cookie: rw })).status).toBe(403);
  });
});

describe("portal session UX", () => {
  it("shows a command that exits at once as exited, with status and last output, without a respawn loop; Restart runs it again", async () => {
    const p = await portal(["sh", "-c", "echo 'fatal: no API key ✓ ❯'; exit 7"]);
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    await page.goto(`${p.url}/portal/#token=${p.token}`);
    await page.waitForSelector('body[data-state="exited"]', { timeout: 30_000 });
    expect(await page.locator("#status").textContent()).toContain("status 7");
    const shown = await text(page);
    expect(shown).toContain("fatal: no API key ✓ ❯"); // last output, in UTF-8 (not `_`)
    expect(await page.locator("#notice").textContent()).toContain("status 7");
    // No loop: a while later the page is still showing the same exited session, never reconnecting.
    const states: string[] = [];
    await page.exposeFunction("recordState", (s: string) => states.push(s));
    await page.evaluate(() => new MutationObserver(() => (window as any).recordState(document.body.dataset.state)).observe(document.body, { attributes: true }));
    await page.waitForTimeout(3000);
    expect(states.filter((s) => s === "reconnecting" || s === "ended")).toEqual([]);
    expect(await page.getAttribute("body", "data-state")).toBe("exited");
    expect(p.logs.join("\n")).not.toMatch(/set-option failed/);

    await page.click("#restart");
    // The page was already "exited" before the click, so wait for the restart itself (the
    // server's log line), then for the command to have exited again.
    const restarted = Date.now() + 30_000;
    while (!p.logs.join("\n").includes("portal session command restarted")) {
      if (Date.now() > restarted) throw new Error(`no restart logged:\n${p.logs.join("\n")}`);
      await page.waitForTimeout(100);
    }
    await page.waitForFunction(() => document.body.dataset.state === "exited" && document.querySelector("#restart") !== null, undefined, { timeout: 30_000 });
    await context.close();
  }, 120_000);

  it("shows a lost link as disconnected and refuses keys visibly until it is back", async () => {
    const p = await portal();
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    let blocked = false;
    const routes: WebSocketRoute[] = [];
    await page.routeWebSocket(/\/portal\/ws$/, (ws) => {
      if (blocked) return void ws.close({ code: 1006 });
      routes.push(ws);
      ws.connectToServer();
    });
    await page.goto(`${p.url}/portal/#token=${p.token}`);
    await page.waitForSelector('body[data-state="connected"]', { timeout: 30_000 });
    await page.waitForFunction((t) => (window as any).picortexPortal.text().includes(t), PROMPT, { timeout: 30_000 });

    blocked = true;
    await routes.at(-1)!.close({ code: 1001 });
    await page.waitForSelector('body[data-state="reconnecting"]', { timeout: 10_000 });
    expect(await page.locator("#disconnected").isVisible()).toBe(true);
    expect(Number(await page.locator("#terminal").evaluate((e) => getComputedStyle(e).opacity))).toBeLessThan(1);
    await page.click("#terminal");
    await page.keyboard.type("echo lost");
    expect(await page.locator("#disconnected").textContent()).toContain("NOT sent");

    blocked = false;
    await page.waitForSelector('body[data-state="connected"]', { timeout: 30_000 });
    expect(await page.locator("#disconnected").isVisible()).toBe(false);
    await page.keyboard.type("echo back-$((6*6))");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => (window as any).picortexPortal.text().includes("back-36"), undefined, { timeout: 30_000 });
    expect(await text(page)).not.toContain("echo lostecho");
    await context.close();
  }, 120_000);

  // One live shell for the three widths (not a portal from an earlier test: the exiting
  // command's page is "connected" only for a moment before it shows "exited").
  let shell: TestPortal | undefined;
  for (const width of [320, 360, 390]) {
    it(`key-bar buttons are at least 44 x 44 px and none is cut off at ${width} px`, async () => {
      const p = (shell ??= await portal());
      const context = await browser.newContext({ viewport: { width, height: 740 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true });
      const page = await context.newPage();
      await page.goto(`${p.url}/portal/#token=${p.token}`);
      await page.waitForSelector('body[data-state="connected"]', { timeout: 30_000 });
      const boxes = await page.locator("#keys button").evaluateAll((els) => els.map((e) => e.getBoundingClientRect().toJSON()));
      expect(boxes.length).toBe(9);
      for (const b of boxes) {
        expect(b.width).toBeGreaterThanOrEqual(44);
        expect(b.height).toBeGreaterThanOrEqual(44);
        expect(b.x).toBeGreaterThanOrEqual(0);
        expect(b.x + b.width).toBeLessThanOrEqual(width);
      }
      await context.close();
    }, 120_000);
  }
});
