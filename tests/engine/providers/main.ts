/**
 * Entry of the provider doubles: `node --import <tsx> main.ts <package> [engine address]`.
 * The launcher installed as pulumi-resource-<package> (harness/plugins.ts) execs this.
 * The version answered to GetPluginInfo is the one package-lock.json pins for the SDK.
 */
import { serve, type ProviderDef } from "./framework.js";
import { hcloudProvider } from "./hcloud.js";
import { tailscaleProvider } from "./tailscale.js";
import { commandProvider } from "./command.js";
import { pinnedProviderVersions } from "./versions.js";

const [pkg, ...rest] = process.argv.slice(2);
const versions = pinnedProviderVersions();
const factories: Record<string, (v: string) => ProviderDef> = { hcloud: hcloudProvider, tailscale: tailscaleProvider, command: commandProvider };
const make = pkg ? factories[pkg] : undefined;
if (!make) {
  process.stderr.write(`provider double: unknown package ${JSON.stringify(pkg)}; expected one of ${Object.keys(factories).join(", ")}\n`);
  process.exit(2);
}
await serve(make(versions[pkg as keyof typeof versions]), rest);
