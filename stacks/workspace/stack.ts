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
import { readWorkspaceConfig } from "./config.js";
import { workspaceProgram, type WorkspaceProgramOptions } from "./program.js";

export function workspaceStack(options: WorkspaceProgramOptions = {}): Record<string, unknown> {
  const config = new pulumi.Config("picortex");
  const apiToken = config.getSecret("apiToken");
  const { outputs } = workspaceProgram(
    readWorkspaceConfig(config),
    {
      adminPrivateKey: config.getSecret("adminPrivateKey"),
      anthropicApiKey: config.getSecret("anthropicApiKey"),
      apiToken,
    },
    options,
  );
  return {
    serverId: outputs.serverId,
    ipv4Address: outputs.ipv4Address,
    ipv6Address: outputs.ipv6Address,
    tailnetHostname: outputs.tailnetHostname,
    adminUser: outputs.adminUser,
    runtimeUrl: outputs.runtimeUrl,
    firewallRules: outputs.firewallRules,
    releaseHash: outputs.releaseHash,
    /** Read by every chat stack (stacks/chat) to call the runtime API; stays secret in state. */
    runtimeApiToken: apiToken,
  };
}
