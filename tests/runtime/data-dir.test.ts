/** Issue 16 item 4: the one data dir rule (config/data-dir.ts), as a pure function of the file tree. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { defaultDataDir, findDataDir } from "../../agent-runtime/config/data-dir.js";
import { loadRuntimeConfig } from "../../agent-runtime/config/load.js";

const root = mkdtempSync(join(tmpdir(), "pcx-data-dir-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("data dir rule", () => {
  it("finds the nearest runtime .picortex above the current folder, as git finds .git", () => {
    const clone = join(root, "clone");
    mkdirSync(join(clone, ".picortex"), { recursive: true });
    writeFileSync(join(clone, ".picortex", "api-token"), "pct_x\n");
    mkdirSync(join(clone, "a", "b"), { recursive: true });
    expect(findDataDir(join(clone, "a", "b"))).toBe(join(clone, ".picortex"));
    expect(loadRuntimeConfig({ env: {}, cwd: join(clone, "a", "b") }).dataDir).toBe(join(clone, ".picortex"));
  });

  it("skips a brain-only ~/.picortex (no runtime files), and defaults to ./.picortex", () => {
    const home = join(root, "home");
    mkdirSync(join(home, ".picortex"), { recursive: true });
    writeFileSync(join(home, ".picortex", "brain.sqlite"), "");
    mkdirSync(join(home, "work"), { recursive: true });
    expect(findDataDir(join(home, "work"))).toBeUndefined();
    expect(defaultDataDir(join(home, "work"))).toBe(join(home, "work", ".picortex"));
  });

  it("--data-dir and PICORTEX_DATA_DIR win over the search", () => {
    const cwd = join(root, "clone", "a");
    expect(loadRuntimeConfig({ env: { PICORTEX_DATA_DIR: "/srv/x" }, cwd }).dataDir).toBe("/srv/x");
    expect(loadRuntimeConfig({ env: { PICORTEX_DATA_DIR: "/srv/x" }, overrides: { dataDir: "rel" }, cwd }).dataDir).toBe(join(cwd, "rel"));
  });
});
