/**
 * Issue 16 item 6: the DEFAULT portal page (no ?renderer= override) in real Chromium at the
 * device pixel ratios phones and HiDPI desktops report. Glyphs drawn DPR times too large
 * (the WebGL canvas sized in CSS pixels) leave only a corner of the screen visible, so
 * the test measures what is drawn, not what xterm.js believes:
 *   - the terminal's cols/rows match a fit computed from the font's own metrics;
 *   - the tmux status line (the bottom row, green) is one cell high in the screenshot,
 *     in device pixels: cell height × DPR, not DPR times that.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { PROMPT, startTestPortal, type TestPortal } from "./helpers.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(process.cwd(), "dist", "test-artifacts", "portal");
let p: TestPortal;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Debian chromium is required at ${CHROMIUM}: apt-get install chromium`);
  mkdirSync(ARTIFACTS, { recursive: true });
  p = await startTestPortal();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--no-first-run"] });
});
afterAll(async () => {
  await browser?.close();
  await p?.close();
});

/** Height in device pixels of the green tmux status line: the longest green run down any pixel column (some columns cross its text). */
async function statusLineHeight(page: Page, png: Buffer): Promise<number> {
  return page.evaluate(
    async ({ data }) => {
      const img = new Image();
      img.src = `data:image/png;base64,${data}`;
      await img.decode();
      const c = document.createElement("canvas");
      c.width = img.width;
      c.height = img.height;
      const g = c.getContext("2d")!;
      g.drawImage(img, 0, 0);
      let best = 0;
      for (let x = 0; x < img.width; x += 3) {
        const px = g.getImageData(x, 0, 1, img.height).data;
        let run = 0;
        for (let y = 0; y < img.height; y++) {
          const [r, gr, b] = [px[y * 4]!, px[y * 4 + 1]!, px[y * 4 + 2]!];
          if (gr > 110 && r < 130 && b < 90 && gr > r + 30) best = Math.max(best, ++run);
          else run = 0;
        }
      }
      return best;
    },
    { data: png.toString("base64") },
  );
}

describe("the default portal page at phone and HiDPI pixel ratios", () => {
  for (const dpr of [1, 2, 2.625, 3]) {
    it(`draws glyphs at the fitted size at devicePixelRatio ${dpr}`, async () => {
      const context = await browser.newContext({ viewport: { width: 390, height: 700 }, deviceScaleFactor: dpr });
      const page = await context.newPage();
      await page.goto(`${p.url}/portal/#token=${p.token}`); // the default page: no renderer override
      await page.waitForSelector('body[data-state="connected"]', { timeout: 30_000 });
      await page.waitForFunction((t) => (window as any).picortexPortal.text().includes(t), PROMPT, { timeout: 30_000 });
      await page.waitForTimeout(300); // let the renderer paint the redraw

      const m = await page.evaluate(() => {
        const w = window as any;
        const screen = document.querySelector("#terminal .xterm-screen")!.getBoundingClientRect();
        const host = document.querySelector("#terminal")!;
        const cs = getComputedStyle(host);
        const avail = host.getBoundingClientRect().width - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
        // The font's advance width, measured by the browser's own text layout.
        const probe = document.createElement("span");
        const xt = getComputedStyle(document.querySelector("#terminal .xterm-rows, #terminal .xterm-helper-textarea")!);
        probe.style.cssText = `position:absolute;visibility:hidden;white-space:pre;font-family:${w.picortexPortal.font().family};font-size:${w.picortexPortal.font().size}px`;
        probe.textContent = "W".repeat(100);
        document.body.appendChild(probe);
        const charWidth = probe.getBoundingClientRect().width / 100;
        probe.remove();
        void xt;
        return { size: w.picortexPortal.size(), renderer: w.picortexPortal.renderer(), screen: screen.toJSON(), avail, charWidth, canvasOk: w.picortexPortal.canvasMatchesPixelRatio() };
      });
      const expectedCols = Math.floor((m.avail - 14) / m.charWidth); // minus the scrollbar gutter
      expect(Math.abs(m.size.cols - expectedCols), JSON.stringify(m)).toBeLessThanOrEqual(Math.ceil(14 / m.charWidth) + 1);

      const png = await page.screenshot({ clip: { x: m.screen.x, y: m.screen.y, width: m.screen.width, height: m.screen.height } });
      await page.screenshot({ path: join(ARTIFACTS, `default-dpr-${dpr}.png`) });
      const cellCss = m.screen.height / m.size.rows;
      const band = await statusLineHeight(page, png);
      // One row of the status line: cell height in device pixels (a little slack for rounding).
      expect(band, `status line ${band}px, cell ${cellCss} css px at dpr ${dpr}, renderer ${m.renderer}`).toBeGreaterThan(cellCss * dpr * 0.6);
      expect(band, `status line ${band}px, cell ${cellCss} css px at dpr ${dpr}, renderer ${m.renderer}`).toBeLessThan(cellCss * dpr * 1.5);
      expect(m.canvasOk, JSON.stringify(m)).toBe(true);
      await context.close();
    }, 120_000);
  }

  it("?renderer=webgl at devicePixelRatio 3 falls back to the DOM renderer when the canvas is mis-sized", async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 700 }, deviceScaleFactor: 3 });
    const page = await context.newPage();
    await page.goto(`${p.url}/portal/?renderer=webgl#token=${p.token}`);
    await page.waitForSelector('body[data-state="connected"]', { timeout: 30_000 });
    await page.waitForFunction((t) => (window as any).picortexPortal.text().includes(t), PROMPT, { timeout: 30_000 });
    await page.waitForFunction(() => (window as any).picortexPortal.canvasMatchesPixelRatio(), undefined, { timeout: 10_000 });
    expect(await page.evaluate(() => (window as any).picortexPortal.canvasMatchesPixelRatio())).toBe(true);
    await context.close();
  }, 120_000);
});
