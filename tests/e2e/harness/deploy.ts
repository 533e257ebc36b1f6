import {
  CLOUD_INIT_WAIT_COMMAND,
  SETTINGS_UPLOAD_COMMAND,
  incomingPath,
  releaseCommands,
  settingsDocument,
} from "../../../components/runtime-deployment.js";
import { progress } from "./log.js";
import { RemoteCommandError, type HostSession } from "./ssh.js";

/**
 * Deploys a runtime release over the admin's ssh session with the very command texts
 * the RuntimeDeployment component sends (its exported pure builders), in its order:
 * cloud-init wait, runtime settings on stdin, copy the tarball to ~/incoming, then
 * `sudo -n picortex-release install <hash> && … activate <hash>`.
 */
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
}

async function must(session: HostSession, label: string, text: string, stdin?: string): Promise<string> {
  progress("deploy", label);
  const r = await session.execFixedText(text, { stdin, timeoutMs: 900_000 });
  if (r.code !== 0) throw new RemoteCommandError([label], r);
  return r.stdout + r.stderr;
}

export async function deployRelease(d: DeployInput): Promise<{ output: string }> {
  const cmds = releaseCommands(d.hash);
  let output = await must(d.session, "cloud-init status --wait", CLOUD_INIT_WAIT_COMMAND);
  output += await must(d.session, "upload runtime settings (stdin)", SETTINGS_UPLOAD_COMMAND, settingsDocument(d.settings));
  progress("deploy", `copy ${d.hash}.tar.gz to ${incomingPath(d.adminUser, d.hash)}`);
  await d.session.putFile(d.tarball, incomingPath(d.adminUser, d.hash));
  output += await must(d.session, cmds.create, cmds.create);
  return { output };
}
