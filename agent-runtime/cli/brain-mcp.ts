import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import type { Command } from "commander";
import { writeFileAtomic } from "../store/atomic-file.js";
import { RUNTIME_BRAIN_PROJECT, loadBrainClientConfig } from "../config/brain.js";
import { PicortexError } from "../errors.js";
import { EXIT_FAILED, EXIT_USAGE, fail as shellFail } from "./shell.js";

/**
 * How Claude Code starts the brain MCP server, with absolute paths only. `npx picortex`
 * outside the clone would look the unclaimed name `picortex` up in the npm registry (and
 * run whatever someone published under it), so registrations never go through npx.
 */
export interface McpServerSpec {
  type: "stdio";
  command: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * The absolute entry that runs `picortex` with this Node. In the release bundle this code
 * lives in the bundle, which is the CLI entry itself; from the sources (a clone) it is
 * bin/picortex.mjs, which registers tsx. Never process.argv[1]: inside a test runner or
 * another host program that is not picortex.
 */
export function picortexEntry(moduleUrl: string = import.meta.url): string {
  const self = fileURLToPath(moduleUrl);
  if (self.endsWith(".ts")) return fileURLToPath(new URL("../bin/picortex.mjs", moduleUrl));
  return self;
}

export function brainMcpSpec(env: Record<string, string> = {}): McpServerSpec {
  return { type: "stdio", command: process.execPath, args: [picortexEntry(), "brain", "mcp"], env };
}

/**
 * `claude mcp add` argv for the brain server (never through a shell). `user` scope makes
 * one memory shared by every project of this account; `local` (Claude's default) is this
 * project only for you; `project` writes .mcp.json for everyone in the repository.
 */
export function claudeMcpAddArgs(spec: McpServerSpec, opts: { name: string; scope: "local" | "user" | "project" }): string[] {
  const envFlags = Object.entries(spec.env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  // `-e` takes several values, so it goes after the name, as in `claude mcp add --help`.
  return ["mcp", "add", "--scope", opts.scope, opts.name, ...envFlags, "--", spec.command, ...spec.args];
}

/**
 * Adds (or replaces) the `brain` server in a Claude config file (`<CLAUDE_CONFIG_DIR>/.claude.json`,
 * the user-scope file), keeping everything else the CLI stored there. Written atomically, 0600.
 */
export function writeMcpServer(claudeJsonPath: string, name: string, spec: McpServerSpec): void {
  let doc: Record<string, unknown> = {};
  if (existsSync(claudeJsonPath)) {
    try {
      const parsed = JSON.parse(readFileSync(claudeJsonPath, "utf8")) as unknown;
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) doc = parsed as Record<string, unknown>;
    } catch {
      // A torn file would be rewritten by the CLI anyway; keep only what we know.
    }
  }
  const servers = (doc.mcpServers && typeof doc.mcpServers === "object" ? doc.mcpServers : {}) as Record<string, unknown>;
  doc.mcpServers = { ...servers, [name]: spec };
  writeFileAtomic(claudeJsonPath, JSON.stringify(doc, null, 2) + "\n", 0o600);
}

/** The env a chat's brain server runs with: the runtime's brain store, recorded as this chat. */
export function chatBrainEnv(opts: { dbPath: string; workspaceId: string; chatId: string }): Record<string, string> {
  return { PICORTEX_BRAIN_DB: opts.dbPath, PICORTEX_WORKSPACE_ID: opts.workspaceId, PICORTEX_AGENT: `chat-${opts.chatId}` };
}

/**
 * Local mode: every chat's brain server uses one store in the runtime's data dir, under one
 * project id, so what one chat records every other chat recalls ("every agent shares what
 * it learns"); each entry names the chat that recorded it.
 */
export function chatBrainMcp(dataDir: string, workspaceId = "local"): (chatId: string) => McpServerSpec {
  return (chatId) => brainMcpSpec({ ...chatBrainEnv({ dbPath: join(dataDir, "brain.sqlite"), workspaceId, chatId }), PICORTEX_PROJECT_ID: RUNTIME_BRAIN_PROJECT });
}

export const claudeJsonPath = (configDir: string) => join(configDir, ".claude.json");

/** Finds `claude`: --claude, else PATH, else the clone's own node_modules/.bin/claude. */
function findClaude(explicit: string | undefined): string {
  if (explicit) return resolve(explicit);
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && existsSync(join(dir, "claude"))) return join(dir, "claude");
  }
  const local = fileURLToPath(new URL("../../node_modules/.bin/claude", import.meta.url));
  if (existsSync(local)) return local;
  throw new Error("Claude Code (`claude`) is not on PATH; install it, or pass --claude PATH.");
}

