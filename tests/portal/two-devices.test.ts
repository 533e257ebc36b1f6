/**
 * Issue 16 item 7, last part: a phone attached beside a desktop is not cropped. Real
 * Chromium, the default page (default renderer, default portal config), a desktop page
 * and a phone page (390x844, DPR 3) attached to the one tmux window together. tmux sizes
 * the window for the device used last (`window-size latest`; a focused page tells tmux
 * through a focus-in report, typing through its keys): that device shows the whole window
 * (xterm's visible rows/cols equal tmux's window_width x window_height + the status line),
 * and the other one recovers as soon as it is used.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { PROMPT, eventually, startTestPortal, type TestPortal } from "./helpers.js";

const CHROMIUM = "/usr/bin/chromium";
let p: TestPortal;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Debian chromium is required at ${CHROMIUM}: apt-get install chromium`);
  p = await startTestPortal();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--no-first-run"] });
});
afterAll(async () => {
  await browser?.close();
  await p?.close();
});

async function open(viewport: { width: number; height: number }, dpr: number, mobile: boolean): Promise<Page> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: dpr, isMobile: mobile, hasTouch: mobile });
  const page = await context.newPage();
  await page.goto(`${p.url}/portal/#token=${p.token}`);
  await page.waitForSelector('body[data-state="connected"]', { timeout: 30_000 });
  await page.waitForFunction((t) => (window as any).picortexPortal.text().includes(t), PROMPT, { timeout: 30_000 });
  return page;
}

const termSize = (page: Page) => page.evaluate(() => (window as any).picortexPortal.size() as { cols: number; rows: number });

async function windowSize(): Promise<{ cols: number; rows: number }> {
  const [w, h] = (await p.tmux(["display-message", "-p", "-t", "=pcx-test:", "#{window_width}x#{window_height}"])).trim().split("x").map(Number);
  return { cols: w!, rows: h! };
}

/** The page shows the whole window: the window is exactly its terminal (less tmux's one status line). */
async function fits(page: Page): Promise<boolean> {
  const t = await termSize(page);
  const w = await windowSize();
  return w.cols === t.cols && w.rows === t.rows - 1;
}

/** Uses a page the way a person does: focus its terminal, type a character, erase it. */
async function use(page: Page): Promise<void> {
  await page.bringToFront();
  await page.locator("#terminal .xterm-helper-textarea").focus();
  await page.keyboard.type("x");
  await page.keyboard.press("Backspace");
}

describe("a phone and a desktop on one portal session", () => {
  it("the device used last shows the whole window; the other recovers when used", async () => {
    const desktop = await open({ width: 1280, height: 800 }, 1, false);
    const phone = await open({ width: 390, height: 844 }, 3, true);
    const d = await termSize(desktop);
    const ph = await termSize(phone);
    // Really two different sizes: the phone is far narrower than the desktop.
    expect(ph.cols, JSON.stringify({ d, ph })).toBeLessThan(d.cols / 2);

    await use(phone);
    await eventually(() => fits(phone), `the phone (${ph.cols}x${ph.rows}) to see the whole window (tmux: ${JSON.stringify(await windowSize())})`);
    expect(await windowSize()).toEqual({ cols: ph.cols, rows: ph.rows - 1 });

    await use(desktop);
    await eventually(() => fits(desktop), `the desktop (${d.cols}x${d.rows}) to get the window back (tmux: ${JSON.stringify(await windowSize())})`);
    expect(await windowSize()).toEqual({ cols: d.cols, rows: d.rows - 1 });

    // Only focusing the phone (no key yet) is enough: the page's focus-in report makes it the latest client.
    await phone.bringToFront();
    await phone.locator("#terminal .xterm-helper-textarea").focus();
    await phone.evaluate(() => (document.querySelector("#terminal .xterm-helper-textarea") as HTMLElement).blur());
    await phone.locator("#terminal .xterm-helper-textarea").focus();
    await eventually(() => fits(phone), `the focused phone to get the window (tmux: ${JSON.stringify(await windowSize())})`);

    // And what the shell draws is whole on the phone: a line as wide as its terminal ends on screen.
    await phone.keyboard.type(`echo ${"z".repeat(ph.cols - 8)}END\n`);
    await phone.waitForFunction(() => /z+END\s*$/m.test((window as any).picortexPortal.text()), undefined, { timeout: 15_000 });
    await desktop.context().close();
    await phone.context().close();
  }, 180_000);

  it("a focus report is not a keystroke: a sticky Ctrl survives the terminal losing and regaining focus", async () => {
    const phone = await open({ width: 390, height: 844 }, 3, true);
    const textarea = phone.locator("#terminal .xterm-helper-textarea");
    await textarea.focus();
    await phone.keyboard.type("sleep 600");
    await phone.keyboard.press("Enter");
    await phone.locator("#keys").getByRole("button", { name: /Sticky Ctrl/ }).tap();
    // The page loses and regains focus (the keyboard closed, another app): focus-out, focus-in.
    await phone.evaluate(() => (document.querySelector("#terminal .xterm-helper-textarea") as HTMLElement).blur());
    await textarea.focus();
    await phone.keyboard.type("c"); // still Ctrl-C: the sleep is interrupted
    await phone.keyboard.type("echo ctrl-kept-$((6*7))");
    await phone.keyboard.press("Enter");
    await phone.waitForFunction(() => (window as any).picortexPortal.text().includes("ctrl-kept-42"), undefined, { timeout: 20_000 });
    await phone.context().close();
  }, 120_000);
});
