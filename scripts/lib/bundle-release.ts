/**
 * Builds a content-hashed, reproducible runtime release:
 *
 *   picortex.mjs        esbuild bundle of agent-runtime/cli/picortex.ts (ESM, node22)
 *   portal-assets/…     static portal assets (agent-runtime/portal's buildPortalAssets), where
 *                       the portal looks for them: beside the bundled entry file
 *   package.json        the native modules only, pinned to the repository's lockfile
 *   package-lock.json
 *   node_modules/…      their dependency closure, with prebuilt binaries from this machine
 *   native-check.cjs    proves on the host that the binaries load (else the host rebuilds)
 *   manifest.json       versions, Node ABI, file list with SHA-256; no timestamps
 *
 * The tar is written by deterministic-tar.ts, so the same inputs give the same hash.
 */
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { buildTar, releaseHash, type TarEntry } from "./deterministic-tar.js";
import { deriveNativeLock, NATIVE_MODULES, type Lockfile } from "./native-lock.js";

/** Name of the copy of the newest manifest in the output directory. */
export const LATEST_MANIFEST = "latest.json";

export interface BundleOptions {
  /** Repository root (where package-lock.json lives). */
  repoRoot: string;
  /** Where `<hash>.tar.gz` and `<hash>.json` go. Default `<repoRoot>/dist/release`. */
  outDir?: string;
  /** Entry point, default `agent-runtime/cli/picortex.ts`. */
  entryPoint?: string;
  /** Ship this machine's native binaries (default true). Without them the host must build. */
  prebuiltNatives?: boolean;
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
}

export interface ReleaseManifest {
  name: "picortex";
  version: string;
  entry: "picortex.mjs";
  node: { major: number; abi: string; platform: string; arch: string };
  natives: { versions: Record<string, string>; prebuilt: boolean };
  portalAssets: "portal-assets" | null;
  files: Array<{ path: string; size: number; sha256: string }>;
}

export interface ReleaseResult {
  hash: string;
  tarball: string;
  manifestPath: string;
  tarBytes: number;
  gzipBytes: number;
  manifest: ReleaseManifest;
  warnings: string[];
}

export const NATIVE_CHECK = `// Run by picortex-release install as the unprivileged build user.
"use strict";
const Database = require("better-sqlite3");
const db = new Database(":memory:");
if (db.prepare("select 1 as one").get().one !== 1) throw new Error("better-sqlite3 answered wrongly");
db.close();
const pty = require("node-pty");
const p = pty.spawn("/bin/sh", ["-c", "exit 0"], { cols: 80, rows: 24 });
const timer = setTimeout(() => { console.error("node-pty: child did not exit"); process.exit(1); }, 10000);
p.onExit(({ exitCode }) => {
  clearTimeout(timer);
  if (exitCode !== 0) { console.error("node-pty: child exited " + exitCode); process.exit(1); }
  console.log("native modules ok (abi " + process.versions.modules + ")");
  process.exit(0);
});
`;

/** Files of an installed native-module package that a host needs to load or rebuild it. */
export function shipPackageFile(pkgRel: string, prebuilt: boolean): boolean {
  const parts = pkgRel.split("/");
  const top = parts[0]!;
  if (pkgRel.endsWith(".map") || /\.test\.js$/.test(pkgRel)) return false;
  if (top === "node_modules" || top === "test" || top === ".github") return false;
  if (top === "build") return prebuilt && parts[1] === "Release" && parts.length === 3 && pkgRel.endsWith(".node");
  // Windows/macOS-only parts of node-pty (winpty, conpty, darwin prebuilds).
  if (top === "prebuilds" || top === "third_party" || (top === "deps" && parts[1] === "winpty")) return false;
  return true;
}

function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    // lstat: a symlink is neither followed (cycles, files outside the package) nor
    // shipped (the host refuses releases with links).
    const st = lstatSync(full);
    if (st.isDirectory()) out.push(...walk(full, base));
    else if (st.isFile()) out.push(relative(base, full).split(sep).join("/"));
  }
  return out;
}

function fileEntry(path: string, full: string): TarEntry {
  const st = statSync(full);
  return { path, data: readFileSync(full), executable: (st.mode & 0o111) !== 0 };
}

type PortalBuilder = (outDir: string) => unknown;

/** Finds `export … function buildPortalAssets` in agent-runtime/portal/*.ts without assuming a file name. */
async function findPortalBuilder(repoRoot: string): Promise<PortalBuilder | undefined> {
  const dir = join(repoRoot, "agent-runtime", "portal");
  if (!existsSync(dir)) return undefined;
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith(".ts") || name.endsWith(".d.ts") || name.endsWith(".test.ts")) continue;
    const text = readFileSync(join(dir, name), "utf8");
    if (!/export\s+(async\s+)?function\s+buildPortalAssets\b|export\s+const\s+buildPortalAssets\b/.test(text)) continue;
    const mod = (await import(pathToFileURL(join(dir, name)).href)) as { buildPortalAssets?: PortalBuilder };
    if (typeof mod.buildPortalAssets === "function") return mod.buildPortalAssets;
  }
  return undefined;
}

/**
 * Trigger: the portal's asset manifest records `builtAt`.
 * Why: a wall-clock time would give every build a new hash; the portal never reads it.
 * Outcome: the field is dropped from the shipped copy.
 */
function stripBuildTime(data: Buffer): Buffer {
  const manifest = JSON.parse(data.toString("utf8")) as Record<string, unknown>;
  if (!("builtAt" in manifest)) return data;
  delete manifest.builtAt;
  return Buffer.from(JSON.stringify(manifest, null, 2) + "\n");
}

