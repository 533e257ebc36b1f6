/**
 * The Pulumi CLI toolchain (scripts/pulumi-toolchain.ts): the cache key follows go.mod,
 * go.sum and the Go version and nothing else, the pin is checked, and the script's
 * usage errors are clear. No build here (the engine lane builds and uses the CLI).
 */
import { describe, expect, it } from "vitest";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { buildArgs, cacheKey, MODULE_DIR, pinnedVersion, REPO_ROOT, ToolchainError, VERSION_SYMBOL } from "../../scripts/lib/pulumi-toolchain.js";

function copyModule(): string {
  const dir = mkdtempSync(join(tmpdir(), "pulumi-toolchain-"));
  cpSync(join(MODULE_DIR, "go.mod"), join(dir, "go.mod"));
  cpSync(join(MODULE_DIR, "go.sum"), join(dir, "go.sum"));
  return dir;
}

describe("pulumi toolchain", () => {
  it("pins pkg/v3 and sdk/v3 at one version, with the clipboard replace pkg/v3 needs", () => {
    const mod = readFileSync(join(MODULE_DIR, "go.mod"), "utf8");
    expect(pinnedVersion()).toMatch(/^v3\.\d+\.\d+$/);
    expect(mod).toMatch(/^replace github\.com\/atotto\/clipboard => /m);
    expect(mod).toMatch(/^tool github\.com\/pulumi\/pulumi\/pkg\/v3\/cmd\/pulumi$/m);
  });

  it("refuses a go.mod whose sdk/v3 differs from pkg/v3", () => {
    const dir = copyModule();
    const mod = readFileSync(join(dir, "go.mod"), "utf8").replace(/(github\.com\/pulumi\/pulumi\/sdk\/v3 )v[\d.]+/, "$1v3.1.0");
    writeFileSync(join(dir, "go.mod"), mod);
    expect(() => pinnedVersion(dir)).toThrow(ToolchainError);
  });

  it("keys the cache by go.sum and the Go version, and stamps the version", () => {
    const dir = copyModule();
    const v = pinnedVersion(dir);
    const k = cacheKey(dir, "go version go1.26.8 linux/amd64", v);
    expect(cacheKey(dir, "go version go1.26.8 linux/amd64", v)).toBe(k);
    expect(cacheKey(dir, "go version go1.26.9 linux/amd64", v)).not.toBe(k);
    writeFileSync(join(dir, "go.sum"), readFileSync(join(dir, "go.sum"), "utf8") + "example.com/x v1.0.0 h1:AAAA=\n");
    expect(cacheKey(dir, "go version go1.26.8 linux/amd64", v)).not.toBe(k);
    const args = buildArgs(v, "/out/pulumi");
    expect(args).toContain("-trimpath");
    expect(args.join(" ")).toContain(`-X ${VERSION_SYMBOL}=${v}`);
  });

  it("the script explains itself and rejects bad usage", () => {
    const tsx = join(REPO_ROOT, "node_modules/.bin/tsx");
    const help = execFileSync(tsx, ["scripts/pulumi-toolchain.ts", "--help"], { cwd: REPO_ROOT, encoding: "utf8" });
    expect(help).toContain("--json");
    const bad = spawnSync(tsx, ["scripts/pulumi-toolchain.ts", "--check", "--rebuild"], { cwd: REPO_ROOT, encoding: "utf8" });
    expect(bad.status).toBe(2);
    const rel = spawnSync(tsx, ["scripts/pulumi-toolchain.ts", "--check", "--cache-dir", "relative/dir"], { cwd: REPO_ROOT, encoding: "utf8" });
    expect(rel.status).toBe(1);
    expect(rel.stderr).toContain("absolute path");
  }, 60_000);
});
