/**
 * The workspace stack as a function of its (already validated) config, so the entry
 * point stays two lines and tests can drive it under Pulumi mocks.
 */
import * as pulumi from "@pulumi/pulumi";
import * as hcloud from "@pulumi/hcloud";
import * as tailscale from "@pulumi/tailscale";
import { existsSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { TailnetAccess } from "../../components/tailnet-access.js";
import { WorkspaceHost, hostRotationKey, type WorkspaceHostTemplateVars } from "../../components/workspace-host.js";
import { RuntimeDeployment, readReleaseManifest } from "../../components/runtime-deployment.js";
import { TailnetDeviceCleanup, type TailnetCredentials } from "../../components/tailnet-device.js";
import { hostBridgesConfig } from "../../agent-runtime/config/bridges.js";
import { ServerPower, type HcloudCredentials } from "../../components/server-power.js";
import { ServerCreationMarker } from "../../components/server-creation.js";
import { liveTailnetName } from "../../components/tailnet-address.js";
import { createHash } from "node:crypto";
import { checkWorkspaceSecrets, hostVarsFromConfig, WorkspaceConfigError, type WorkspaceConfig, type WorkspaceSecretValues } from "./config.js";

/**
 * Secret settings as plain strings (readWorkspaceSecrets): checked here at preview
 * (token format, key pair, host key), then wrapped in pulumi.secret before any use.
 */
export type WorkspaceSecrets = WorkspaceSecretValues;

export interface WorkspaceOutputs {
  serverId: pulumi.Output<string>;
  /** `pulumi up --target "$(pulumi stack output serverUrn)"` lifts protection alone. */
  serverUrn: pulumi.Output<string>;
  /** URNs of every resource `protection` guards: scripts/unprotect.ts targets them. */
  protectedUrns: pulumi.Output<string[]>;
  ipv4Address: pulumi.Output<string>;
  ipv6Address: pulumi.Output<string>;
  /** The configured tailnet host name (what the host joins as). */
  tailnetHostname: string;
  adminUser: string;
  /**
   * `http://<live tailnet name>:<port>`: the MagicDNS short name of the host's newest
   * device (device lookup, item 10), or the configured name before the host has joined.
   */
  runtimeUrl: pulumi.Output<string>;
  /** The operator's SSH allowlist is not for PR comments: secret. */
  firewallRules: pulumi.Output<WorkspaceHost["firewallRules"]>;
  /**
   * The release this stack deploys (from the manifest), or "" for host only. Known at
   * preview and independent of the deploy's outcome, so the stack outputs are recorded
   * even when the deploy step fails (issue 21 item 5).
   */
  releaseHash: pulumi.Output<string>;
  /** The host's SSH host key the deploy pins ("" when none is configured). */
  sshHostPublicKey: string;
  /** Runtime API token for the chat stacks (secret); undefined when not set. */
  runtimeApiToken?: pulumi.Output<string>;
}

/**
 * The repository root: the directory holding Pulumi.yaml. The engine runs the program
 * from the directory of its `main` (stacks/workspace/), and an Automation API inline
 * program runs from wherever its caller is, so no config path is ever resolved against
 * process.cwd().
 */
export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface WorkspaceProgramOptions {
  /** Directory holding Pulumi.yaml; relative config paths resolve against it. Default PROJECT_ROOT. */
  projectRoot?: string;
  /**
   * The Tailscale credentials the provider uses (stack.ts reads them from tailscale:*
   * config and TAILSCALE_* environment). With them, the host's old tailnet device is
   * removed on destroy and before a replacement (TailnetDeviceCleanup).
   */
  tailnetCredentials?: TailnetCredentials;
  /**
   * The Hetzner credentials the provider uses (stack.ts reads hcloud:token/endpoint and
   * HCLOUD_TOKEN/HCLOUD_ENDPOINT). With them, `up` powers a server left off back on
   * (ServerPower, issue 21 item 2).
   */
  hcloudCredentials?: HcloudCredentials;
}

/**
 * A path from stack config (e.g. picortex:releaseManifest "dist/release/latest.json"):
 * absolute as given, or relative to the project root (the directory holding Pulumi.yaml,
 * where the README's commands run). Refused when relative and no project root is known.
 */
export function resolveConfigPath(key: string, value: string, projectRoot: string | undefined): string {
  if (isAbsolute(value)) return value;
  if (!projectRoot || !existsSync(join(projectRoot, "Pulumi.yaml"))) {
    throw new WorkspaceConfigError([
      `picortex:${key} ${JSON.stringify(value)} is a relative path, and there is no project root (a directory holding Pulumi.yaml${projectRoot ? `; ${projectRoot} has none` : ""}) to resolve it against: give an absolute path`,
    ]);
  }
  return resolve(projectRoot, value);
}

export function workspaceProgram(
  config: WorkspaceConfig,
  secrets: WorkspaceSecrets = {},
  options: WorkspaceProgramOptions = {},
): { outputs: WorkspaceOutputs; host: WorkspaceHost; tailnet: TailnetAccess; runtime?: RuntimeDeployment; deviceCleanup?: TailnetDeviceCleanup; power?: ServerPower; creation: ServerCreationMarker } {
  // Validate the deploy inputs before creating anything.
  const projectRoot = options.projectRoot ?? PROJECT_ROOT;
  const release = config.releaseManifest ? readReleaseManifest(resolveConfigPath("releaseManifest", config.releaseManifest, projectRoot)) : undefined;
  const checked = checkWorkspaceSecrets(config, secrets);
  const secret = (v: string | undefined) => (v === undefined ? undefined : pulumi.secret(v));

  // The config's part of the host variables (WorkspaceHost adds the profile, the image,
  // the tailnet key, the volume device and the host key itself).
  const { profile: _profile, image: _image, tailscale: _tailscale, dataVolume: _volume, ...template } = hostVarsFromConfig(config);
  const hostTemplate: WorkspaceHostTemplateVars = template;
  const sshHostKey = secrets.sshHostKey !== undefined ? { privateKey: pulumi.secret(secrets.sshHostKey), publicKey: checked.hostPublicKey! } : undefined;
  const placement = {
    template: hostTemplate,
    image: config.image,
    location: config.location,
    tailscaleTags: config.tailscaleTags,
    tailscaleSsh: config.tailscaleSsh,
    dataVolumeSizeGb: config.dataVolumeSizeGb,
    generation: config.hostGeneration,
    ...(sshHostKey ? { sshHostKey } : {}),
  };

  // The server as Hetzner has it now, by name (the provider's data source, on every preview
  // and up): "absent", or its status. Drives the key's life (item 14) and the power-on (item 2).
  const liveStatus = hcloud
    .getServersOutput({ withSelector: "picortex/role=workspace-host" })
    .apply((r) => (r.servers ?? []).find((x) => x.name === config.hostname)?.status ?? "absent");
  // No server yet: the coming create gets a key minted right before it (a key left in state
  // by a refused create may have expired since).
  const creation = new ServerCreationMarker("workspace-creation", { serverExists: liveStatus.apply((st) => st !== "absent") });
  const templateRotation = hostRotationKey({ ...placement, ...(sshHostKey ? { sshHostKey: { publicKey: sshHostKey.publicKey } } : {}) });

  const tailnet = new TailnetAccess("tailnet", {
    hostname: config.hostname,
    tags: config.tailscaleTags,
    expirySeconds: config.tailscaleKeyExpirySeconds,
    // A change that would replace the server also mints a fresh key (a spent key cannot join),
    // and so does every attempt to create it (the key expires).
    rotation: creation.marker.apply((m) => rotationWithCreation(templateRotation, m)),
  });

  const host = new WorkspaceHost("workspace", {
    ...placement,
    serverType: config.serverType,
    tailscaleAuthKey: tailnet.authKey,
    protection: config.protection,
    applyTemplateChanges: config.applyTemplateChanges,
    labels: config.labels,
    ...(config.existingSshKey ? { existingSshKey: config.existingSshKey } : {}),
  });
  for (const warning of host.warnings) pulumi.log.warn(warning, host);

  // The old tailnet node goes when the server goes (destroy) or before it is replaced, so
  // a new node joins under the plain name that runtimeUrl and the deploy use (item 10).
  const c = options.tailnetCredentials;
  const deviceCleanup =
    c && (c.apiKey || (c.oauthClientId && c.oauthClientSecret))
      ? new TailnetDeviceCleanup("tailnet-device", { hostname: config.hostname, tags: config.tailscaleTags, serverId: host.serverId, credentials: c })
      : undefined;
  if (!deviceCleanup) {
    pulumi.log.warn("no Tailscale credentials found in tailscale:* config or TAILSCALE_* environment: the host's tailnet device will not be removed on destroy or replacement", host);
  }

  // A server left off (an interrupted replacement's shutdown, the operator, Hetzner) is
  // powered on again: the live status comes from the provider's data source on every run.
  const hz = options.hcloudCredentials;
  const power = hz
    ? new ServerPower("workspace-power", {
        serverId: host.serverId,
        serverName: config.hostname,
        liveStatus,
        credentials: hz,
      }, { dependsOn: [host] })
    : undefined;
  if (!power) pulumi.log.warn("no Hetzner token found in hcloud:token config or HCLOUD_TOKEN: a server left off will not be powered on by pulumi up", host);

  // The host's live tailnet name by device lookup (the tailscale provider's getDevices, on
  // every run): a node that had to join as <name>-1 (the old one could not be removed) is
  // still found, and runtimeUrl and the deploy follow it (item 10).
  const tailnetName = tailscale
    .getDevicesOutput({ namePrefix: config.hostname })
    .apply((r) => liveTailnetName(r.devices, config.hostname, config.tailscaleTags));
  const runtimeUrl = pulumi.interpolate`http://${tailnetName}:${host.runtimePort}`;

  // The runtime, through the host's one privileged entry point (picortex-release).
  const runtime = release
    ? new RuntimeDeployment(
        "runtime",
        {
          connection: {
            host: config.deployVia === "tailnet" ? tailnetName : host.ipv4Address,
            adminUser: host.adminUser,
            privateKey: secret(secrets.adminPrivateKey)!,
            ...(secrets.adminPrivateKeyPassword !== undefined ? { privateKeyPassword: secret(secrets.adminPrivateKeyPassword) } : {}),
            // Pinned: checkWorkspaceSecrets refuses a deploy without a host key.
            hostKey: checked.hostPublicKey!,
          },
          release,
          // A replaced server (same tailnet name) gets the release again.
          redeployOn: [host.serverId],
          // The bridges ride on every deploy (a changed group map or token needs no server
          // change); `{}` when none is configured, so turning one off reaches the host too.
          settings: {
            anthropicApiKey: secret(secrets.anthropicApiKey?.trim()),
            apiToken: secret(secrets.apiToken),
            bridges: hostBridgesConfig(config.bridges, (key) => secrets[key] !== undefined),
            telegramBotToken: secret(secrets.telegramBotToken?.trim()),
            webhookSecret: secret(secrets.webhookSecret?.trim()),
          },
        },
        // After the power-on: a server found off is running before the deploy polls it.
        { dependsOn: power ? [host, power.command] : [host] },
      )
    : undefined;

  return {
    host,
    tailnet,
    creation,
    runtime,
    deviceCleanup,
    power,
    outputs: {
      serverId: host.serverId,
      serverUrn: host.serverUrn,
      protectedUrns: host.protectedUrns,
      ipv4Address: host.ipv4Address,
      ipv6Address: host.ipv6Address,
      tailnetHostname: host.hostname,
      adminUser: host.adminUser,
      runtimeUrl,
      firewallRules: pulumi.secret(host.firewallRules),
      releaseHash: pulumi.output(release ? release.hash : ""),
      sshHostPublicKey: checked.hostPublicKey ?? "",
      ...(secrets.apiToken !== undefined ? { runtimeApiToken: pulumi.secret(secrets.apiToken) } : {}),
    },
  };
}

/**
 * The key's rotation: the template's hash alone while there is no creation marker (a stack
 * deployed before it existed keeps its key), else a hash of both, 12 hex digits like the
 * template's (the key description has room for exactly that).
 */
export function rotationWithCreation(templateRotation: string, marker: string): string {
  if (marker === "") return templateRotation;
  return createHash("sha256").update(templateRotation).update("\0").update(marker).digest("hex").slice(0, 12);
}
