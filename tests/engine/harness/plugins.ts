/**
 * Installs the three resource plugins the stacks need into the lane's PULUMI_HOME, with
 * `pulumi plugin install resource <pkg> <version> --file <binary>`:
 *  - by default the provider doubles (tests/engine/providers), through a launcher that
 *    execs `node --import <tsx> main.ts <pkg>` by absolute paths (the launcher file is
 *    copied into PULUMI_HOME, so it cannot find its code relative to itself);
 *  - with PICORTEX_ENGINE_PROVIDERS_DIR, the real provider binaries from that folder
 *    (`pulumi-resource-<pkg>` directly in it, or in `<pkg>/`, or in a
 *    `resource-<pkg>-v<version>/` folder as `pulumi plugin install` lays them out);
 *    PICORTEX_ENGINE_REAL_PROVIDERS=hcloud,tailscale takes only those from the folder
 *    and the doubles for the rest (every lane prints which is which).
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { pinnedProviderVersions, PROVIDER_PACKAGES, REPO_ROOT, type ProviderPackage } from "../providers/versions.js";

const pexec = promisify(execFile);
export const PROVIDERS_DIR_ENV = "PICORTEX_ENGINE_PROVIDERS_DIR";
export const REAL_PROVIDERS_ENV = "PICORTEX_ENGINE_REAL_PROVIDERS";

/** Which packages come from the real providers' folder (all three unless narrowed). */
export function realPackages(env: NodeJS.ProcessEnv): ProviderPackage[] {
  if (!env[PROVIDERS_DIR_ENV]) return [];
  const list = env[REAL_PROVIDERS_ENV];
  if (!list) return [...PROVIDER_PACKAGES];
  const names = list.split(",").map((x) => x.trim()).filter(Boolean);
  for (const n of names) {
    if (!(PROVIDER_PACKAGES as readonly string[]).includes(n)) throw new Error(`${REAL_PROVIDERS_ENV}=${list}: unknown package ${n} (expected some of ${PROVIDER_PACKAGES.join(", ")})`);
  }
  return names as ProviderPackage[];
}

export interface InstalledPlugin {
  pkg: ProviderPackage;
  version: string;
  kind: "double" | "real";
  source: string;
}

export function realProviderBinary(dir: string, pkg: string, version: string): string | undefined {
  const candidates = [
    join(dir, `pulumi-resource-${pkg}`),
    join(dir, pkg, `pulumi-resource-${pkg}`),
    join(dir, `resource-${pkg}-v${version}`, `pulumi-resource-${pkg}`),
  ];
  return candidates.find((c) => existsSync(c));
}

/** `lane` (the lane's root) is passed as a marker, so the lane can find its plugins' processes. */
export function launcherScript(pkg: string, lane = ""): string {
  const tsx = join(REPO_ROOT, "node_modules/tsx/dist/loader.mjs");
  const main = join(REPO_ROOT, "tests/engine/providers/main.ts");
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  // exec: the engine's kill reaches node itself, so no orphan is left behind.
  const marker = lane ? ` --picortex-lane=${q(lane)}` : "";
  return `#!/bin/sh\nexec ${q(process.execPath)} --import ${q(tsx)} ${q(main)} ${q(pkg)}${marker} "$@"\n`;
}

export async function installPlugins(opts: { pulumi: string; env: NodeJS.ProcessEnv; scratch: string; lane?: string }): Promise<InstalledPlugin[]> {
  const versions = pinnedProviderVersions();
  const realDir = opts.env[PROVIDERS_DIR_ENV] ?? process.env[PROVIDERS_DIR_ENV];
  const real = realPackages({ ...process.env, ...opts.env });
  const out: InstalledPlugin[] = [];
  mkdirSync(opts.scratch, { recursive: true });
  for (const pkg of PROVIDER_PACKAGES) {
    const version = versions[pkg];
    let file: string;
    let kind: InstalledPlugin["kind"];
    if (realDir && real.includes(pkg)) {
      const found = realProviderBinary(realDir, pkg, version);
      if (!found) throw new Error(`${PROVIDERS_DIR_ENV}=${realDir} has no pulumi-resource-${pkg} (looked for ${pkg}/, resource-${pkg}-v${version}/ and the folder itself)`);
      file = found;
      kind = "real";
    } else {
      file = join(opts.scratch, `pulumi-resource-${pkg}`);
      writeFileSync(file, launcherScript(pkg, opts.lane));
      chmodSync(file, 0o755);
      kind = "double";
    }
    await pexec(opts.pulumi, ["plugin", "install", "resource", pkg, version, "--file", file], { env: opts.env, timeout: 120_000 });
    out.push({ pkg, version, kind, source: file });
  }
  return out;
}

export function describePlugins(plugins: InstalledPlugin[]): string {
  return plugins.map((p) => `${p.pkg} ${p.version} (${p.kind === "real" ? `real provider ${p.source}` : "provider double tests/engine/providers"})`).join(", ");
}
