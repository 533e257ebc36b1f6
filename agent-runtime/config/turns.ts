import { accessSync, constants } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { DEFAULT_CHATS_ROOT, DEFAULT_CLAUDE_PATH, CHAT_USER_HELPER_PATH } from "../host/contract.js";

/** Tools an unattended chat agent may use without asking (`--permission-mode dontAsk`). */
/** `mcp__brain`: every tool of the brain MCP server each chat is configured with (record, recall). */
export const DEFAULT_ALLOWED_TOOLS = ["Read", "Write", "Edit", "Glob", "Grep", "Bash", "WebFetch", "mcp__brain"];

/** A Claude Code permission rule: a tool name, optionally with its specifier (`Bash(npm test:*)`). */
export const toolRule = z.string().regex(/^[A-Za-z][A-Za-z0-9_]*(\([^()]*\))?$/, "a tool rule such as Read, Bash(npm test:*) or mcp__brain");

const absolutePath = z.string().refine((p) => p.startsWith("/"), "must be an absolute path");

export const warmConfigSchema = z
  .object({
    /** Keep recently active chats' `claude` processes running between turns (item 7). */
    enabled: z.boolean().default(true),
    /** Warm processes at once; each costs ~290 MiB, and a CX23 has 4 GB. */
    maxWarm: z.number().int().min(0).max(64).default(2),
    /** A warm process idle this long is stopped; its chat resumes cold next time. */
    idleSeconds: z.number().int().min(1).max(24 * 3600).default(300),
    /**
     * A cold chat may take a full pool's least recently used slot only if that process has
     * been idle this long; otherwise its turn runs cold. Stops many chats taking turns from
     * thrashing the pool (each eviction + warm start costs more than a cold turn). 0 = pure LRU.
     */
    minIdleToEvictSeconds: z.number().min(0).max(24 * 3600).default(30),
    /** Total RSS of warm processes; above it the least recently used idle one is evicted. */
    memoryBudgetMiB: z.number().int().min(64).max(1024 * 1024).default(1200),
  })
  .strict();

export const turnsConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Host mode: parent of the chat homes (created by the host setup, root-owned 0755). */
    chatsRoot: absolutePath.default(DEFAULT_CHATS_ROOT),
    /**
     * The Claude Code CLI. Default: /usr/local/bin/claude in host mode; in local mode the
     * project's node_modules/.bin/claude when present (see resolveClaudePath).
     */
    claudePath: absolutePath.optional(),
    /** Host mode: the root helper that creates and deletes chat users (run through sudo). */
    chatUserHelper: absolutePath.default(CHAT_USER_HELPER_PATH),
    /** Turns running at once across chats; a CX23 has 2 vCPU / 4 GB. */
    maxParallel: z.number().int().min(1).max(64).default(2),
    /**
     * Chats provisioned at once; the rest wait in a queue (with progress). Each runs
     * `claude --version` (a Node process of ~100-150 MB resident, see docs/turns.md).
     */
    maxParallelProvision: z.number().int().min(1).max(32).default(2),
    turnTimeoutSeconds: z.number().int().min(1).max(24 * 3600).default(600),
    /** After SIGTERM to a timed-out turn's process group, wait this long before SIGKILL. */
    killGraceSeconds: z.number().int().min(0).max(60).default(3),
    /**
     * On SIGTERM, running turns get this long to finish before they are stopped (and
     * queued again, not counted as an attempt). It must fit the unit's TimeoutStopSec
     * (30 s) with room for killGraceSeconds and closing: 20 + 3 + margin < 30.
     */
    stopGraceSeconds: z.number().int().min(0).max(600).default(20),
    /** Upstream Messages API the gateway forwards to. */
    upstreamBaseUrl: z.string().url().default("https://api.anthropic.com"),
    /**
     * Loopback port of the key gateway, the chats' own listener (apart from the API).
     * Default: 7419 in host mode (chats keep it in their settings), a free port in local mode.
     */
    gatewayPort: z.number().int().min(0).max(65535).optional(),
    /**
     * File holding the real Anthropic key (root-readable only). Default: the systemd
     * credential `$CREDENTIALS_DIRECTORY/anthropic-api-key` when that variable is set.
     * Never copied into a chat's env or files.
     */
    apiKeyFile: absolutePath.optional(),
    /** Longest turn text accepted by the API, in bytes (the CLI takes at most 10 MiB on stdin). */
    maxTextBytes: z.number().int().min(1).max(10 * 1024 * 1024).default(100_000),
    /** What DELETE does with a chat's workspace: tar it under <dataDir>/archives, or remove it. */
    onDelete: z.enum(["archive", "remove"]).default("archive"),
    /** A turn interrupted by a runtime crash is retried once (true) or reported as interrupted. */
    retryInterrupted: z.boolean().default(true),
    /** Per-chat token budget (input + output) applied to new chats; unset means unlimited. */
    defaultBudgetTokens: z.number().int().min(1).optional(),
    /** The portal agent's token budget at the gateway (its own principal, host mode); unset means unlimited. */
    agentBudgetTokens: z.number().int().min(1).optional(),
    /**
     * `dontAsk` + allowedTools works for any user (root included); `bypassPermissions`
     * is refused by the CLI as root, so use it only in host mode.
     */
    permissionMode: z.enum(["dontAsk", "bypassPermissions"]).default("dontAsk"),
    allowedTools: z.array(toolRule).default(DEFAULT_ALLOWED_TOOLS),
    warm: warmConfigSchema.prefault({}),
  })
  .strict();

export type TurnsConfig = z.infer<typeof turnsConfigSchema>;
export type WarmConfig = z.infer<typeof warmConfigSchema>;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The CLI to run. Host mode uses the host contract's path; local mode looks for the
 * project's own `node_modules/.bin/claude` (walking up from this file, then the cwd)
 * and otherwise the host path.
 */
export function resolveClaudePath(mode: "host" | "local", configured: string | undefined, cwd = process.cwd()): string {
  if (configured) return configured;
  if (mode === "host") return DEFAULT_CLAUDE_PATH;
  const candidates: string[] = [];
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    candidates.push(join(dir, "node_modules", ".bin", "claude"));
    if (dirname(dir) === dir) break;
  }
  candidates.push(join(resolve(cwd), "node_modules", ".bin", "claude"), DEFAULT_CLAUDE_PATH, "/usr/bin/claude");
  return candidates.find(isExecutable) ?? DEFAULT_CLAUDE_PATH;
}

/** The key file: configured, else the systemd credential (config/ is where env is read). */
export function resolveApiKeyFile(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (configured) return configured;
  const dir = env.CREDENTIALS_DIRECTORY;
  return dir ? join(dir, "anthropic-api-key") : undefined;
}
