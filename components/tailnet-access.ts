/**
 * TailnetAccess: the single-use, pre-authorized, tagged auth key a new workspace host
 * uses once, on first boot, to join the tailnet.
 *
 * Decisions:
 * - reusable false + ephemeral false: one host, one join; the node survives restarts.
 * - preauthorized: no admin approval step (the tag's owners already vouched for it).
 * - short expiry (default 1 h): the key sits in the server's user_data, which any local
 *   process can read from Hetzner's metadata service; after first boot it is spent and
 *   soon expired, so that copy is worthless.
 * - recreateIfInvalid "never": a spent key is "invalid"; recreating it would change the
 *   server's userData and, with template changes applied, rebuild the host.
 * - `rotation` (e.g. a hash of everything that replaces the server) goes into the
 *   description, so a host replacement also gets a fresh key; a replaced host can
 *   never boot with a spent one.
 * - the key is a secret end to end: the provider marks it secret and we wrap it again.
 */
import * as pulumi from "@pulumi/pulumi";
import * as tailscale from "@pulumi/tailscale";
import { hostnameProblem, tailscaleTagProblem } from "../templates/validators.js";

export interface TailnetAccessArgs {
  /** Tailnet host name the key is for (documentation in the key's description). */
  hostname: string;
  /** ACL tags the node will be owned by (`tag:…`); at least one. */
  tags: string[];
  /** Key lifetime in seconds: 5 minutes to 1 day, default 1 hour. */
  expirySeconds?: number;
  /** Changing this replaces the key (see class comment). */
  rotation?: pulumi.Input<string>;
}

export class TailnetAccess extends pulumi.ComponentResource {
  readonly key: tailscale.TailnetKey;
  /** The auth key (secret). */
  readonly authKey: pulumi.Output<string>;
  readonly tags: string[];
  readonly hostname: string;

  constructor(name: string, args: TailnetAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    super("picortex:tailnet:TailnetAccess", name, {}, opts);

    // 1. Validate, in words a user can act on.
    const problems = [
      hostnameProblem(args.hostname),
      args.tags.length === 0 ? "tags: at least one tag (e.g. tag:picortex) is required so the host is owned by a tag, not a person" : null,
      ...args.tags.map(tailscaleTagProblem),
    ].filter((p): p is string => p !== null);
    const expiry = args.expirySeconds ?? 3600;
    if (!Number.isInteger(expiry) || expiry < 300 || expiry > 86_400) {
      problems.push(`expirySeconds ${expiry} is out of range: use 300 (5 min) to 86400 (1 day); the key is only needed for the first boot`);
    }
    if (problems.length > 0) throw new Error(`TailnetAccess ${name}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);

    // 2. Compute.
    const tags = [...new Set(args.tags)].sort();
    const description = pulumi.output(args.rotation ?? "").apply((rotation) => keyDescription(args.hostname, rotation));

    // 3. Children.
    const key = new tailscale.TailnetKey(
      `${name}-key`,
      {
        reusable: false,
        ephemeral: false,
        preauthorized: true,
        tags,
        expiry,
        recreateIfInvalid: "never",
        description,
      },
      { parent: this, additionalSecretOutputs: ["key"] },
    );

    this.key = key;
    this.authKey = pulumi.secret(key.key);
    this.tags = tags;
    this.hostname = args.hostname;

    // 4. Outputs.
    this.registerOutputs({ authKey: this.authKey, tags, hostname: args.hostname });
  }
}

/** Tailscale caps key descriptions at 50 characters. */
export const KEY_DESCRIPTION_MAX = 50;

/**
 * `picortex <hostname> <rotation>`, at most 50 characters. The rotation hash must survive
 * whole (it is what makes a rebuilt host get a fresh key), so a long host name is what
 * gets shortened; up to 28 characters nothing changes (issue 21 item 19).
 */
export function keyDescription(hostname: string, rotation: string): string {
  const full = `picortex ${hostname} ${rotation}`.trim();
  if (full.length <= KEY_DESCRIPTION_MAX || rotation === "") return full.slice(0, KEY_DESCRIPTION_MAX);
  const room = KEY_DESCRIPTION_MAX - "picortex ".length - 1 - rotation.length;
  return `picortex ${hostname.slice(0, Math.max(0, room))} ${rotation}`.slice(-KEY_DESCRIPTION_MAX);
}