/** `picortex brain mcp install`: registers the brain MCP server with Claude Code by absolute path. */
export function registerBrainMcpInstall(mcp: Command): void {
  mcp
    .command("install")
    .description("Register the brain MCP server with Claude Code (`claude mcp add`), by absolute path: works from any folder, never through npx.")
    .option("-s, --scope <scope>", "user (one memory for every project of this account), local (this project, you only) or project (.mcp.json)", "user")
    .option("--name <name>", "server name in Claude Code", "brain")
    .option("--claude <path>", "the claude executable (default: claude on PATH)")
    .option("--data-dir <dir>", "the runtime data dir whose brain.sqlite the server uses (default: the brain store rule, see `picortex brain --help`)")
    .option("--print", "print the `claude mcp add` command instead of running it (nothing is installed)")
    .option("--json", "print the result as JSON: {name, scope, command, args, env} after installing, {command, args} with --print")
    .addHelpText("after", "\nRe-running it replaces an existing registration of the same name and scope (claude mcp remove, then add).")
    .action((o: { scope: string; name: string; claude?: string; print?: boolean; json?: boolean; dataDir?: string }) => {
      const fail = (message: string, exit: typeof EXIT_USAGE | typeof EXIT_FAILED): never =>
        shellFail(exit === EXIT_USAGE ? new PicortexError("invalid_input", "usage", message) : new PicortexError("failed", "error", message), {
          prefix: "picortex brain mcp install",
          json: o.json,
        });
      if (o.scope !== "user" && o.scope !== "local" && o.scope !== "project") fail(`--scope must be user, local or project, not ${JSON.stringify(o.scope)}`, 2);
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(o.name)) fail("--name uses letters, digits, _ and - (1-64)", 2);
      // The same store the CLI (and, in a runtime's folder, the chats) use, pinned by absolute
      // path: Claude Code starts the server from any folder, where the rule would find another.
      let storeEnv: Record<string, string>;
      try {
        const c = loadBrainClientConfig(process.env, process.cwd(), { dataDir: o.dataDir });
        storeEnv = { PICORTEX_BRAIN_DB: c.dbPath, ...(c.dbSource === "data-dir" && c.projectSource === "runtime" ? { PICORTEX_PROJECT_ID: c.projectId } : {}) };
      } catch (err) {
        return fail((err as Error).message, 2);
      }
      const spec = brainMcpSpec(storeEnv);
      const args = claudeMcpAddArgs(spec, { name: o.name, scope: o.scope as "user" | "local" | "project" });
      let claude: string;
      try {
        claude = findClaude(o.claude);
      } catch (err) {
        return fail((err as Error).message, 1);
      }
      if (o.print) {
        process.stdout.write(o.json ? JSON.stringify({ command: claude, args }) + "\n" : [claude, ...args].map((a) => (/^[A-Za-z0-9_./=:@-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(" ") + "\n");
        return;
      }
      // Idempotent: drop a registration of the same name in this scope first (absent is fine).
      spawnSync(claude, ["mcp", "remove", "--scope", o.scope, o.name], { encoding: "utf8", timeout: 60_000 });
      const r = spawnSync(claude, args, { encoding: "utf8", timeout: 60_000 });
      if (r.error) fail(`could not run ${claude}: ${r.error.message}`, 1);
      if (r.status !== 0) fail(`claude mcp add failed (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`, 1);
      if (o.json) process.stdout.write(JSON.stringify({ name: o.name, scope: o.scope, command: spec.command, args: spec.args, env: spec.env }) + "\n");
      else
        process.stdout.write(
          `Registered MCP server "${o.name}" (${o.scope} scope): ${spec.command} ${spec.args.join(" ")}\n  store: ${spec.env.PICORTEX_BRAIN_DB}\n  check it with: claude mcp get ${o.name}\n`,
        );
    });
}

/**
 * The portal session's agent gets the brain too: when the session command is Claude Code,
 * it is started with `--mcp-config <dataDir>/portal-mcp.json` naming the same store as the
 * chats (written here, 0600). Any other command, or one that already passes
 * --mcp-config, is left as configured.
 */
export function portalCommandWithBrain(command: readonly string[], dataDir: string): string[] {
  const [bin] = command;
  if (!bin || bin.split("/").pop() !== "claude" || command.some((a) => a === "--mcp-config" || a.startsWith("--mcp-config="))) return [...command];
  const file = join(dataDir, "portal-mcp.json");
  const spec = brainMcpSpec({ PICORTEX_BRAIN_DB: join(dataDir, "brain.sqlite"), PICORTEX_WORKSPACE_ID: "local", PICORTEX_PROJECT_ID: "picortex-chats", PICORTEX_AGENT: "portal" });
  writeFileAtomic(file, JSON.stringify({ mcpServers: { brain: spec } }, null, 2) + "\n", 0o600);
  return [...command, "--mcp-config", file];
}
