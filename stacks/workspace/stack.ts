/**
 * The workspace stack as one exported function: reads the `picortex:` config once,
 * validates it, declares the resources and returns the stack outputs. `index.ts` (the
 * `pulumi up` entry) calls it; an Automation API inline program can call it directly:
 *
 *   LocalWorkspace.createOrSelectStack({ projectName: "picortex", stackName, program: () => workspaceStack() })
 *
 * Nothing here depends on process.cwd(): relative config paths resolve against the
 * project root (the directory holding Pulumi.yaml), see program.ts.
 */
import * as pulumi from "@pulumi/pulumi";
import { WorkspaceConfigError, readWorkspaceConfig, readWorkspaceSecrets, unknownKeyProblems } from "./config.js";
import { workspaceProgram, type WorkspaceProgramOptions } from "./program.js";
import type { TailnetCredentials } from "../../components/tailnet-device.js";
import type { HcloudCredentials } from "../../components/server-power.js";

export function workspaceStack(options: WorkspaceProgramOptions = {}): Record<string, unknown> {
  const config = new pulumi.Config("picortex");
  rejectUnknownKeys(Object.keys(pulumi.runtime.allConfig()));
  const tsProblem = tailscaleCredentialProblem((k) => pulumi.runtime.getConfig(k), process.env);
  if (tsProblem) throw new WorkspaceConfigError([tsProblem]);
  // Secrets are read raw (getConfig, no "use getSecret" warning) only to be checked at
  // preview; the program wraps each in pulumi.secret before any use.
  const secrets = readWorkspaceSecrets({ get: (key) => pulumi.runtime.getConfig(`picortex:${key}`) });
  const { outputs } = workspaceProgram(readWorkspaceConfig(config), secrets, {
    tailnetCredentials: tailnetCredentials((k) => pulumi.runtime.getConfig(k), process.env),
    hcloudCredentials: hcloudCredentials((k) => pulumi.runtime.getConfig(k), process.env),
    ...options,
  });
  return {
    serverId: outputs.serverId,
    serverUrn: outputs.serverUrn,
    protectedUrns: outputs.protectedUrns,
    ipv4Address: outputs.ipv4Address,
    ipv6Address: outputs.ipv6Address,
    tailnetHostname: outputs.tailnetHostname,
    adminUser: outputs.adminUser,
    runtimeUrl: outputs.runtimeUrl,
    firewallRules: outputs.firewallRules,
    releaseHash: outputs.releaseHash,
    sshHostPublicKey: outputs.sshHostPublicKey,
    /** Read by every chat stack (stacks/chat) to call the runtime API; stays secret in state. */
    runtimeApiToken: outputs.runtimeApiToken,
  };
}

/** A misspelled `picortex:` key used to be ignored silently (issue 21 item 19). */
export function rejectUnknownKeys(fullKeys: string[]): void {
  const problems = unknownKeyProblems(fullKeys, (k) => `; remove it with pulumi config rm ${k}`);
  if (problems.length > 0) throw new WorkspaceConfigError(problems);
}

/**
 * The tailscale provider refuses an API key together with OAuth client credentials
 * ("tailscale provider credentials are conflicting"), from config or environment alike.
 * One documented path: an OAuth client (issue 21 item 4). Checked at preview.
 */
export function tailscaleCredentialProblem(get: (fullKey: string) => string | undefined, env: Record<string, string | undefined>): string | null {
  const set = (v: string | undefined) => v !== undefined && v !== "";
  const apiKey = [set(get("tailscale:apiKey")) && "tailscale:apiKey", set(env.TAILSCALE_API_KEY) && "TAILSCALE_API_KEY"].filter(Boolean);
  const oauth = [
    set(get("tailscale:oauthClientId")) && "tailscale:oauthClientId",
    set(get("tailscale:oauthClientSecret")) && "tailscale:oauthClientSecret",
    set(env.TAILSCALE_OAUTH_CLIENT_ID) && "TAILSCALE_OAUTH_CLIENT_ID",
    set(env.TAILSCALE_OAUTH_CLIENT_SECRET) && "TAILSCALE_OAUTH_CLIENT_SECRET",
  ].filter(Boolean);
  if (apiKey.length === 0 || oauth.length === 0) return null;
  return `Tailscale credentials conflict: an API key (${apiKey.join(", ")}) and an OAuth client (${oauth.join(", ")}) are both set, and the provider refuses that. Use the OAuth client only: pulumi config rm tailscale:apiKey (and unset TAILSCALE_API_KEY)`;
}

/** The credentials the tailscale provider itself would use: its config first, then its environment variables. */
export function tailnetCredentials(get: (fullKey: string) => string | undefined, env: Record<string, string | undefined>): TailnetCredentials | undefined {
  const pick = (key: string, envName: string) => get(`tailscale:${key}`) || env[envName] || undefined;
  const creds: TailnetCredentials = {
    oauthClientId: pick("oauthClientId", "TAILSCALE_OAUTH_CLIENT_ID"),
    oauthClientSecret: pick("oauthClientSecret", "TAILSCALE_OAUTH_CLIENT_SECRET"),
    apiKey: pick("apiKey", "TAILSCALE_API_KEY"),
    tailnet: pick("tailnet", "TAILSCALE_TAILNET"),
    baseUrl: pick("baseUrl", "TAILSCALE_BASE_URL"),
  };
  if (creds.oauthClientId && creds.oauthClientSecret) delete creds.apiKey;
  else if (creds.apiKey) {
    delete creds.oauthClientId;
    delete creds.oauthClientSecret;
  } else return undefined;
  for (const k of Object.keys(creds) as Array<keyof TailnetCredentials>) if (creds[k] === undefined) delete creds[k];
  return creds;
}

/** The Hetzner credentials the hcloud provider itself would use: its config first, then its environment variables. */
export function hcloudCredentials(get: (fullKey: string) => string | undefined, env: Record<string, string | undefined>): HcloudCredentials | undefined {
  const token = get("hcloud:token") || env.HCLOUD_TOKEN || undefined;
  if (!token) return undefined;
  const endpoint = get("hcloud:endpoint") || env.HCLOUD_ENDPOINT || undefined;
  return { token, ...(endpoint ? { endpoint } : {}) };
}
