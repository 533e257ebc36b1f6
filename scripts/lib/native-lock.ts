/**
 * Derives the release's own package.json and package-lock.json (lockfile v3) for the
 * native modules only, from the repository's lockfile, so the host builds exactly the
 * versions the bundle was tested with (`npm ci --omit=dev` or `npm rebuild`).
 */
export const NATIVE_MODULES = ["better-sqlite3", "node-pty"] as const;

export interface LockPackage {
  version?: string;
  resolved?: string;
  integrity?: string;
  license?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  engines?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  bin?: Record<string, string> | string;
  hasInstallScript?: boolean;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  peer?: boolean;
  link?: boolean;
  [k: string]: unknown;
}

export interface Lockfile {
  name?: string;
  lockfileVersion: number;
  packages: Record<string, LockPackage>;
}

export class NativeLockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NativeLockError";
  }
}

/** Node's resolution on lockfile keys: nearest `node_modules/<name>` walking up from `from`. */
export function resolveLockKey(lock: Lockfile, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const key = base ? `${base}/node_modules/${name}` : `node_modules/${name}`;
    if (lock.packages[key] && !lock.packages[key]!.link) return key;
    if (!base) return undefined;
    const idx = base.lastIndexOf("/node_modules/");
    if (idx >= 0) base = base.slice(0, idx);
    else if (base.startsWith("node_modules/")) base = "";
    else base = base.includes("/") ? base.slice(0, base.lastIndexOf("/")) : "";
  }
}

/** Lockfile key → the path it gets under the release's own node_modules. */
function relocate(key: string): string {
  const idx = key.indexOf("node_modules/");
  return key.slice(idx);
}

export interface NativeManifest {
  packageJson: Record<string, unknown>;
  packageLock: Record<string, unknown>;
  /** Package name → exact version, for the release manifest. */
  versions: Record<string, string>;
  /** Lockfile keys (relocated) of every package in the closure. */
  closure: string[];
}

const KEEP_FIELDS = [
  "version",
  "resolved",
  "integrity",
  "license",
  "dependencies",
  "optionalDependencies",
  "peerDependencies",
  "engines",
  "os",
  "cpu",
  "bin",
  "hasInstallScript",
  "optional",
] as const;

export function deriveNativeLock(
  lock: Lockfile,
  opts: { name: string; version: string; from?: string; modules?: readonly string[] },
): NativeManifest {
  if (lock.lockfileVersion < 2) throw new NativeLockError("package-lock.json must be lockfileVersion 2 or 3 (run npm install with npm ≥ 7)");
  const modules = opts.modules ?? NATIVE_MODULES;
  const from = opts.from ?? "agent-runtime";
  const out: Record<string, LockPackage> = {};
  const versions: Record<string, string> = {};
  const queue: Array<{ key: string; name: string }> = [];
  for (const name of modules) {
    const key = resolveLockKey(lock, from, name);
    if (!key) throw new NativeLockError(`${name} is not in package-lock.json: run \`npm install -w agent-runtime ${name}\``);
    queue.push({ key, name });
  }
  const rootDeps: Record<string, string> = {};
  while (queue.length) {
    const { key, name } = queue.shift()!;
    const target = relocate(key);
    const pkg = lock.packages[key]!;
    if (out[target]) {
      // Hoisted layouts can put two versions at one relocated path: refuse rather than guess.
      if (out[target]!.version !== pkg.version)
        throw new NativeLockError(`${target} is needed at two versions (${out[target]!.version}, ${pkg.version}); dedupe with npm dedupe`);
      continue;
    }
    if (!pkg.version) throw new NativeLockError(`${key} has no version in package-lock.json`);
    const copy: LockPackage = {};
    for (const f of KEEP_FIELDS) if (pkg[f] !== undefined) (copy as Record<string, unknown>)[f] = pkg[f];
    out[target] = copy;
    if ((modules as readonly string[]).includes(name) && target === `node_modules/${name}`) {
      rootDeps[name] = pkg.version;
      versions[name] = pkg.version;
    }
    const deps = { ...(pkg.dependencies ?? {}), ...(pkg.optionalDependencies ?? {}) };
    for (const dep of Object.keys(deps).sort()) {
      const depKey = resolveLockKey(lock, key, dep);
      if (!depKey) {
        if (pkg.optionalDependencies?.[dep]) continue;
        throw new NativeLockError(`${dep} (needed by ${key}) is missing from package-lock.json`);
      }
      queue.push({ key: depKey, name: dep });
    }
  }
  const sortedKeys = Object.keys(out).sort();
  const packages: Record<string, unknown> = {
    "": { name: opts.name, version: opts.version, dependencies: sortObject(rootDeps) },
  };
  for (const k of sortedKeys) packages[k] = out[k];
  const packageJson = {
    name: opts.name,
    version: opts.version,
    private: true,
    description: "picortex runtime release: native modules built on the host (see manifest.json)",
    dependencies: sortObject(rootDeps),
  };
  return {
    packageJson,
    packageLock: { name: opts.name, version: opts.version, lockfileVersion: 3, requires: true, packages },
    versions: sortObject(versions),
    closure: sortedKeys,
  };
}

function sortObject<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
