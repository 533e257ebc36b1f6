/**
 * The real ChatStackBackend: Pulumi's Automation API (LocalWorkspace) on the
 * stacks/chat program. Needs the Pulumi CLI on PATH (or `pulumiRoot`) and the usual
 * backend login: PULUMI_ACCESS_TOKEN for Pulumi Cloud, or PULUMI_BACKEND_URL plus
 * PULUMI_CONFIG_PASSPHRASE for a self-managed backend. Credentials come from the
 * environment, never from argv.
 */
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation/index.js";
import type { ChatStackBackend, ChatStackHandle, ConfigValue, StackInfo, UpdateResult } from "./chat-stacks.js";

export class PulumiCliMissingError extends Error {
  constructor(cause: unknown) {
    super(
      "The Pulumi CLI is required for scripts/chat.ts (the Automation API drives it): install it from https://www.pulumi.com/docs/install/ and log in (pulumi login, or PULUMI_BACKEND_URL + PULUMI_CONFIG_PASSPHRASE for a self-managed backend).",
    );
    this.name = "PulumiCliMissingError";
    this.cause = cause;
  }
}

function handle(stack: Stack): ChatStackHandle {
  const summary = (s: { result: string; resourceChanges?: Record<string, number> }): Pick<UpdateResult, "result" | "resourceChanges"> => ({
    result: s.result as UpdateResult["result"],
    resourceChanges: s.resourceChanges,
  });
  return {
    name: stack.name,
    async setConfig(config: Record<string, ConfigValue>) {
      await stack.setAllConfig(config, false);
    },
    async up(onOutput) {
      const res = await stack.up({ onOutput, color: "never" });
      const outputs = Object.fromEntries(Object.entries(res.outputs).map(([k, v]) => [k, v.secret ? "[secret]" : v.value]));
      return { ...summary(res.summary), outputs };
    },
    async destroy(onOutput) {
      const res = await stack.destroy({ onOutput, color: "never" });
      return summary(res.summary);
    },
  };
}

export async function automationBackend(opts: { workDir: string; pulumiRoot?: string }): Promise<ChatStackBackend> {
  let pulumiCommand: PulumiCommand;
  try {
    pulumiCommand = await PulumiCommand.get(opts.pulumiRoot ? { root: opts.pulumiRoot } : {});
  } catch (err) {
    throw new PulumiCliMissingError(err);
  }
  const ws = await LocalWorkspace.create({ workDir: opts.workDir, pulumiCommand });
  return {
    async listStacks(): Promise<StackInfo[]> {
      return (await ws.listStacks()).map((s) => ({ name: s.name, lastUpdate: s.lastUpdate, updateInProgress: s.updateInProgress, resourceCount: s.resourceCount, url: s.url }));
    },
    async createOrSelectStack(name) {
      return handle(await LocalWorkspace.createOrSelectStack({ stackName: name, workDir: opts.workDir }, { pulumiCommand }));
    },
    async selectStack(name) {
      try {
        return handle(await LocalWorkspace.selectStack({ stackName: name, workDir: opts.workDir }, { pulumiCommand }));
      } catch (err) {
        if (/no stack named|not found/i.test(String((err as Error).message))) return undefined;
        throw err;
      }
    },
    async removeStack(name) {
      await ws.removeStack(name);
    },
  };
}
