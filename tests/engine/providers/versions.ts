/**
 * The provider plugin versions the program's SDKs ask the engine for: each
 * @pulumi/<pkg> package.json's `pulumi.version` (what `getVersion()` sends with every
 * RegisterResource), read from node_modules, i.e. what package-lock.json pins.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const PROVIDER_PACKAGES = ["hcloud", "tailscale", "command"] as const;
export type ProviderPackage = (typeof PROVIDER_PACKAGES)[number];
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../..");

export function pinnedProviderVersions(root = REPO_ROOT): Record<ProviderPackage, string> {
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as { packages: Record<string, { version?: string }> };
  const out = {} as Record<ProviderPackage, string>;
  for (const p of PROVIDER_PACKAGES) {
    const locked = lock.packages[`node_modules/@pulumi/${p}`]?.version;
    const pkg = JSON.parse(readFileSync(join(root, "node_modules/@pulumi", p, "package.json"), "utf8")) as { version: string; pulumi?: { version?: string } };
    const asked = pkg.pulumi?.version ?? pkg.version;
    if (!locked) throw new Error(`package-lock.json does not pin @pulumi/${p}`);
    if (asked !== locked) throw new Error(`node_modules/@pulumi/${p} asks for plugin ${asked} but package-lock.json pins ${locked}: run npm install`);
    out[p] = locked;
  }
  return out;
}
