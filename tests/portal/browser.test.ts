import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { PROMPT, startTestPortal, type TestPortal } from "./helpers.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(process.cwd(), "dist", "test-artifacts", "portal");

let p: TestPortal;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Debian chromium is required at ${CHROMIUM} for the portal browser test: apt-get install chromium`);
  mkdirSync(ARTIFACTS, { recursive: true });
  p = await startTestPortal();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
});
afterAll(async () => {
  await browser?.close();
  await p?.close();
});

interface Watch {
  urls: string[];
  referers: string[];
  problems: string[];
}

function watch(page: Page): Watch {
  const w: Watch = { urls: [], referers: [], problems: [] };
  page.on("request", (req) => {
    w.urls.push(req.url());
    const referer = req.headers()["referer"];
    if (referer) w.referers.push(referer);
  });
  page.on("console", (msg) => {
    if (msg.type() === "error" || /Content Security Policy/i.test(msg.text())) w.problems.push(msg.text());
  });
  page.on("pageerror", (err) => w.problems.push(String(err)));
  return w;
}

const terminalText = (page: Page) => page.evaluate(() => (window as unknown as { picortexPortal: { text(): string } }).picortexPortal.text());

async function waitForText(page: Page, text: string, timeout = 30_000): Promise<void> {
  await page.waitForFunction(
    (t) => (window as unknown as { picortexPortal?: { text(): string } }).picortexPortal?.text().includes(t) ?? false,
    text,
    { timeout, polling: 100 },
  );
}

async function open(context: BrowserContext, hashToken: string | undefined, query = ""): Promise<{ page: Page; w: Watch }> {
  const page = await context.newPage();
  const w = watch(page);
  await page.goto(`${p.url}/portal/${query}${hashToken ? `#token=${hashToken}` : ""}`);
  await page.waitForSelector('body[data-state="connected"]', { timeout: 30_000 });
  return { page, w };
}

describe("portal in a real Chromium", () => {
  it("signs in from the #token link, shows the prompt, runs typed commands and restores the screen after reload", async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const { page, w } = await open(context, p.token);
    // The token left the address bar at once and never went over the wire in a URL.
    expect(page.url()).toBe(`${p.url}/portal/`);
    await waitForText(page, PROMPT);
    await page.click("#terminal");
    await page.keyboard.type("echo browser-$((6*7))");
    await page.keyboard.press("Enter");
    await waitForText(page, "browser-42");

    await page.reload();
    await page.waitForSelector('body[data-state="connected"]', { timeout: 30_000 });
    await waitForText(page, "browser-42"); // restored from tmux, via the cookie alone
    expect(page.url()).not.toContain("token");

    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/portal" });
    expect(await page.evaluate(() => document.cookie)).toBe(""); // HttpOnly: not readable by script

    for (const url of w.urls) expect(url).not.toContain(p.token);
    for (const referer of w.referers) expect(referer).not.toContain(p.token);
    expect(p.logs.join("\n")).not.toContain(p.token);
    expect(w.urls.every((u) => u.startsWith(p.url))).toBe(true); // self-hosted: no CDN
    expect(w.problems).toEqual([]); // includes CSP violations
    const renderer = await page.evaluate(() => (window as unknown as { picortexPortal: { renderer(): string } }).picortexPortal.renderer());
    expect(["webgl", "dom"]).toContain(renderer);
    await context.close();
  }, 180_000);

  it("works on a phone-sized viewport with the extra-keys bar (DOM renderer fallback)", async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    // The DOM renderer: the fallback when WebGL is missing, and the one whose injected
    // <style> elements must pass the CSP by nonce. (Headless SwiftShader also draws WebGL
    // glyphs wrongly at devicePixelRatio 2, which would make the screenshot useless.)
    const { page, w } = await open(context, p.token, "?renderer=dom");
    expect(await page.getAttribute("body", "data-renderer")).toBe("dom");
    await waitForText(page, PROMPT);
    const bar = page.locator("#keys");
    expect(await bar.isVisible()).toBe(true);
    for (const label of ["Esc", "Tab", "Ctrl", "←", "↑", "↓", "→", "^C", "Paste"]) {
      expect(await bar.getByRole("button", { name: new RegExp(label === "^C" ? "Interrupt" : label === "←" ? "Left" : label === "↑" ? "Up" : label === "↓" ? "Down" : label === "→" ? "Right" : label, "i") }).count()).toBeGreaterThan(0);
    }
    // The bar and the terminal both fit the narrow screen.
    const barBox = (await bar.boundingBox())!;
    const termBox = (await page.locator("#terminal").boundingBox())!;
    expect(barBox.y + barBox.height).toBeLessThanOrEqual(844 + 1);
    expect(termBox.width).toBeLessThanOrEqual(390);
    const last = (await bar.getByRole("button").last().boundingBox())!;
    expect(last.x + last.width).toBeLessThanOrEqual(390); // every key reachable, none cut off
    const size = await page.evaluate(() => (window as unknown as { picortexPortal: { size(): { cols: number } } }).picortexPortal.size());
    expect(size.cols).toBeGreaterThan(20);
    expect(size.cols).toBeLessThan(80);

    await page.click("#terminal");
    await page.keyboard.type("sleep 600");
    await page.keyboard.press("Enter");
    await bar.getByRole("button", { name: /Interrupt/ }).tap();
    // Sticky Ctrl: tap Ctrl, then type "u" → ^U clears whatever is on the line.
    await page.keyboard.type("garbage");
    await bar.getByRole("button", { name: /Sticky Ctrl/ }).tap();
    await page.keyboard.type("u");
    await page.keyboard.type("echo phone-$((7*7))");
    await page.keyboard.press("Enter");
    await waitForText(page, "phone-49");
    expect(await terminalText(page)).not.toContain("garbage: not found");
    await page.screenshot({ path: join(ARTIFACTS, "phone-390x844.png") });

    // The on-screen keyboard shrinks the visual viewport: the layout follows it, so the
    // key bar and the prompt stay above the keyboard, and the terminal refits.
    const rowsBefore = (await page.evaluate(() => (window as unknown as { picortexPortal: { size(): { rows: number } } }).picortexPortal.size())).rows;
    await page.setViewportSize({ width: 390, height: 480 });
    await page.waitForFunction((before) => (window as unknown as { picortexPortal: { size(): { rows: number } } }).picortexPortal.size().rows < before, rowsBefore, { timeout: 10_000 });
    const vvHeight = await page.evaluate(() => window.visualViewport!.height);
    const barAfter = (await bar.boundingBox())!;
    expect(barAfter.y + barAfter.height).toBeLessThanOrEqual(vvHeight + 1);
    expect(await page.locator("#status").textContent()).toBe("connected");
    await page.screenshot({ path: join(ARTIFACTS, "phone-390x480-keyboard-up.png") });
    expect(w.problems).toEqual([]);
    await context.close();
  }, 180_000);
});

describe("portal page reconnects by itself", () => {
  it("comes back after the server drops it mid-output, without a protocol error", async () => {
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const { page, w } = await open(context, p.token);
    await waitForText(page, PROMPT);
    await page.click("#terminal");
    await page.keyboard.type("seq 1 200000 | tail -c 0; seq 1 30000");
    await page.keyboard.press("Enter");
    // Drop every tmux client of the session while output is flowing (like a network cut):
    // the page must reconnect on its own, and acks for the old connection must not leak
    // into the new one (the server would close it with a protocol error).
    // The page may drop and come back between two polls on a loaded machine, so the page
    // itself records that it left "connected" (an observer set up before the drop).
    await page.evaluate(() => {
      const w = window as unknown as { __leftConnected?: boolean };
      new MutationObserver(() => {
        if (document.body.dataset.state !== "connected") w.__leftConnected = true;
      }).observe(document.body, { attributes: true, attributeFilter: ["data-state"] });
    });
    await p.tmux(["detach-client", "-s", "=pcx-test"]);
    await page.waitForFunction(() => (window as unknown as { __leftConnected?: boolean }).__leftConnected === true, undefined, { timeout: 30_000 });
    await page.waitForSelector('body[data-state="connected"]', { timeout: 30_000 });
    await page.keyboard.type("echo back-$((5*9))");
    await page.keyboard.press("Enter");
    // Behind the rest of 30000 lines through tmux and the page: slow on a loaded CI machine.
    await waitForText(page, "back-45", 120_000);
    expect(p.logs.join("\n")).not.toMatch(/bad message/);
    expect(w.problems).toEqual([]);
    await context.close();
  }, 180_000);
});
