/**
 * `pulumi up` entry for the workspace stack (Pulumi.yaml: main: stacks/workspace/index.ts).
 * Everything is in workspaceStack() (stack.ts), which inline Automation API programs
 * call too; this file only names the outputs.
 */
import type * as pulumi from "@pulumi/pulumi";
import { workspaceStack } from "./stack.js";

const out = workspaceStack() as Record<string, pulumi.Output<any> | any>;

export const serverId: pulumi.Output<string> = out.serverId;
export const serverUrn: pulumi.Output<string> = out.serverUrn;
export const protectedUrns: pulumi.Output<string[]> = out.protectedUrns;
export const ipv4Address: pulumi.Output<string> = out.ipv4Address;
export const ipv6Address: pulumi.Output<string> = out.ipv6Address;
export const tailnetHostname: string = out.tailnetHostname;
export const adminUser: string = out.adminUser;
export const runtimeUrl: pulumi.Output<string> = out.runtimeUrl;
export const firewallRules = out.firewallRules;
export const releaseHash: pulumi.Output<string> = out.releaseHash;
export const sshHostPublicKey: string = out.sshHostPublicKey;
/** Read by every chat stack (stacks/chat) to call the runtime API; stays secret in state. */
export const runtimeApiToken: pulumi.Output<string> | undefined = out.runtimeApiToken;
