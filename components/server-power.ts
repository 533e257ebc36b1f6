/**
 * ServerPower: `pulumi up` turns the workspace server back on when it was left off (issue
 * 21 item 2). A server can be left off by an interrupted replacement (the provider shuts
 * it down before the delete, `shutdownBeforeDeletion`, and the delete can then fail), by
 * the operator (`hcloud server poweroff`), or by Hetzner. The hcloud provider does not
 * manage power: `status` is a computed output its Read refreshes (`running` -> `off`) and
 * no input can ask for `running`, so a refresh shows the change and plans nothing
 * (terraform-provider-hcloud internal/server/resource.go; `hcloud_server_power_state`
 * is not in @pulumi/hcloud 1.41.0).
 *
 * Design:
 * - The live status is read on every preview and up with the provider's own data source
 *   (`hcloud.getServers`, selector `picortex/role=workspace-host`, found by name): a
 *   read through the provider, with its credentials, known at preview (its inputs are
 *   plain), no new credential path.
 * - The power-on is a local @pulumi/command Command, a fixed `node -e` program
 *   (SERVER_POWER_ON_SCRIPT) that reads the server and, when it is `off`, POSTs
 *   `actions/poweron` and waits for the action. Its Hetzner token travels in the secret
 *   environment only: never in argv, the command text, a URL or a log line.
 * - When the server is found off, the Command's `triggers` carry a fresh marker, so the
 *   engine replaces it (preview shows `replace`, and a warning names the server) and its
 *   create powers the server on. When the server is on, `ignoreChanges` covers the
 *   triggers: the engine keeps what state holds, so a normal `up` has no step for it (a
 *   second `up` still changes nothing), and the up after a power-on does not run it
 *   again. Not the environment: it is stable while the server is (endpoint, id, name,
 *   token), and the real command provider reports an ignored secret map as changed on
 *   every up (measured with pulumi-command 1.2.1; the double did not), so ignoring it
 *   made each `up` update this Command. A rotated token updates it once (its script finds
 *   the server running and does nothing). That is why the Command is registered once the live
 *   status is known (inside an apply): its options depend on it.
 * - It has no delete command: destroy never needs the API or the host.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";

export interface HcloudCredentials {
  /** The Hetzner API token the provider uses (hcloud:token or HCLOUD_TOKEN). */
  token: pulumi.Input<string>;
  /** API base URL (hcloud:endpoint or HCLOUD_ENDPOINT; default https://api.hetzner.cloud/v1). */
  endpoint?: string;
}

export interface ServerPowerArgs {
  /** The server's id (the Command acts on this one only). */
  serverId: pulumi.Input<string>;
  /** The server's name, as the lookup reports it. */
  serverName: string;
  /** The server's status from the live lookup (hcloud.getServers by name), "absent" when none. */
  liveStatus: pulumi.Input<string>;
  credentials: HcloudCredentials;
}

export const DEFAULT_HCLOUD_ENDPOINT = "https://api.hetzner.cloud/v1";

/** The trigger of a server found running (ignored then) and the marker of one found off. */
export const RUNNING_TRIGGER = "running";
export const offTrigger = (at: Date): string => `off, powered on by pulumi up at ${at.toISOString()}`;

export class ServerPower extends pulumi.ComponentResource {
  /** The power-on Command, once the live status is known. */
  readonly command: pulumi.Output<command.local.Command>;
  /** Whether the server was found off by this run's lookup. */
  readonly foundOff: pulumi.Output<boolean>;

