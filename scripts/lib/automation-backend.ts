/**
 * The real ChatStackBackend: Pulumi's Automation API (LocalWorkspace) on the
 * stacks/chat program, run INLINE: this process serves the program to the CLI, so no
 * Node.js language host is involved (the same program function `pulumi up` runs through
 * stacks/chat/index.ts). Needs the Pulumi CLI on PATH (or `pulumiRoot`) and the usual
 * backend login: PULUMI_ACCESS_TOKEN for Pulumi Cloud, or PULUMI_BACKEND_URL plus
 * PULUMI_CONFIG_PASSPHRASE for a self-managed backend. Credentials come from the
 * environment, never from argv. `workDir` holds the project's Pulumi.yaml and the
 * stacks' Pulumi.chat-<id>.yaml (stacks/chat by default).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { LocalWorkspace, PulumiCommand, type Stack, type StackSettings } from "@pulumi/pulumi/automation/index.js";
import { CHAT_PROJECT, type ChatStackBackend, type ChatStackHandle, type ConfigValue, type StackInfo, type UpdateResult } from "./chat-stacks.js";
import { chatStackProgram } from "../../stacks/chat/program.js";

/** The inline program: the outputs `pulumi up` exports from stacks/chat/index.ts. */
async function program(): Promise<Record<string, unknown>> {
  return { ...chatStackProgram() };
}

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
  const ws = await LocalWorkspace.create({ workDir: opts.workDir, pulumiCommand, program });
  return {
    async listStacks(): Promise<StackInfo[]> {
      return (await ws.listStacks()).map((s) => ({ name: s.name, lastUpdate: s.lastUpdate, updateInProgress: s.updateInProgress, resourceCount: s.resourceCount, url: s.url }));
    },
    async createOrSelectStack(name) {
      return handle(await LocalWorkspace.createOrSelectStack({ stackName: name, projectName: CHAT_PROJECT, program }, { workDir: opts.workDir, pulumiCommand }));
    },
    async selectStack(name) {
      // A fresh checkout (CI destroy) has no stacks/chat/Pulumi.<stack>.yaml: rebuild what
      // destroy needs (the secrets provider and its salt) from the state in the backend.
      if (!["yaml", "yml", "json"].some((ext) => existsSync(join(opts.workDir, `Pulumi.${name}.${ext}`)))) {
        try {
          const settings = stackSettingsFromState(await ws.exportStack(name));
          if (settings) await ws.saveStackSettings(name, settings);
        } catch (err) {
          if (/no stack named|not found/i.test(String((err as Error).message))) return undefined;
          throw err;
        }
      }
      try {
        return handle(await LocalWorkspace.selectStack({ stackName: name, projectName: CHAT_PROJECT, program }, { workDir: opts.workDir, pulumiCommand }));
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

/**
 * What a stack's settings file must hold for `destroy` (which does not run the program)
 * to decrypt the state: the secrets provider and, for the passphrase provider, its salt.
 * Both are in the state itself (`secrets_providers`), so a chat stack created on another
 * machine can be destroyed from a fresh checkout (issue 21 item 15). undefined when the
 * state needs nothing (Pulumi Cloud's default provider) or has no secrets provider.
 */
export function stackSettingsFromState(deployment: { deployment?: unknown }): StackSettings | undefined {
  const sp = (deployment.deployment as { secrets_providers?: { type?: string; state?: Record<string, unknown> } } | undefined)?.secrets_providers;
  if (!sp?.type || sp.type === "service") return undefined;
  if (sp.type === "passphrase") {
    const salt = sp.state?.salt;
    if (typeof salt !== "string" || !/^v1:\S+$/.test(salt)) throw new Error("the stack's state has a passphrase secrets provider without a usable salt: restore its Pulumi.<stack>.yaml from the machine that created it");
    return { encryptionSalt: salt };
  }
  if (sp.type === "cloud") {
    const url = sp.state?.url;
    if (typeof url !== "string") throw new Error("the stack's state names a cloud secrets provider without its URL");
    return { secretsProvider: url };
  }
  return undefined;
}
