import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { buildRelease, shipPackageFile, type ReleaseResult } from "../../scripts/lib/bundle-release.js";
import { buildTar, releaseHash, TarPathError } from "../../scripts/lib/deterministic-tar.js";

const repoRoot = resolve(import.meta.dirname, "../..");
const work = mkdtempSync(join(tmpdir(), "picortex-bundle-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("deterministic tar", () => {
  it("orders entries byte-wise, adds parent directories and fixes mtime/uid/gid", () => {
    const tar = buildTar([
      { path: "b/z.txt", data: Buffer.from("z") },
      { path: "a.txt", data: Buffer.from("a") },
      { path: "b/run", data: Buffer.from("#!/bin/sh\n"), executable: true },
    ]);
    const file = join(work, "t.tar");
    writeFileSync(file, tar);
    const listing = execFileSync("tar", ["--numeric-owner", "--full-time", "-tvf", file], { encoding: "utf8", env: { ...process.env, TZ: "UTC" } })
      .trim()
      .split("\n");
    expect(listing.map((l) => l.split(/\s+/).pop())).toEqual(["a.txt", "b/", "b/run", "b/z.txt"]);
    for (const line of listing) {
      expect(line).toContain(" 0/0 ");
      expect(line).toContain("1970-01-01 00:00:00");
    }
    expect(listing[2]!.startsWith("-rwxr-xr-x")).toBe(true);
    expect(listing[3]!.startsWith("-rw-r--r--")).toBe(true);
  });

  it("gives the same bytes whatever order entries arrive in", () => {
    const entries = [
      { path: "x/1", data: Buffer.from("1") },
      { path: "x/2", data: Buffer.from("2") },
      { path: "y", data: Buffer.from("y") },
    ];
    expect(buildTar(entries).equals(buildTar([...entries].reverse()))).toBe(true);
    expect(releaseHash(buildTar(entries))).toMatch(/^[a-f0-9]{16}$/);
  });

  it("handles names longer than 100 characters with the ustar prefix field", () => {
    const long = "node_modules/" + "d".repeat(90) + "/" + "f".repeat(60) + ".js";
    const file = join(work, "long.tar");
    writeFileSync(file, buildTar([{ path: long, data: Buffer.from("x") }]));
    expect(execFileSync("tar", ["-tf", file], { encoding: "utf8" })).toContain(long);
  });

  it("refuses unsafe or ambiguous paths", () => {
    for (const bad of ["/etc/passwd", "../x", "a/../b", "a//b", "./a", ""]) {
      expect(() => buildTar([{ path: bad, data: Buffer.from("") }])).toThrow(TarPathError);
    }
    expect(() => buildTar([{ path: "a", data: Buffer.from("") }, { path: "a", data: Buffer.from("") }])).toThrow(/duplicate/);
    expect(() => buildTar([{ path: "a", data: Buffer.from("") }, { path: "a/b", data: Buffer.from("") }])).toThrow(/both a file and a directory/);
  });
});

describe("which native-module files ship", () => {
  it("keeps sources and the built binary, drops intermediates and other platforms", () => {
    expect(shipPackageFile("lib/index.js", true)).toBe(true);
    expect(shipPackageFile("binding.gyp", true)).toBe(true);
    expect(shipPackageFile("deps/sqlite3/sqlite3.c", true)).toBe(true);
    expect(shipPackageFile("build/Release/pty.node", true)).toBe(true);
    expect(shipPackageFile("build/Release/pty.node", false)).toBe(false);
    expect(shipPackageFile("build/Release/obj.target/x.o", true)).toBe(false);
    expect(shipPackageFile("build/Makefile", true)).toBe(false);
    expect(shipPackageFile("deps/winpty/src/x.cc", true)).toBe(false);
    expect(shipPackageFile("prebuilds/darwin-arm64/pty.node", true)).toBe(false);
    expect(shipPackageFile("lib/index.js.map", true)).toBe(false);
    expect(shipPackageFile("lib/terminal.test.js", true)).toBe(false);
  });
});

