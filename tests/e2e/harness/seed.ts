import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The NoCloud seed a cloud would hand the server: `user-data` is the cloud-config
 * exactly as the workspace stack renders it; `meta-data` names the instance;
 * `network-config` is the only part the harness adds, because the link is ours.
 */
export interface SeedInput {
  userData: string;
  instanceId: string;
  hostname: string;
  networkConfig: string;
}

export function writeSeed(dir: string, seed: SeedInput): string {
  if (!seed.userData.startsWith("#cloud-config")) {
    throw new Error("user-data must be a #cloud-config document (renderHost().cloudConfig)");
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, "user-data"), seed.userData);
  writeFileSync(join(dir, "meta-data"), `instance-id: ${seed.instanceId}\nlocal-hostname: ${seed.hostname}\n`);
  writeFileSync(join(dir, "network-config"), seed.networkConfig);
  return dir;
}
