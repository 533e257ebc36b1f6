/**
 * TailnetDeviceCleanup: removes the host's tailnet device when the server goes away
 * (destroy) or is replaced (issue 21 item 10). Without it the dead node stays
 * registered, the next server with the same host name joins as `<name>-1`, and the
 * MagicDNS name (runtimeUrl, the deploy's SSH host) keeps pointing at the dead one.
 *
 * A local @pulumi/command Command whose only real work is its delete: a fixed `node -e`
 * program that asks the Tailscale API for the devices with this host name and the
 * host's tags, and deletes them. `triggers: [server id]` plus `deleteBeforeReplace`:
 * when the server is replaced, the engine runs this delete first (the old node goes
 * while the old server is still there), then replaces the server, then creates this
 * again, so the new node joins under the plain name. A create-before-delete order
 * would have deleted the new node too.
 *
 * Best effort by design: a cleanup failure (credentials rotated, API down) prints the
 * manual step and succeeds, so a destroy never gets stuck on it. Credentials travel in
 * the secret environment only; never in argv or command text.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { hostnameProblem, tailscaleTagProblem } from "../templates/validators.js";

export interface TailnetCredentials {
  /** OAuth client (scope devices:core write), the documented path… */
  oauthClientId?: pulumi.Input<string>;
  oauthClientSecret?: pulumi.Input<string>;
  /** …or an API access token. */
  apiKey?: pulumi.Input<string>;
  /** Tailnet name, or "-" for the credential's default. */
  tailnet?: string;
  /** API base URL (default https://api.tailscale.com). */
  baseUrl?: string;
}

export interface TailnetDeviceCleanupArgs {
  hostname: string;
  tags: string[];
  /** The server id: a new server means the old device must go first. */
  serverId: pulumi.Input<string>;
  credentials: TailnetCredentials;
}

export class TailnetDeviceCleanup extends pulumi.ComponentResource {
  readonly command: command.local.Command;

  constructor(name: string, args: TailnetDeviceCleanupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("picortex:tailnet:TailnetDeviceCleanup", name, {}, opts);
    const problems = [hostnameProblem(args.hostname), ...args.tags.map(tailscaleTagProblem)].filter((p): p is string => p !== null);
    const c = args.credentials;
    if (!c.apiKey && !(c.oauthClientId && c.oauthClientSecret)) problems.push("credentials: an OAuth client (id and secret) or an API key is needed to remove the old device");
    if (problems.length > 0) throw new Error(`TailnetDeviceCleanup ${name}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);

    const environment: Record<string, pulumi.Input<string>> = {
      PICORTEX_TS_HOSTNAME: args.hostname,
      PICORTEX_TS_TAGS: [...args.tags].sort().join(","),
      PICORTEX_TS_TAILNET: c.tailnet ?? "-",
      PICORTEX_TS_BASE_URL: (c.baseUrl ?? "https://api.tailscale.com").replace(/\/+$/, ""),
    };
    if (c.apiKey) environment.PICORTEX_TS_API_KEY = pulumi.secret(c.apiKey);
    else {
      environment.PICORTEX_TS_CLIENT_ID = pulumi.secret(c.oauthClientId!);
      environment.PICORTEX_TS_CLIENT_SECRET = pulumi.secret(c.oauthClientSecret!);
    }

    this.command = new command.local.Command(
      `${name}-cleanup`,
      {
        interpreter: ["node", "-e"],
        create: DEVICE_CLEANUP_CREATE,
        delete: DEVICE_CLEANUP_SCRIPT,
        environment,
        triggers: [args.serverId],
        logging: "stderr",
        addPreviousOutputInEnv: false,
      },
      { parent: this, deleteBeforeReplace: true, additionalSecretOutputs: ["environment"] },
    );
    this.registerOutputs({});
  }
}

/** Nothing to do on create (the node joins by itself); a fixed, harmless program. */
export const DEVICE_CLEANUP_CREATE = 'console.error("picortex tailnet: the old device (if any) was removed before this server")';

/**
 * Deletes every device whose hostname is PICORTEX_TS_HOSTNAME and that carries all of
 * PICORTEX_TS_TAGS (so a person's laptop with the same name is never touched).
 */
export const DEVICE_CLEANUP_SCRIPT = `
const env = process.env, base = env.PICORTEX_TS_BASE_URL, tailnet = encodeURIComponent(env.PICORTEX_TS_TAILNET || "-");
const host = env.PICORTEX_TS_HOSTNAME, tags = (env.PICORTEX_TS_TAGS || "").split(",").filter(Boolean);
const manual = "remove it in the Tailscale admin console (Machines), or a new host named " + host + " joins as " + host + "-1";
const giveUp = (why) => { console.error("picortex tailnet: could not remove the device " + host + " (" + why + "): " + manual); process.exit(0); };
(async () => {
  try {
    let auth;
    if (env.PICORTEX_TS_API_KEY) auth = "Bearer " + env.PICORTEX_TS_API_KEY;
    else {
      const body = new URLSearchParams({ client_id: env.PICORTEX_TS_CLIENT_ID || "", client_secret: env.PICORTEX_TS_CLIENT_SECRET || "", grant_type: "client_credentials" });
      const r = await fetch(base + "/api/v2/oauth/token", { method: "POST", body, signal: AbortSignal.timeout(30000) });
      if (!r.ok) return giveUp("OAuth token: HTTP " + r.status);
      auth = "Bearer " + (await r.json()).access_token;
    }
    const h = { authorization: auth, accept: "application/json" };
    const list = await fetch(base + "/api/v2/tailnet/" + tailnet + "/devices", { headers: h, signal: AbortSignal.timeout(30000) });
    if (!list.ok) return giveUp("listing devices: HTTP " + list.status);
    const devices = ((await list.json()).devices || []).filter((d) => d.hostname === host && tags.every((t) => (d.tags || []).includes(t)));
    if (devices.length === 0) { console.error("picortex tailnet: no device named " + host + " to remove"); return; }
    for (const d of devices) {
      const id = String(d.nodeId || d.id);
      if (!/^[A-Za-z0-9]+$/.test(id)) return giveUp("unexpected device id");
      const del = await fetch(base + "/api/v2/device/" + id, { method: "DELETE", headers: h, signal: AbortSignal.timeout(30000) });
      if (!del.ok && del.status !== 404) return giveUp("deleting " + (d.name || id) + ": HTTP " + del.status);
      console.error("picortex tailnet: removed device " + (d.name || id));
    }
  } catch (e) {
    giveUp(e.cause?.code || e.message);
  }
})();
`.trim();
