/**
 * Argument parsing and output of scripts/chat.ts, separate from the Pulumi backend so
 * tests run the whole command line against a fake backend.
 */
import { nextStep, pulumiErrorCause } from "./pulumi-errors.js";
import { parseArgs } from "node:util";
import { ChatStacks, type ChatStackBackend } from "./chat-stacks.js";

export const CHAT_HELP = `Usage: tsx scripts/chat.ts <command> [options]

Create, destroy and list per-chat stack instances (stacks/chat) with the Pulumi
Automation API. Each chat is its own stack, chat-<id>.

Commands:
  create <id>    create or update the chat's stack and run pulumi up
                   --workspace-stack <name>   required: the workspace stack (e.g. prod,
                                              or organization/picortex/prod)
                   --workspace-org <org>      Pulumi Cloud org of the workspace stack
                   --budget <tokens>          token budget for the chat
                   --on-delete archive|purge  what destroy leaves on the host (default archive)
                   --runtime-url <url>        reach the runtime here instead of the workspace's
                                              runtimeUrl output (e.g. an SSH port forward)
  destroy <id>   pulumi destroy the chat's stack, then remove the stack
                   --keep-stack               keep the (empty) stack and its config
  destroy --all  destroy every chat stack, one after another (teardown: before the workspace)
  list           list chat stacks

Options:
  --json         print the result as JSON on stdout (progress still goes to stderr)
  -h, --help     show this help

Needs the Pulumi CLI and a backend login (PULUMI_ACCESS_TOKEN, or PULUMI_BACKEND_URL
and PULUMI_CONFIG_PASSPHRASE); no Node.js language host (the program runs inline).
PICORTEX_PULUMI_ROOT: where the CLI is (<root>/bin/pulumi); PICORTEX_CHAT_WORKDIR: the
folder with the chat project's Pulumi.yaml and stack files (default stacks/chat).
Runs at most one update per stack at a time.
Exit codes: 0 ok, 1 failed, 2 bad usage.`;

export interface ChatCliDeps {
  backend: () => Promise<ChatStackBackend>;
  lockDir: string;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

export async function runChatCli(argv: string[], deps: ChatCliDeps): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        "workspace-stack": { type: "string" },
        "workspace-org": { type: "string" },
        budget: { type: "string" },
        "on-delete": { type: "string" },
        "runtime-url": { type: "string" },
        "keep-stack": { type: "boolean", default: false },
        all: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    deps.stderr(`chat: ${(err as Error).message}\n\n${CHAT_HELP}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    (values.help ? deps.stdout : deps.stderr)(CHAT_HELP + "\n");
    return values.help ? 0 : 2;
  }
  const [cmd, id, ...rest] = positionals;
  const usage = (m: string) => {
    deps.stderr(`chat: ${m}\nRun with --help for usage.\n`);
    return 2;
  };
  if (rest.length) return usage(`unexpected arguments: ${rest.join(" ")}`);
  const progress = (line: string) => deps.stderr(`chat: ${line}\n`);
  const emit = (result: unknown, human: string) => deps[values.json ? "stdout" : "stderr"](values.json ? JSON.stringify(result) + "\n" : human + "\n");

  try {
    if (cmd === "create") {
      if (!id) return usage("create needs a chat id");
      if (!values["workspace-stack"]) return usage("create needs --workspace-stack <name> (e.g. prod)");
      const onDelete = values["on-delete"];
      if (onDelete !== undefined && onDelete !== "archive" && onDelete !== "purge") return usage("--on-delete must be archive or purge");
      const budget = values.budget === undefined ? undefined : Number(values.budget);
      if (budget !== undefined && (!Number.isInteger(budget) || budget < 1)) return usage("--budget must be a positive integer");
      const chats = new ChatStacks(await deps.backend(), { progress }, { lockDir: deps.lockDir });
      const r = await chats.create(id, {
        workspaceStack: values["workspace-stack"],
        workspaceOrg: values["workspace-org"],
        budgetTokens: budget,
        onDelete: onDelete as "archive" | "purge" | undefined,
        runtimeUrl: values["runtime-url"],
      });
      emit(r, `chat ${r.id}: ${r.action} (stack ${r.stack})`);
      return 0;
    }
    if (cmd === "destroy" && values.all) {
      if (id) return usage("destroy takes either a chat id or --all, not both");
      const chats = new ChatStacks(await deps.backend(), { progress }, { lockDir: deps.lockDir });
      const ids = (await chats.list()).map((c) => c.id);
      progress(ids.length ? `destroying ${ids.length} chat(s): ${ids.join(", ")}` : "no chat stacks to destroy");
      const results = [];
      // One at a time, stopping at the first failure so the workspace is never destroyed under a live chat.
      for (const chatId of ids) results.push(await chats.destroy(chatId, { keepStack: values["keep-stack"] }));
      emit({ destroyed: results }, `destroyed ${results.length} chat(s)`);
      return 0;
    }
    if (cmd === "destroy") {
      if (!id) return usage("destroy needs a chat id (or --all)");
      const chats = new ChatStacks(await deps.backend(), { progress }, { lockDir: deps.lockDir });
      const r = await chats.destroy(id, { keepStack: values["keep-stack"] });
      emit(r, `chat ${r.id}: destroyed${values["keep-stack"] ? " (stack kept)" : ""}`);
      return 0;
    }
    if (cmd === "list") {
      if (id) return usage("list takes no arguments");
      const chats = new ChatStacks(await deps.backend(), { progress }, { lockDir: deps.lockDir });
      const list = await chats.list();
      if (values.json) deps.stdout(JSON.stringify({ chats: list }) + "\n");
      else if (list.length === 0) deps.stdout("no chats (create one: tsx scripts/chat.ts create <id> --workspace-stack prod)\n");
      else for (const c of list) deps.stdout(`${c.id.padEnd(24)} ${c.stack.padEnd(30)} ${c.updateInProgress ? "updating" : (c.lastUpdate ?? "never updated")}\n`);
      return 0;
    }
    return usage(`unknown command ${JSON.stringify(cmd)}`);
  } catch (err) {
    // One line of cause and the next step; the CLI's full output (with inline programs,
    // often repeated) is kept out of the terminal and JSON.
    const cause = pulumiErrorCause(err instanceof Error ? err.message : String(err));
    const next = nextStep(cause);
    if (values.json) deps.stdout(JSON.stringify({ error: { name: err instanceof Error ? err.name : "Error", message: cause, ...(next ? { next } : {}) } }) + "\n");
    deps.stderr(`chat: ${cause}\n${next ? `chat: next: ${next}\n` : ""}`);
    return 1;
  }
}
