/**
 * Issue 16 item 11: a fresh clone's `npm install` runs only the install scripts the project
 * reviewed, with npm's strict allow-scripts mode on (.npmrc), and leaves the lockfile as it is.
 *
 * Cheap on purpose: npm plans the install from the lockfile (`--dry-run`, nothing is
 * downloaded or built) in a temporary copy of the manifests, which is where the
 * strict-allow-scripts preflight runs.
 */
import { afterAll, describe, expect, it } from "vitest";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../infra/support/tools.js";

const root = new URL("../..", import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { allowScripts?: Record<string, boolean> };
const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as { packages: Record<string, { version?: string; hasInstallScript?: boolean }> };
const work = mkdtempSync(join(tmpdir(), "picortex-install-scripts-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * The versions whose install scripts were read and approved. npm can pin an approval to a
 * version only when the lockfile records `resolved` URLs, and this registry's npm config
 * (omit-lockfile-registry-resolved) leaves them out, so the pin is kept here: a lockfile that
 * moves one of these packages fails this test until the new version's script is reviewed.
 */
const REVIEWED: Record<string, string> = {
  "@anthropic-ai/claude-code": "2.1.197", // postinstall copies the platform binary over bin/claude.exe
  "better-sqlite3": "12.11.1", // native addon: prebuild-install || node-gyp rebuild
  esbuild: "0.28.2", // postinstall checks/links the platform binary
  "node-pty": "1.1.0", // native addon, no Linux prebuilds
};
/** Scripts the project does not need: denied, so they never run. */
const DENIED = ["@pulumi/command", "cpu-features", "protobufjs", "ssh2"];

function copy(dir: string, allowScripts: Record<string, boolean> | undefined): void {
  mkdirSync(join(dir, "agent-runtime"), { recursive: true });
  const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  if (allowScripts === undefined) delete manifest.allowScripts;
  else manifest.allowScripts = allowScripts;
  writeFileSync(join(dir, "package.json"), JSON.stringify(manifest, null, 2) + "\n");
  copyFileSync(join(root, "package-lock.json"), join(dir, "package-lock.json"));
  copyFileSync(join(root, ".npmrc"), join(dir, ".npmrc"));
  copyFileSync(join(root, "agent-runtime/package.json"), join(dir, "agent-runtime/package.json"));
}

const npm = (cwd: string, ...args: string[]) => run(["npm", ...args, "--prefer-offline", "--no-audit", "--no-fund"], { cwd });

describe("install scripts (allowScripts, strict mode)", () => {
  it("approves exactly the reviewed packages and denies every other package that has an install script", () => {
    const withScripts = Object.entries(lock.packages)
      .filter(([key, p]) => key.includes("node_modules/") && p.hasInstallScript)
      .map(([key, p]) => ({ name: key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length), version: p.version }));
    const names = [...new Set(withScripts.map((p) => p.name))].sort();
    expect(Object.keys(pkg.allowScripts ?? {}).sort()).toEqual(names);
    for (const [name, allowed] of Object.entries(pkg.allowScripts ?? {})) {
      expect(allowed, name).toBe(name in REVIEWED);
      if (!allowed) expect(DENIED).toContain(name);
    }
    for (const p of withScripts.filter((p) => p.name in REVIEWED)) expect(`${p.name}@${p.version}`).toBe(`${p.name}@${REVIEWED[p.name]}`);
  });

  it("a strict install plan passes with the project's policy and fails without it", () => {
    const ok = join(work, "with-policy");
    copy(ok, pkg.allowScripts);
    const r = npm(ok, "install", "--dry-run");
    expect(r.status, r.stderr).toBe(0);

    const bare = join(work, "without-policy");
    copy(bare, undefined);
    const s = npm(bare, "install", "--dry-run");
    expect(s.status).not.toBe(0);
    expect(s.stderr).toContain("allowScripts");
  });

  it("npm install leaves the committed lockfile byte for byte", () => {
    const dir = join(work, "lock");
    copy(dir, pkg.allowScripts);
    const r = npm(dir, "install", "--package-lock-only", "--ignore-scripts");
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(dir, "package-lock.json"), "utf8")).toBe(readFileSync(join(root, "package-lock.json"), "utf8"));
  });
});
