/**
 * WorkspaceHost: one hardened Hetzner server on the tailnet, with the operator's SSH key
 * registered, a firewall that admits nothing from the internet by default, and the
 * rendered cloud-config (templates/render-host.ts) as its secret userData.
 *
 * Replacement decisions (hcloud replaces the server when userData, sshKeys, image or
 * location change; the server holds chats and the brain, so replacing it loses data):
 * - userData is in ignoreChanges unless `applyTemplateChanges` is true, so a template
 *   edit never silently rebuilds a host (same call as kube-hetzner's ignore_changes).
 *   Apply one deliberately with `pulumi up --replace <server urn>` or the flag.
 * - sshKeys is ignored after creation: rotating the operator key updates the SshKey
 *   resource but must not rebuild the host (rotate authorized_keys on the box instead).
 * - image and location always replace (that is what they mean); protection blocks it
 *   AT PREVIEW: with `protection` the server also carries Pulumi's `protect` option, and
 *   the engine refuses to plan a replacement (or a delete) of a protected resource before
 *   any step runs. Without it, a replacement of a Hetzner-protected server ran
 *   delete-first (explicit name), shut the server down, then had the delete refused:
 *   production stayed off (issue 21 item 2).
 * - deleteProtection always equals rebuildProtection (Hetzner requires it).
 * - Lifting protection is an in-place update of the server alone (`pulumi up --target
 *   <serverUrn>`, docs/deploy.md): it needs neither the host nor the deploy.
 */
import * as pulumi from "@pulumi/pulumi";
import * as hcloud from "@pulumi/hcloud";
import { createHash } from "node:crypto";
import { renderHost, volumeDevice, type HostVarsInput } from "../templates/render-host.js";
import { parseHostVars, type HostVars } from "../templates/host-vars.js";
import { renderFirewall, type FirewallRule } from "../templates/render-firewall.js";
import { buildLabels } from "./labels.js";

/** Variables for the host templates, minus what this component supplies itself. */
export type WorkspaceHostTemplateVars = Omit<HostVarsInput, "profile" | "tailscale" | "image">;

export interface WorkspaceHostArgs {
  /** Hetzner server type, validated by the stack config (default cx23). */
  serverType: string;
  /** Hetzner location (fsn1, nbg1, hel1, ash, hil, sin); `datacenter` is deprecated. */
  location: string;
  image: NonNullable<HostVarsInput["image"]>;
  template: WorkspaceHostTemplateVars;
  /** From TailnetAccess (secret). */
  tailscaleAuthKey: pulumi.Input<string>;
  tailscaleTags: string[];
  /** `tailscale up --ssh` (default false: sshd on the tailnet address is the SSH boundary). */
  tailscaleSsh?: boolean;
  /** Enable delete + rebuild protection on the server (both, always equal). */
  protection?: boolean;
  /** Replace the server when the rendered cloud-config changes (default false, see above). */
  applyTemplateChanges?: boolean;
  /** Extra Hetzner labels (validated). */
  labels?: Record<string, string>;
  /**
   * A fixed SSH host key for the server (cloud-init `ssh_keys`), so deploy connections
   * can pin it from the first one: the private half (secret) and its public line.
   */
  sshHostKey?: { privateKey: pulumi.Input<string>; publicKey: string };
  /**
   * A Hetzner Volume (ext4) for /srv/picortex and /var/lib/picortex, so chats and the
   * brain survive a replaced server. Protected like the server; 0 or unset: none.
   */
  dataVolumeSizeGb?: number;
  /**
   * Name or id of an SSH key already in the Hetzner project. Hetzner keys are unique by
   * fingerprint, so registering the operator's key again fails when it is there
   * (`uniqueness_error`); set this to reuse it instead of creating one.
   */
  existingSshKey?: string;
  /**
   * Bump (2, 3, …) to rebuild the server on purpose: the server is replaced (Pulumi
   * `replacementTrigger`) and, through the rotation hash, so is the auth key, so the new
   * server joins with a fresh one. `pulumi up --replace <server>` alone would reuse the
   * spent key. Default 1; protection refuses it at preview like any replacement.
   */
  generation?: number;
}

export { volumeDevice };
/** Stands in for the volume id in the replacement hash (unknown before the first up). */
const VOLUME_PLACEHOLDER = volumeDevice("ID");

/** Stands in for the secret host key wherever a render must not hold it (hash, shape check). */
export const HOST_KEY_PLACEHOLDER = "-----BEGIN OPENSSH PRIVATE KEY-----\nPLACEHOLDER\n-----END OPENSSH PRIVATE KEY-----\n";

