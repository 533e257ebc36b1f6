import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The page's files: bundled at build time from the installed, version-pinned @xterm packages. */
export interface PortalAssets {
  /** `index.html` with `__NONCE__` left for the per-response CSP nonce. */
  indexTemplate: string;
  /** Hashed file names (`app-<hash>.js`, `app-<hash>.css`) → content. */
  files: Map<string, { body: Buffer; type: string; etag: string }>;
  source: "prebuilt" | "built-at-startup";
}

interface Manifest {
  js: string;
  css: string;
  builtAt: string;
}

const PAGE_DIR = fileURLToPath(new URL("./page/", import.meta.url));
/** Where the deploy bundle puts prebuilt assets: beside the bundled entry file. */
const BESIDE_BUNDLE = fileURLToPath(new URL("./portal-assets/", import.meta.url));

const TYPES: Record<string, string> = { ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

function entry(name: string, body: Buffer) {
  const ext = name.slice(name.lastIndexOf("."));
  return { body, type: TYPES[ext] ?? "application/octet-stream", etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` };
}

async function bundle(): Promise<{ js: { name: string; body: Buffer }; css: { name: string; body: Buffer }; index: string }> {
  // esbuild is a build-time dependency: only loaded when there is no prebuilt page.
  let esbuild: typeof import("esbuild");
  try {
    esbuild = await import("esbuild");
  } catch {
    throw new Error(
      `The portal page is not prebuilt (no ${join(BESIDE_BUNDLE, "manifest.json")}) and esbuild is not installed to build it. ` +
        "Build it into the release with buildPortalAssets(<release>/portal-assets), or set portal.assetsDir.",
    );
  }
  const result = await esbuild.build({
    entryPoints: { app: join(PAGE_DIR, "main.ts") },
    bundle: true,
    write: false,
    outdir: "/portal-assets",
    entryNames: "[name]-[hash]",
    format: "iife",
    minify: true,
    legalComments: "none",
    target: ["chrome110", "safari16", "firefox115"],
    logLevel: "silent",
  });
  const js = result.outputFiles.find((f) => f.path.endsWith(".js"));
  const css = result.outputFiles.find((f) => f.path.endsWith(".css"));
  if (!js || !css) throw new Error("portal page build produced no JS or CSS output");
  const base = (p: string) => p.slice(p.lastIndexOf("/") + 1);
  return {
    js: { name: base(js.path), body: Buffer.from(js.contents) },
    css: { name: base(css.path), body: Buffer.from(css.contents) },
    index: readFileSync(join(PAGE_DIR, "index.html"), "utf8"),
  };
}

function renderIndex(template: string, js: string, css: string): string {
  return template.replace("__APP_JS__", js).replace("__APP_CSS__", css);
}

/**
 * Builds the page into `outDir` (index.html template, hashed JS and CSS, manifest.json).
 * The deploy bundle calls this so hosts never need esbuild.
 */
export async function buildPortalAssets(outDir: string): Promise<{ files: string[] }> {
  const b = await bundle();
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, b.js.name), b.js.body);
  writeFileSync(join(outDir, b.css.name), b.css.body);
  writeFileSync(join(outDir, "index.html"), renderIndex(b.index, b.js.name, b.css.name));
  const manifest: Manifest = { js: b.js.name, css: b.css.name, builtAt: new Date().toISOString() };
  writeFileSync(join(outDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  return { files: [b.js.name, b.css.name, "index.html", "manifest.json"] };
}

function loadPrebuilt(dir: string): PortalAssets {
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Manifest;
  const files = new Map<string, ReturnType<typeof entry>>();
  for (const name of [manifest.js, manifest.css]) files.set(name, entry(name, readFileSync(join(dir, name))));
  return { indexTemplate: readFileSync(join(dir, "index.html"), "utf8"), files, source: "prebuilt" };
}

/** Prebuilt assets when present (configured dir, or beside the bundle), else a build now. */
export async function loadPortalAssets(assetsDir?: string): Promise<PortalAssets> {
  if (assetsDir) {
    if (!existsSync(join(assetsDir, "manifest.json")))
      throw new Error(`portal.assetsDir ${assetsDir} has no manifest.json; build it with buildPortalAssets(dir)`);
    return loadPrebuilt(assetsDir);
  }
  if (existsSync(join(BESIDE_BUNDLE, "manifest.json"))) return loadPrebuilt(BESIDE_BUNDLE);
  const b = await bundle();
  const files = new Map<string, ReturnType<typeof entry>>();
  files.set(b.js.name, entry(b.js.name, b.js.body));
  files.set(b.css.name, entry(b.css.name, b.css.body));
  return { indexTemplate: renderIndex(b.index, b.js.name, b.css.name), files, source: "built-at-startup" };
}

export function newNonce(): string {
  return randomBytes(16).toString("base64");
}
