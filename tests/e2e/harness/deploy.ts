import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { progress } from "./log.js";
import type { HostSession } from "./ssh.js";

/**
 * Deploys a runtime release over the admin's ssh session with the commands the
 * RuntimeDeployment component runs (host contract): wait for cloud-init, upload the
 * tarball and the runtime settings to ~/incoming, then
 * `sudo -n picortex-release install <hash>` and `sudo -n picortex-release activate <hash>`.
 */
export const RELEASE_HELPER = "/usr/local/sbin/picortex-release";

export interface RuntimeSettings {
  runtimeConfig: Record<string, unknown>;
  anthropicApiKey: string;
  apiToken: string;
}

export interface DeployInput {
  session: HostSession;
  adminUser: string;
  hash: string;
  tarball: string;
  settings: RuntimeSettings;
  /** Local scratch dir for the settings file (0600; it carries the key and token). */
  workDir: string;
}

export async function deployRelease(d: DeployInput): Promise<{ install: string; activate: string }> {
  if (!/^[a-f0-9]{12,64}$/.test(d.hash)) throw new Error(`release hash ${d.hash} is not 12-64 lowercase hex`);
  const incoming = `/home/${d.adminUser}/incoming`;
  await d.session.check(["cloud-init", "status", "--wait"], { timeoutMs: 600_000 });
  await d.session.check(["mkdir", "-p", "-m", "0700", incoming]);
  progress("deploy", `uploading ${d.hash}.tar.gz`);
  await d.session.putFile(d.tarball, `${incoming}/${d.hash}.tar.gz`);
  const settingsFile = join(d.workDir, "runtime-settings.json");
  writeFileSync(settingsFile, JSON.stringify(d.settings), { mode: 0o600 });
  await d.session.putFile(settingsFile, `${incoming}/runtime-settings.json`);
  await d.session.check(["chmod", "0600", `${incoming}/runtime-settings.json`]);
  progress("deploy", `sudo -n ${RELEASE_HELPER} install ${d.hash}`);
  const install = await d.session.check(["sudo", "-n", RELEASE_HELPER, "install", d.hash], { timeoutMs: 600_000 });
  progress("deploy", `sudo -n ${RELEASE_HELPER} activate ${d.hash}`);
  const activate = await d.session.check(["sudo", "-n", RELEASE_HELPER, "activate", d.hash], { timeoutMs: 300_000 });
  return { install, activate };
}