export class WorkspaceHost extends pulumi.ComponentResource {
  readonly server: hcloud.Server;
  readonly firewall: hcloud.Firewall;
  /** The operator key registered with Hetzner; undefined when an existing one is reused. */
  readonly sshKey?: hcloud.SshKey;
  /** The data volume and its attachment, when dataVolumeSizeGb is set. */
  readonly volume?: hcloud.Volume;
  readonly volumeAttachment?: hcloud.VolumeAttachment;
  /** The rendered cloud-config with the Tailscale key (secret). */
  readonly userData: pulumi.Output<string>;
  readonly serverId: pulumi.Output<string>;
  /** The server's URN: `pulumi up --target <urn>` lifts protection without touching anything else. */
  readonly serverUrn: pulumi.Output<string>;
  /** Every resource `protection` guards (server, data volume): the targets that lift it. */
  readonly protectedUrns: pulumi.Output<string[]>;
  readonly ipv4Address: pulumi.Output<string>;
  readonly ipv6Address: pulumi.Output<string>;
  readonly hostname: string;
  readonly adminUser: string;
  readonly runtimePort: number;
  /** `http://<tailnet host name>:<port>`: MagicDNS resolves it for tailnet members. */
  readonly runtimeUrl: string;
  readonly firewallRules: FirewallRule[];
  /** Operator warnings (e.g. SSH open to the internet); the stack prints them. */
  readonly warnings: string[];

  constructor(name: string, args: WorkspaceHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("picortex:host:WorkspaceHost", name, {}, opts);

    // 1. Validate everything before creating anything (throws HostVarsError / InvalidLabelError).
    const vars: HostVars = parseHostVars({
      ...args.template,
      profile: "production",
      image: args.image,
      // Shape check only; the real key is applied below inside the secret output.
      tailscale: { authKey: "placeholder", tags: args.tailscaleTags, ssh: args.tailscaleSsh ?? false },
      ...(args.sshHostKey ? { sshHostKey: { privateKey: HOST_KEY_PLACEHOLDER, publicKey: args.sshHostKey.publicKey } } : {}),
      ...(args.dataVolumeSizeGb ? { dataVolume: { device: VOLUME_PLACEHOLDER } } : {}),
    });
    const generation = args.generation ?? 1;
    if (!Number.isInteger(generation) || generation < 1) throw new Error(`WorkspaceHost ${name}: generation must be a whole number from 1, got ${generation}`);
    const sizeGb = args.dataVolumeSizeGb ?? 0;
    if (!Number.isInteger(sizeGb) || (sizeGb !== 0 && (sizeGb < 10 || sizeGb > 10240))) {
      throw new Error(`WorkspaceHost ${name}: dataVolumeSizeGb ${sizeGb} is out of range: Hetzner volumes are 10 to 10240 GB (0 = no volume)`);
    }
    const labels = buildLabels("workspace-host", args.labels);
    const protection = args.protection ?? false;

    // 2. Compute (pure).
    const firewall = renderFirewall(vars.firewall);
    // 3. Children, each parented to this component.
    // The volume exists before the server, so its id can go into userData (cloud-init waits
    // for the device). Protected like the server: a location change would replace it.
    const volume = sizeGb
      ? new hcloud.Volume(
          `${name}-data`,
          { size: sizeGb, location: args.location, format: "ext4", labels, deleteProtection: protection, automount: false },
          { parent: this, protect: protection },
        )
      : undefined;
    const hostKey = args.sshHostKey;
    const userData = pulumi.secret(
      pulumi
        .all([args.tailscaleAuthKey, hostKey ? hostKey.privateKey : "", volume ? volume.id : ""])
        .apply(([authKey, privateKey, volumeId]) =>
          renderHost({
            ...vars,
            tailscale: { ...vars.tailscale!, authKey },
            ...(hostKey ? { sshHostKey: { privateKey, publicKey: hostKey.publicKey } } : {}),
            ...(volume ? { dataVolume: { device: volumeDevice(volumeId) } } : {}),
          }).cloudConfig,
        ),
    );

    // Delete-first: a create-first replacement with the same public key would fail on
    // Hetzner's fingerprint uniqueness. Safe because the server ignores sshKeys changes.
    const sshKey = args.existingSshKey
      ? undefined
      : new hcloud.SshKey(`${name}-admin-key`, { publicKey: vars.adminSshPublicKey.trim(), labels }, { parent: this, deleteBeforeReplace: true });
    const fw = new hcloud.Firewall(
      `${name}-firewall`,
      // An empty rule list is the point: Hetzner then drops every inbound connection.
      { rules: firewall.rules, labels },
      { parent: this },
    );
    const server = new hcloud.Server(
      `${name}-server`,
      {
        name: vars.hostname,
        serverType: args.serverType,
        image: args.image,
        location: args.location,
        sshKeys: [sshKey ? sshKey.id : args.existingSshKey!],
        // The provider wants numeric ids.
        firewallIds: [fw.id.apply(Number)],
        userData,
        labels,
        publicNets: [{ ipv4Enabled: true, ipv6Enabled: true }],
        deleteProtection: protection,
        rebuildProtection: protection,
        // Let systemd stop the runtime cleanly (SQLite WAL checkpoint) before deletion.
        shutdownBeforeDeletion: true,
      },
      {
        parent: this,
        // Engine-level protection: a replace or delete is refused at plan time (preview).
        protect: protection,
        // Always present, from generation 1: the engine replaces on a trigger that CHANGES
        // ("1" -> "2"), never on one that appears (unset -> "2"), so a trigger set only from
        // generation 2 would never fire. A stack deployed before the trigger existed gets
        // "1" with no diff (an appearing trigger is not a change).
        replacementTrigger: String(generation),
        // Delete-first on every replacement, also one the engine drives (a trigger change,
        // `pulumi up --replace`): the provider asks for delete-first only when its diff
        // names a replacing input, and a create-first replacement with the fixed name is
        // refused by Hetzner (uniqueness_error).
        deleteBeforeReplace: true,
        additionalSecretOutputs: ["userData"],
        ignoreChanges: args.applyTemplateChanges ? ["sshKeys"] : ["userData", "sshKeys"],
      },
    );

    // Attached right after the server exists; first boot waits for the device. A replaced
    // server (delete-first) loses the attachment with it, and the new one gets it again.
    const attachment = volume
      ? new hcloud.VolumeAttachment(
          `${name}-data-attachment`,
          { serverId: server.id.apply(Number), volumeId: volume.id.apply(Number), automount: false },
          // A volume attaches to one server at a time: a create-first replacement would be refused.
          { parent: this, deleteBeforeReplace: true },
        )
      : undefined;

    this.volume = volume;
    this.volumeAttachment = attachment;
    this.server = server;
    this.userData = userData;
    this.firewall = fw;
    this.sshKey = sshKey;
    this.serverId = server.id;
    this.serverUrn = server.urn;
    this.protectedUrns = pulumi.all(volume ? [server.urn, volume.urn] : [server.urn]);
    this.ipv4Address = server.ipv4Address;
    this.ipv6Address = server.ipv6Address;
    this.hostname = vars.hostname;
    this.adminUser = vars.adminUser;
    this.runtimePort = vars.runtimePort;
    this.runtimeUrl = `http://${vars.hostname}:${vars.runtimePort}`;
    this.firewallRules = firewall.rules;
    this.warnings = firewall.warnings;

    // 4. Outputs.
    this.registerOutputs({
      serverId: this.serverId,
      ipv4Address: this.ipv4Address,
      ipv6Address: this.ipv6Address,
      hostname: this.hostname,
      adminUser: this.adminUser,
      runtimeUrl: this.runtimeUrl,
    });
  }
}

