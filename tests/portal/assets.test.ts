import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildPortalAssets, loadPortalAssets } from "../../agent-runtime/portal/assets.js";

const dir = mkdtempSync(join(tmpdir(), "pcx-portal-assets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("portal page assets", () => {
  it("prebuilds a self-contained page the server then serves as is", async () => {
    await buildPortalAssets(dir);
    const files = readdirSync(dir).sort();
    expect(files).toEqual(expect.arrayContaining(["index.html", "manifest.json"]));
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as { js: string; css: string };
    expect(manifest.js).toMatch(/^app-[A-Z0-9]+\.js$/);
    const js = readFileSync(join(dir, manifest.js), "utf8");
    // xterm.js and every addon the page uses are inside the bundle, nothing is fetched.
    for (const marker of ["xterm-helper-textarea", "webgl2", "visualViewport", "csp-nonce"]) expect(js.includes(marker), marker).toBe(true);
    expect(/https?:\/\/(cdn|unpkg|jsdelivr)/.test(js), "no CDN URL").toBe(false);
    const index = readFileSync(join(dir, "index.html"), "utf8");
    expect(index).toContain(`assets/${manifest.js}`);
    expect(index).toContain("__NONCE__");

    const loaded = await loadPortalAssets(dir);
    expect(loaded.source).toBe("prebuilt");
    expect(loaded.files.get(manifest.js)?.body.toString("utf8") === js, "served bytes equal the prebuilt file").toBe(true);
    await expect(loadPortalAssets(join(dir, "missing"))).rejects.toThrow(/buildPortalAssets/);
  });
});
