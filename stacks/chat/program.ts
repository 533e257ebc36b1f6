/**
 * Per-chat stack program: one stack instance per chat (`pulumi stack init chat-<id>`). It
 * reads the workspace stack's outputs and creates the chat on that host; `pulumi destroy`
 * deletes it (archives the home, removes the Linux user and the chat token).
 *
 * A function, so the same program runs under `pulumi up` (index.ts) and inline through
 * the Automation API (scripts/chat.ts), which then needs no Node.js language host.
 */
import * as pulumi from "@pulumi/pulumi";
import { ChatWorkspace } from "../../components/chat-workspace.js";
import { parseChatStackConfig, projectConfig, WORKSPACE_OUTPUTS } from "./config.js";
import { workspaceStackName } from "./stack-reference.js";

export interface ChatStackOutputs {
  workspaceStack: string;
  chatId: pulumi.Output<string>;
  linuxUser: pulumi.Output<string>;
  chatStatus: ChatWorkspace["chat"];
}

export function chatStackProgram(): ChatStackOutputs {
  // Every key of this project's namespace, so a misspelled one is an error (the schema is
  // strict), not silently ignored (issue 21 item 19).
  const config = parseChatStackConfig(projectConfig(pulumi.runtime.allConfig(), pulumi.getProject()), pulumi.getStack());

  const workspaceStack = workspaceStackName({
    org: config.workspaceOrg ?? pulumi.getOrganization(),
    project: config.workspaceProject,
    stack: config.workspaceStack,
  });
  const workspace = new pulumi.StackReference("workspace", { name: workspaceStack });

  const runtimeUrl = config.runtimeUrl ?? workspace.requireOutput(WORKSPACE_OUTPUTS.runtimeUrl).apply(String);
  const apiToken = pulumi.secret(workspace.requireOutput(WORKSPACE_OUTPUTS.apiToken).apply(String));

  const chat = new ChatWorkspace(config.chatId, {
    chatId: config.chatId,
    runtimeUrl,
    apiToken,
    budgetTokens: config.budgetTokens,
    onDelete: config.onDelete,
  });

  return { workspaceStack, chatId: chat.chatId, linuxUser: chat.linuxUser, chatStatus: chat.chat };
}
