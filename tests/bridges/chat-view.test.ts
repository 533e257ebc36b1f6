/**
 * The portal's chat view in real Chromium at phone size (390x844): list of chats, chat page,
 * send a message and watch the reply stream in, queued/running/failed turns. Same cookie auth,
 * Origin check and CSP as the terminal.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChat, startTestRuntime, type TestRuntime } from "../turns/helpers.js";

const CHROMIUM = "/usr/bin/chromium";

describe("portal chat view", { timeout: 300_000 }, () => {
  let rt: TestRuntime;
  let browser: Browser;
  let cookie: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Debian chromium is required at ${CHROMIUM}: apt-get install chromium`);
    rt = await startTestRuntime({ mode: "local", turns: { warm: { enabled: false } }, config: () => ({ portal: { enabled: true } }) });
    const token = readFileSync(join(rt.dataDir, "portal-token"), "utf8").trim();
    const r = await fetch(`${rt.url}/portal/api/session`, { method: "POST", headers: { "content-type": "application/json", origin: rt.url }, body: JSON.stringify({ token }) });
    expect(r.status).toBe(200);
    cookie = r.headers.get("set-cookie")!.split(";")[0]!;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"] });
  });
  afterAll(async () => {
    await browser?.close();
    await rt?.close();
  });

  it("refuses requests without the session cookie or from a foreign Origin", async () => {
    await createChat(rt, "view-a");
    expect((await fetch(`${rt.url}/portal/api/chats`)).status).toBe(401);
    const post = (headers: Record<string, string>) =>
      fetch(`${rt.url}/portal/api/chats/view-a/turns`, { method: "POST", headers: { "content-type": "application/json", cookie, ...headers }, body: JSON.stringify({ text: "x" }) });
    expect((await post({ origin: "https://evil.example" })).status).toBe(403);
    expect((await post({})).status).toBe(403); // no Origin: not a page of ours
    const page = await fetch(`${rt.url}/portal/chats/`);
    expect(page.headers.get("content-security-policy")).toMatch(/default-src 'none'; script-src 'self'/);
    expect((await rt.call("GET", "/v1/chats/view-a/turns")).json.turns).toEqual([]);
  });

  it("lists chats, sends a message and shows the reply stream in, and a failed turn, at 390x844", async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const [name, value] = [cookie.slice(0, cookie.indexOf("=")), cookie.slice(cookie.indexOf("=") + 1)];
    await context.addCookies([{ name, value, url: rt.url }]);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
    page.on("pageerror", (e) => problems.push(String(e)));
    await page.goto(`${rt.url}/portal/chats/`);
    await page.locator("li.chat a", { hasText: "view-a" }).click();
    await page.waitForSelector("#composer");

    rt.fake.enqueue({ delayMs: 1500, text: "The answer streams in, piece by piece.", chunks: 4 });
    await page.fill("#message", "hello from the phone");
    await page.click("#send");
    // Visible while it runs, then done with the reply.
    await page.waitForSelector('.turn[data-status="running"], .turn[data-status="queued"]');
    await page.waitForSelector('.turn[data-status="done"] .reply:text("The answer streams in, piece by piece.")', { timeout: 180_000 });
    expect(await page.locator(".turn .text").first().textContent()).toBe("hello from the phone");

    rt.fake.enqueue({ error: { status: 400, type: "invalid_request_error", message: "fake refusal" } });
    await page.fill("#message", "this one fails");
    await page.click("#send");
    await page.waitForSelector('.turn[data-status="failed"] .error', { timeout: 180_000 });

    // Phone layout: nothing wider than the screen, the composer within reach.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const box = await page.locator("#composer").boundingBox();
    expect(box!.y + box!.height).toBeLessThanOrEqual(844);
    expect(problems).toEqual([]);
    const turns = (await rt.call("GET", "/v1/chats/view-a/turns")).json.turns;
    expect(turns.map((t: any) => [t.text, t.sender, t.status])).toEqual([
      ["hello from the phone", "portal", "done"],
      ["this one fails", "portal", "failed"],
    ]);
    await context.close();
  });
});
