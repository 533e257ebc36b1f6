/**
 * The workspace stack as a function of its (already validated) config, so the entry
 * point stays two lines and tests can drive it under Pulumi mocks.
 */
import * as pulumi from "@pulumi/pulumi";
import { TailnetAccess } from "../../components/tailnet-access.js";
import { WorkspaceHost, hostRotationKey, type WorkspaceHostTemplateVars } from "../../components/workspace-host.js";
import type { WorkspaceConfig } from "./config.js";

export interface WorkspaceOutputs {
  serverId: pulumi.Output<string>;
  ipv4Address: pulumi.Output<string>;
  ipv6Address: pulumi.Output<string>;
  tailnetHostname: string;
  adminUser: string;
  runtimeUrl: string;
  firewallRules: WorkspaceHost["firewallRules"];
}

export function workspaceProgram(config: WorkspaceConfig): { outputs: WorkspaceOutputs; host: WorkspaceHost; tailnet: TailnetAccess } {
  const template: WorkspaceHostTemplateVars = {
    hostname: config.hostname,
    adminUser: config.adminUser,
    adminSshPublicKey: config.sshPublicKey,
    firewall: {
      tailscaleDirectUdp: config.tailscaleDirectUdp,
      sshAllowlist: config.sshAllowlist,
      allowSshFromAnywhere: config.allowSshFromAnywhere,
    },
  };
  const placement = { template, image: config.image, location: config.location, tailscaleTags: config.tailscaleTags, tailscaleSsh: config.tailscaleSsh };

  const tailnet = new TailnetAccess("tailnet", {
    hostname: config.hostname,
    tags: config.tailscaleTags,
    expirySeconds: config.tailscaleKeyExpirySeconds,
    // A change that would replace the server also mints a fresh key (a spent key cannot join).
    rotation: hostRotationKey(placement),
  });

  const host = new WorkspaceHost("workspace", {
    ...placement,
    serverType: config.serverType,
    tailscaleAuthKey: tailnet.authKey,
    protection: config.protection,
    applyTemplateChanges: config.applyTemplateChanges,
    labels: config.labels,
  });
  for (const warning of host.warnings) pulumi.log.warn(warning, host);

  return {
    host,
    tailnet,
    outputs: {
      serverId: host.serverId,
      ipv4Address: host.ipv4Address,
      ipv6Address: host.ipv6Address,
      tailnetHostname: host.hostname,
      adminUser: host.adminUser,
      runtimeUrl: host.runtimeUrl,
      firewallRules: host.firewallRules,
    },
  };
}
