/**
 * The chat stack's configuration: every key with its type, default, meaning and an
 * actionable error. Parsed once, by the program; tests call parseChatStackConfig directly.
 */
import { z } from "zod";
import { CHAT_ID_PATTERN } from "../../agent-runtime/host/contract.js";

export const CHAT_STACK_PREFIX = "chat-";

export const chatStackConfigSchema = z
  .object({
    /** Chat id; default: the stack name without its `chat-` prefix (`pulumi stack init chat-team-alpha`). */
    chatId: z
      .string()
      .regex(CHAT_ID_PATTERN, "chatId must be 2-24 characters: lowercase letters, digits and single hyphens, starting with a letter (e.g. team-alpha)")
      .optional(),
    /** The workspace stack to attach to: `prod`, or fully qualified `<org>/<project>/<stack>`. Required. */
    workspaceStack: z.string({ error: "set the workspace stack: pulumi config set workspaceStack prod" }).min(1, "set the workspace stack: pulumi config set workspaceStack prod"),
    /** Pulumi Cloud org of the workspace stack; default: this stack's org (`organization` on self-managed backends). */
    workspaceOrg: z.string().min(1).optional(),
    /** Project name of the workspace stack. */
    workspaceProject: z.string().min(1).default("picortex"),
    /** Token budget for the chat; unset uses the runtime's default. */
    budgetTokens: z.coerce.number().int().min(1, "budgetTokens must be at least 1").optional(),
    /** What `pulumi destroy` leaves on the host: `archive` (a tarball of the chat home) or `purge`. */
    onDelete: z.enum(["archive", "purge"]).default("archive"),
    /** Override the workspace stack's `runtimeUrl` (e.g. an SSH tunnel during bootstrap). */
    runtimeUrl: z.string().url("runtimeUrl must be a URL like http://picortex:7420").optional(),
  })
  .strict();

export type ChatStackConfig = z.infer<typeof chatStackConfigSchema> & { chatId: string };

export class ChatStackConfigError extends Error {
  constructor(issues: string[]) {
    super(`Invalid chat stack configuration:\n${issues.map((i) => `  - ${i}`).join("\n")}`);
    this.name = "ChatStackConfigError";
  }
}

/** This project's keys (`<project>:<key>`) from all stack config, without the prefix. */
export function projectConfig(all: Record<string, string>, project: string): Record<string, unknown> {
  const prefix = `${project}:`;
  return Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
}

/** `raw` holds the project's config keys without the `picortex-chat:` prefix. */
export function parseChatStackConfig(raw: Record<string, unknown>, stackName: string): ChatStackConfig {
  const parsed = chatStackConfigSchema.safeParse(raw);
  if (!parsed.success) throw new ChatStackConfigError(parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`));
  let chatId = parsed.data.chatId;
  if (!chatId) {
    const derived = stackName.startsWith(CHAT_STACK_PREFIX) ? stackName.slice(CHAT_STACK_PREFIX.length) : "";
    if (!CHAT_ID_PATTERN.test(derived)) {
      throw new ChatStackConfigError([
        `chatId: the stack ${JSON.stringify(stackName)} is not named chat-<id>; name it like \`pulumi stack init chat-team-alpha\` or set \`pulumi config set chatId team-alpha\``,
      ]);
    }
    chatId = derived;
  }
  return { ...parsed.data, chatId };
}

/** The workspace stack outputs this program reads (the workspace stack must export them). */
export const WORKSPACE_OUTPUTS = {
  /** `http://<tailnet name>:7420`. */
  runtimeUrl: "runtimeUrl",
  /** The runtime API bearer token (secret). */
  apiToken: "runtimeApiToken",
} as const;
