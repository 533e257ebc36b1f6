/**
 * Installs the three resource plugins the stacks need into the lane's PULUMI_HOME, with
 * `pulumi plugin install resource <pkg> <version> --file <binary>`:
 *  - by default the provider doubles (tests/engine/providers), through a launcher that
 *    execs `node --import <tsx> main.ts <pkg>` by absolute paths (the launcher file is
 *    copied into PULUMI_HOME, so it cannot find its code relative to itself);
 *  - with PICORTEX_ENGINE_PROVIDERS_DIR, the real provider binaries from that folder
 *    (`pulumi-resource-<pkg>` directly in it, or in `<pkg>/`, or in a
 *    `resource-<pkg>-v<version>/` folder as `pulumi plugin install` lays them out).
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { pinnedProviderVersions, PROVIDER_PACKAGES, REPO_ROOT, type ProviderPackage } from "../providers/versions.js";

const pexec = promisify(execFile);
export const PROVIDERS_DIR_ENV = "PICORTEX_ENGINE_PROVIDERS_DIR";

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
  const out: InstalledPlugin[] = [];
  mkdirSync(opts.scratch, { recursive: true });
  for (const pkg of PROVIDER_PACKAGES) {
    const version = versions[pkg];
    let file: string;
    let kind: InstalledPlugin["kind"];
    if (realDir) {
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
