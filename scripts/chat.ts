#!/usr/bin/env -S npx tsx
/**
 * Per-chat stacks from the command line:
 *   npx tsx scripts/chat.ts create team-alpha --workspace-stack prod
 *   npx tsx scripts/chat.ts list --json
 *   npx tsx scripts/chat.ts destroy team-alpha
 * See scripts/lib/chat-cli.ts for the options and scripts/lib/chat-stacks.ts for the logic.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runChatCli } from "./lib/chat-cli.js";
import { automationBackend } from "./lib/automation-backend.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

runChatCli(process.argv.slice(2), {
  backend: () => automationBackend({ workDir: process.env.PICORTEX_CHAT_WORKDIR || join(repoRoot, "stacks", "chat"), pulumiRoot: process.env.PICORTEX_PULUMI_ROOT }),
  lockDir: join(repoRoot, ".picortex", "locks"),
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
}).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chat: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