export async function buildRelease(opts: BundleOptions): Promise<ReleaseResult> {
  const repoRoot = resolve(opts.repoRoot);
  const outDir = resolve(opts.outDir ?? join(repoRoot, "dist", "release"));
  const prebuilt = opts.prebuiltNatives ?? true;
  const progress = opts.progress ?? (() => {});
  const warnings: string[] = [];
  const entries: TarEntry[] = [];
  const rootPkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string };

  progress("bundling agent-runtime with esbuild");
  const result = await build({
    absWorkingDir: repoRoot, // path comments in the output are relative to this: clone-location independent
    entryPoints: [opts.entryPoint ?? "agent-runtime/cli/picortex.ts"],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    write: false,
    outfile: "picortex.mjs",
    // esbuild: the portal imports it lazily only to build its page when no prebuilt
    // assets exist; the release ships them, so hosts never load it.
    external: [...NATIVE_MODULES, "esbuild"],
    legalComments: "none",
    logLevel: "silent",
    // CommonJS dependencies call require() for Node built-ins; ESM output has none.
    banner: {
      js: 'import { createRequire as __picortexCreateRequire } from "node:module";\nconst require = __picortexCreateRequire(import.meta.url);',
    },
  });
  for (const w of result.warnings) warnings.push(`esbuild: ${w.text}`);
  const js = result.outputFiles.find((f) => f.path.endsWith("picortex.mjs"));
  if (!js) throw new Error("esbuild produced no picortex.mjs");
  entries.push({ path: "picortex.mjs", data: Buffer.from(js.contents), executable: true });

  progress("building portal assets");
  let portalAssets: "portal-assets" | null = null;
  const builder = await findPortalBuilder(repoRoot);
  if (!builder) {
    warnings.push("agent-runtime/portal does not export buildPortalAssets(outDir) yet: the release has no portal assets");
  } else {
    const tmp = mkdtempSync(join(tmpdir(), "picortex-portal-"));
    try {
      await builder(tmp);
      for (const rel of walk(tmp)) {
        const entry = fileEntry(`portal-assets/${rel}`, join(tmp, rel));
        if (rel === "manifest.json") entry.data = stripBuildTime(entry.data);
        entries.push(entry);
      }
      portalAssets = "portal-assets";
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  progress("deriving the native modules' lockfile");
  const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as Lockfile;
  const native = deriveNativeLock(lock, { name: "picortex-release", version: rootPkg.version });
  entries.push({ path: "package.json", data: Buffer.from(JSON.stringify(native.packageJson, null, 2) + "\n") });
  entries.push({ path: "package-lock.json", data: Buffer.from(JSON.stringify(native.packageLock, null, 2) + "\n") });
  entries.push({ path: "native-check.cjs", data: Buffer.from(NATIVE_CHECK) });

  progress(`copying ${native.closure.length} native-module packages${prebuilt ? " with prebuilt binaries" : ""}`);
  for (const key of native.closure) {
    const pkgDir = join(repoRoot, key);
    if (!existsSync(pkgDir)) throw new Error(`${key} is in the lockfile but not installed: run npm install`);
    const want = (lock.packages[key]?.version ?? "") as string;
    const have = (JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { version: string }).version;
    if (want && have !== want) throw new Error(`${key} is ${have} on disk but ${want} in package-lock.json: run npm install`);
    for (const rel of walk(pkgDir)) {
      if (!shipPackageFile(rel, prebuilt)) continue;
      entries.push(fileEntry(`${key}/${rel}`, join(pkgDir, rel)));
    }
    if (prebuilt && (key === "node_modules/better-sqlite3" || key === "node_modules/node-pty")) {
      const hasBinary = existsSync(join(pkgDir, "build", "Release")) && readdirSync(join(pkgDir, "build", "Release")).some((f) => f.endsWith(".node"));
      if (!hasBinary) throw new Error(`${key} has no build/Release/*.node: run npm rebuild ${key.split("/").pop()}`);
    }
  }

  const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const manifest: ReleaseManifest = {
    name: "picortex",
    version: rootPkg.version,
    entry: "picortex.mjs",
    node: {
      major: Number(process.versions.node.split(".")[0]),
      abi: process.versions.modules,
      platform: process.platform,
      arch: process.arch,
    },
    natives: { versions: native.versions, prebuilt },
    portalAssets,
    files: sorted.map((e) => ({ path: e.path, size: e.data.length, sha256: createHash("sha256").update(e.data).digest("hex") })),
  };
  entries.push({ path: "manifest.json", data: Buffer.from(JSON.stringify(manifest, null, 2) + "\n") });

  progress(`writing the tarball (${entries.length} files)`);
  const tar = buildTar(entries);
  const hash = releaseHash(tar);
  const gz = gzipSync(tar, { level: 9 });
  mkdirSync(outDir, { recursive: true });
  const tarball = join(outDir, `${hash}.tar.gz`);
  const manifestPath = join(outDir, `${hash}.json`);
  writeFileSync(tarball, gz);
  const manifestText = JSON.stringify({ hash, tarball: `${hash}.tar.gz`, tarBytes: tar.length, gzipBytes: gz.length, ...manifest }, null, 2) + "\n";
  writeFileSync(manifestPath, manifestText);
  // The workspace stack reads latest.json by default (readReleaseManifest), so a fresh
  // bundle is picked up without editing stack config.
  writeFileSync(join(outDir, LATEST_MANIFEST), manifestText);
  progress(`release ${hash}: ${(gz.length / 1e6).toFixed(1)} MB compressed`);
  return { hash, tarball, manifestPath, tarBytes: tar.length, gzipBytes: gz.length, manifest, warnings };
}