describe("release bundle", () => {
  let first: ReleaseResult;
  let second: ReleaseResult;
  beforeAll(async () => {
    first = await buildRelease({ repoRoot, outDir: join(work, "one") });
    second = await buildRelease({ repoRoot, outDir: join(work, "two") });
  });

  it("is reproducible: two builds of the same source give the same hash and bytes", () => {
    expect(first.hash).toMatch(/^[a-f0-9]{16}$/);
    expect(second.hash).toBe(first.hash);
    expect(readFileSync(second.tarball).equals(readFileSync(first.tarball))).toBe(true);
    expect(readFileSync(second.manifestPath, "utf8")).toBe(readFileSync(first.manifestPath, "utf8"));
    // latest.json is the newest manifest, for stacks that do not pin a hash.
    expect(readFileSync(join(work, "one", "latest.json"), "utf8")).toBe(readFileSync(first.manifestPath, "utf8"));
  });

  it("names the release by the SHA-256 of the uncompressed tar (what the host re-checks)", () => {
    const tar = gunzipSync(readFileSync(first.tarball));
    expect(createHash("sha256").update(tar).digest("hex").startsWith(first.hash)).toBe(true);
    expect(first.tarball.endsWith(`${first.hash}.tar.gz`)).toBe(true);
  });

  it("changes hash when the source changes", async () => {
    // A fixed path, so esbuild's path comments are identical between the two builds.
    const dir = join(work, "changed-src");
    mkdirSync(dir, { recursive: true });
    const entry = join(dir, "entry.ts");
    const real = join(repoRoot, "agent-runtime/cli/picortex.ts");
    writeFileSync(entry, `import ${JSON.stringify(real)};\nexport const marker = "A";\n`);
    const a = await buildRelease({ repoRoot, outDir: join(work, "a"), entryPoint: entry });
    const a2 = await buildRelease({ repoRoot, outDir: join(work, "a2"), entryPoint: entry });
    writeFileSync(entry, `import ${JSON.stringify(real)};\nexport const marker = "B";\n`);
    const b = await buildRelease({ repoRoot, outDir: join(work, "b"), entryPoint: entry });
    expect(a2.hash).toBe(a.hash);
    expect(b.hash).not.toBe(a.hash);
  });

  it("writes a manifest without timestamps, with pinned native versions from the lockfile", () => {
    const text = readFileSync(first.manifestPath, "utf8");
    expect(text).not.toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/);
    const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8"));
    const m = JSON.parse(text);
    expect(m.hash).toBe(first.hash);
    expect(m.natives.versions["better-sqlite3"]).toBe(lock.packages["node_modules/better-sqlite3"].version);
    expect(m.natives.versions["node-pty"]).toBe(lock.packages["node_modules/node-pty"].version);
    expect(m.node.abi).toBe(process.versions.modules);
    const paths = m.files.map((f: { path: string }) => f.path);
    expect(paths).toContain("picortex.mjs");
    expect(paths).toContain("package-lock.json");
    expect(paths).toContain("node_modules/better-sqlite3/build/Release/better_sqlite3.node");
    expect(paths).toContain("node_modules/node-pty/build/Release/pty.node");
    expect([...paths].sort()).toEqual(paths);
  });

  it("unpacks into a runnable release: the CLI starts and the native modules load", () => {
    const dir = join(work, "unpacked");
    mkdirSync(dir);
    execFileSync("tar", ["-xzf", first.tarball, "-C", dir]);
    const help = execFileSync(process.execPath, [join(dir, "picortex.mjs"), "--help"], { encoding: "utf8", cwd: work });
    expect(help).toContain("serve");
    const check = execFileSync(process.execPath, ["native-check.cjs"], { encoding: "utf8", cwd: dir });
    expect(check).toContain("native modules ok");
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    expect(Object.keys(pkg.dependencies).sort()).toEqual(["better-sqlite3", "node-pty"]);
    const lock = JSON.parse(readFileSync(join(dir, "package-lock.json"), "utf8"));
    expect(lock.lockfileVersion).toBe(3);
    expect(lock.packages[""].dependencies).toEqual(pkg.dependencies);
  });

  it("has a CLI with --help and --json", () => {
    const tsx = join(repoRoot, "node_modules/.bin/tsx");
    expect(execFileSync(tsx, ["scripts/bundle.ts", "--help"], { cwd: repoRoot, encoding: "utf8" })).toContain("--json");
    const out = execFileSync(tsx, ["scripts/bundle.ts", "--json", "--out", join(work, "cli")], { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const parsed = JSON.parse(out);
    // Not compared with `first`: the working tree may change between builds while developing.
    expect(parsed.hash).toMatch(/^[a-f0-9]{16}$/);
    expect(parsed.tarball).toBe(join(work, "cli", `${parsed.hash}.tar.gz`));
    const tar = gunzipSync(readFileSync(parsed.tarball));
    expect(createHash("sha256").update(tar).digest("hex").startsWith(parsed.hash)).toBe(true);
    expect(JSON.parse(readFileSync(parsed.manifest, "utf8")).hash).toBe(parsed.hash);
  });
});