/**
 * A short hash of everything that, when changed, would replace the server: the rendered
 * host (with a placeholder key), image and location. The stack passes it to
 * TailnetAccess as `rotation`, so a rebuilt host always gets a fresh auth key.
 */
export function hostRotationKey(
  args: Pick<WorkspaceHostArgs, "template" | "image" | "location" | "tailscaleTags" | "tailscaleSsh" | "dataVolumeSizeGb" | "generation"> & { sshHostKey?: { publicKey: string } },
): string {
  // Uncompressed: gzip bytes depend on the deploying machine's zlib, and a hash that moved
  // with them would rotate the key (and, with applyTemplateChanges, the server) for nothing.
  const rendered = renderHost({
    ...args.template,
    profile: "production",
    image: args.image,
    tailscale: { authKey: "placeholder", tags: args.tailscaleTags, ssh: args.tailscaleSsh ?? false },
    ...(args.sshHostKey ? { sshHostKey: { privateKey: HOST_KEY_PLACEHOLDER, publicKey: args.sshHostKey.publicKey } } : {}),
    ...(args.dataVolumeSizeGb ? { dataVolume: { device: VOLUME_PLACEHOLDER } } : {}),
  }, undefined, { compressFiles: false });
  const h = createHash("sha256").update(rendered.cloudConfig).update("\0").update(args.location);
  if ((args.generation ?? 1) > 1) h.update(`\0generation ${args.generation}`);
  return h.digest("hex").slice(0, 12);
}
