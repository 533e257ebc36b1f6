/**
 * `pulumi up` entry for the workspace stack (Pulumi.yaml: main: stacks/workspace/index.ts).
 * Config is read once, here, and validated before any resource exists.
 */
import * as pulumi from "@pulumi/pulumi";
import { readWorkspaceConfig } from "./config.js";
import { workspaceProgram } from "./program.js";

const config = new pulumi.Config("picortex");
const apiToken = config.getSecret("apiToken");
const { outputs } = workspaceProgram(readWorkspaceConfig(config), {
  adminPrivateKey: config.getSecret("adminPrivateKey"),
  anthropicApiKey: config.getSecret("anthropicApiKey"),
  apiToken,
});

export const serverId = outputs.serverId;
export const ipv4Address = outputs.ipv4Address;
export const ipv6Address = outputs.ipv6Address;
export const tailnetHostname = outputs.tailnetHostname;
export const adminUser = outputs.adminUser;
export const runtimeUrl = outputs.runtimeUrl;
export const firewallRules = outputs.firewallRules;
export const releaseHash = outputs.releaseHash;
/** Read by every chat stack (stacks/chat) to call the runtime API; stays secret in state. */
export const runtimeApiToken = apiToken;