  constructor(name: string, args: ServerPowerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("picortex:host:ServerPower", name, {}, opts);
    const endpoint = (args.credentials.endpoint ?? DEFAULT_HCLOUD_ENDPOINT).replace(/\/+$/, "");
    if (!/^https?:\/\/[^/\s]+(\/\S*)?$/.test(endpoint)) throw new Error(`ServerPower ${name}: endpoint ${JSON.stringify(endpoint)} is not an http(s) URL`);

    this.foundOff = pulumi.output(args.liveStatus).apply((status) => status === "off");
    this.command = this.foundOff.apply((off) => {
      if (off) pulumi.log.warn(`server ${args.serverName} is off: this up powers it on (workspace-power)`, this);
      return new command.local.Command(
        `${name}-on`,
        {
          interpreter: ["node", "-e"],
          create: SERVER_POWER_ON_SCRIPT,
          environment: {
            PICORTEX_HZ_ENDPOINT: endpoint,
            PICORTEX_HZ_SERVER_ID: pulumi.output(args.serverId).apply(String),
            PICORTEX_HZ_SERVER_NAME: args.serverName,
            PICORTEX_HZ_TOKEN: pulumi.secret(args.credentials.token),
          },
          triggers: [off ? offTrigger(new Date()) : RUNNING_TRIGGER],
          logging: "stderr",
          addPreviousOutputInEnv: false,
        },
        {
          parent: this,
          additionalSecretOutputs: ["environment"],
          // On: keep what state holds (no step). Off: the fresh marker replaces the Command,
          // and the current server id and token go with it.
          ignoreChanges: off ? [] : ["triggers"],
        },
      );
    });
    this.registerOutputs({ foundOff: this.foundOff });
  }
}

/**
 * Powers the server PICORTEX_HZ_SERVER_ID on when it is off (waiting out a `stopping`),
 * and waits for Hetzner's action. A server that is running, starting or gone needs
 * nothing. Failures print one line with the cause and the manual step, never the token.
 */
export const SERVER_POWER_ON_SCRIPT = `
const env = process.env, base = env.PICORTEX_HZ_ENDPOINT, id = env.PICORTEX_HZ_SERVER_ID, name = env.PICORTEX_HZ_SERVER_NAME;
const h = { authorization: "Bearer " + env.PICORTEX_HZ_TOKEN, accept: "application/json", "content-type": "application/json" };
const fail = (why) => { console.error("picortex power: could not power on " + name + " (" + why + "): run  hcloud server poweron " + name + "  or use the Hetzner console"); process.exit(1); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const call = async (method, path) => {
  const r = await fetch(base + path, { method, headers: h, signal: AbortSignal.timeout(30000) });
  const body = await r.json().catch(() => ({}));
  return { status: r.status, body };
};
(async () => {
  try {
    if (!/^[0-9]+$/.test(id || "")) return fail("no server id");
    let status;
    for (let i = 0; i < 60; i++) {
      const got = await call("GET", "/servers/" + id);
      if (got.status === 404) { console.error("picortex power: server " + name + " is gone, nothing to power on"); return; }
      if (got.status !== 200) return fail("reading the server: HTTP " + got.status + " " + (got.body.error?.code || ""));
      status = got.body.server?.status;
      if (status !== "stopping") break;
      await sleep(5000);
    }
    if (status !== "off") { console.error("picortex power: server " + name + " is " + status + ", nothing to do"); return; }
    const on = await call("POST", "/servers/" + id + "/actions/poweron");
    if (on.status !== 201 && on.status !== 200) return fail("poweron: HTTP " + on.status + " " + (on.body.error?.code || "") + " " + (on.body.error?.message || ""));
    const actionId = on.body.action?.id;
    let done = actionId === undefined;
    for (let i = 0; i < 120 && !done; i++) {
      const a = await call("GET", "/actions/" + actionId);
      const s = a.body.action?.status;
      if (s === "error") return fail("poweron action: " + (a.body.action.error?.message || "error"));
      done = s === "success";
      if (!done) await sleep(2000);
    }
    if (!done) return fail("the poweron action did not finish in 4 minutes");
    console.error("picortex power: server " + name + " was off and is powered on");
  } catch (e) {
    fail(e.cause?.code || e.message);
  }
})();
`.trim();
