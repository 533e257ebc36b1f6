/**
 * ChatWorkspace: one chat on a picortex host, created and deleted through the runtime's
 * API (the runtime then creates the chat's Linux user `pc-<id>`, home, settings and
 * per-chat token, and on delete archives the home and removes the user).
 *
 * It is a local @pulumi/command Command running a fixed `node -e` program on the
 * machine that runs Pulumi (which must be on the tailnet). The API token travels only
 * in the command's environment, which is secret; never in argv, command text or logs.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { readProgram } from "./programs/read-program.js";
import { assertChatId, chatUser } from "../agent-runtime/host/contract.js";

export interface ChatWorkspaceArgs {
  /** Chat id (2-24 chars: lowercase letters, digits, single hyphens; starts with a letter). */
  chatId: string;
  /** Runtime base URL over the tailnet, e.g. `http://picortex:7420` (the workspace stack's `runtimeUrl`). */
  runtimeUrl: pulumi.Input<string>;
  /** Runtime API bearer token (the workspace stack's secret `runtimeApiToken`). */
  apiToken: pulumi.Input<string>;
  /** Token budget for the chat; unset uses the runtime's default. */
  budgetTokens?: number;
  /** On `pulumi destroy`: `archive` keeps a tarball of the chat home on the host; `purge` also forgets it. */
  onDelete?: "archive" | "purge";
}

export class ChatWorkspace extends pulumi.ComponentResource {
  readonly chatId: pulumi.Output<string>;
  /** The Linux user the chat's turns run as. */
  readonly linuxUser: pulumi.Output<string>;
  /** The runtime's JSON view of the chat after creation (no secrets in it). */
  readonly chat: pulumi.Output<string>;

  constructor(name: string, args: ChatWorkspaceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("picortex:chat:ChatWorkspace", name, {}, opts);
    const id = assertChatId(args.chatId);
    if (args.budgetTokens !== undefined && (!Number.isInteger(args.budgetTokens) || args.budgetTokens < 1))
      throw new Error(`budgetTokens must be a positive integer, got ${args.budgetTokens}`);
    const onDelete = args.onDelete ?? "archive";
    if (onDelete !== "archive" && onDelete !== "purge") throw new Error(`onDelete must be "archive" or "purge", got ${String(onDelete)}`);

    const chat = new command.local.Command(
      `${name}-chat`,
      {
        interpreter: ["node", "-e"],
        create: chatApiScript("create"),
        delete: chatApiScript("delete"),
        environment: chatApiEnvironment({ chatId: id, runtimeUrl: args.runtimeUrl, apiToken: args.apiToken, budgetTokens: args.budgetTokens, onDelete }),
        // Only a different chat id is a different chat. A new runtime URL or budget is an
        // update: `create` runs again (no `update` command) and adopts the chat. Replacing
        // on the URL ran create-before-delete: the new resource adopted the chat, then the
        // old one's delete archived it, so the chat deleted itself (issue 21 item 16).
        triggers: [id],
        // The program prints progress on stderr and the chat view on stdout; neither holds secrets.
        logging: "stderr",
        addPreviousOutputInEnv: false,
      },
      // Children do not inherit the component's dependsOn; forward it.
      { parent: this, dependsOn: opts?.dependsOn },
    );

    this.chatId = pulumi.output(id);
    this.linuxUser = pulumi.output(chatUser(id));
    this.chat = chat.stdout;
    this.registerOutputs({ chatId: this.chatId, linuxUser: this.linuxUser, chat: this.chat });
  }
}

// ---------------------------------------------------------------------------------
// Pure helpers.

export function chatApiEnvironment(a: {
  chatId: string;
  runtimeUrl: pulumi.Input<string>;
  apiToken: pulumi.Input<string>;
  budgetTokens?: number;
  onDelete: "archive" | "purge";
}): Record<string, pulumi.Input<string>> {
  const env: Record<string, pulumi.Input<string>> = {
    PICORTEX_CHAT_ID: assertChatId(a.chatId),
    PICORTEX_RUNTIME_URL: pulumi.output(a.runtimeUrl).apply(assertRuntimeUrl),
    PICORTEX_API_TOKEN: pulumi.secret(a.apiToken),
    PICORTEX_CHAT_ON_DELETE: a.onDelete,
  };
  if (a.budgetTokens !== undefined) env.PICORTEX_CHAT_BUDGET = String(a.budgetTokens);
  return env;
}

export function assertRuntimeUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`runtimeUrl ${JSON.stringify(url)} is not a URL; expected e.g. http://picortex:7420`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`runtimeUrl must be http(s), got ${u.protocol}`);
  if (u.username || u.password || u.search || u.hash) throw new Error("runtimeUrl must not carry credentials, a query or a fragment: the token goes in a header");
  return url.replace(/\/+$/, "");
}

/**
 * The fixed program for one action. Everything variable comes from the environment.
 * create: POST /v1/chats {id, budgetTokens?}; an existing ready chat with that id is
 * adopted (so a re-run after a lost state write is safe). delete: DELETE /v1/chats/:id
 * (`?purge=1` when asked); an already-absent chat counts as deleted. The program is a
 * real, type-checked file (components/programs/chat-api.cjs); only its action line is set here.
 */
export function chatApiScript(action: "create" | "delete"): string {
  if (action !== "create" && action !== "delete") throw new Error(`unknown action ${String(action)}`);
  const program = readProgram("chat-api.cjs");
  const line = 'const action = "create";';
  if (program.split("\n").filter((l) => l === line).length !== 1) throw new Error(`components/programs/chat-api.cjs must hold the line ${line} exactly once`);
  return program.replace(line, `const action = ${JSON.stringify(action)};`);
}
