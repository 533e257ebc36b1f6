import { existsSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { z } from "zod";
import { findDataDir, isRuntimeDataDir } from "./data-dir.js";
import { PicortexError } from "../errors.js";

/** The runtime's brain section: whether this runtime serves the sync endpoints. */
export const brainConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Serve the sync endpoints (`/v1/brain/push|pull`) from this runtime. */
    syncServer: z.boolean().default(true),
    /**
     * The workspace the chats' brain entries belong to. In host mode each chat's brain
     * token is scoped to it; in local mode the chats' MCP servers record under it.
     */
    workspaceId: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, "must be 1-128 characters of letters, digits, '.', '_', ':', '/' or '-'")
      .default("local"),
  })
  .strict();

export type BrainConfig = z.infer<typeof brainConfigSchema>;

const scopeId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, "must be 1-128 characters of letters, digits, '.', '_', ':', '/' or '-'");

/** `~/.picortex/brain.json` (or $PICORTEX_BRAIN_CONFIG): what a machine's brain client talks to. */
export const brainClientFileSchema = z
  .object({
    /** The org-wide scope every entry carries; a sync token is issued for exactly one workspace. */
    workspaceId: scopeId.optional(),
    /** The runtime to sync with, e.g. `http://picortex-host:7420` (tailnet). Never put the token here. */
    serverUrl: z.string().url().optional(),
    /** File holding the sync token (must be mode 0600). */
    tokenFile: z.string().min(1).optional(),
    /** Default agent name written on entries recorded from this machine. */
    agent: z.string().min(1).max(128).optional(),
    /** Local database path. */
    db: z.string().min(1).optional(),
  })
  .strict();

export interface BrainClientConfig {
  dbPath: string;
  workspaceId: string;
  projectId: string;
  /** How the project id was found, for `status` (env, git remote, git directory, directory). */
  projectSource: "env" | "git-remote" | "git-dir" | "dir" | "runtime";
  /** Where dbPath came from, for `status` and `mcp install`. */
  dbSource: "env" | "data-dir" | "file" | "home";
  agent: string;
  serverUrl?: string;
  /** The token itself when given by $PICORTEX_BRAIN_TOKEN, else read from `tokenFile` at sync time. */
  token?: string;
  tokenFile: string;
}

export class BrainConfigError extends PicortexError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("config", "config", message, options);
  }
}

/** Finds the enclosing git repository's root (a `.git` dir or worktree file), or undefined. */
export function findGitRoot(start: string): string | undefined {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, ".git"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** `git@github.com:Org/Repo.git` and `https://github.com/Org/Repo` both become `github.com/org/repo`. */
export function normalizeRemoteUrl(url: string): string | undefined {
  let s = url.trim();
  const scp = /^(?:[^@/]+@)?([^:/]+):(?!\/)(.+)$/.exec(s);
  if (scp) s = `${scp[1]}/${scp[2]}`;
  else {
    try {
      const u = new URL(s);
      s = `${u.hostname}${u.pathname}`;
    } catch {
      return undefined;
    }
  }
  s = s.replace(/\/+$/, "").replace(/\.git$/, "").replace(/\/+$/, "").toLowerCase();
  s = s.replace(/[^a-z0-9._:/-]/g, "-").replace(/^[^a-z0-9]+/, "");
  return s.length > 0 ? s.slice(0, 128) : undefined;
}

function remoteOfGitRoot(root: string): string | undefined {
  let gitDir = join(root, ".git");
  try {
    if (statSync(gitDir).isFile()) {
      // A worktree: `.git` is a file pointing at the real git dir; its config lives in the common dir.
      const pointer = /gitdir:\s*(.+)/.exec(readFileSync(gitDir, "utf8"))?.[1]?.trim();
      if (!pointer) return undefined;
      gitDir = resolve(root, pointer);
      const common = join(gitDir, "commondir");
      if (existsSync(common)) gitDir = resolve(gitDir, readFileSync(common, "utf8").trim());
    }
    const config = readFileSync(join(gitDir, "config"), "utf8");
    const section = /\[remote "origin"\]([^[]*)/.exec(config)?.[1];
    return section ? /^\s*url\s*=\s*(.+)$/m.exec(section)?.[1]?.trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Project id per repo: the origin remote (same on every clone), else the repo's directory name. */
export function resolveProjectId(cwd: string): { projectId: string; source: BrainClientConfig["projectSource"] } {
  const root = findGitRoot(cwd);
  if (root) {
    const remote = remoteOfGitRoot(root);
    const normalized = remote ? normalizeRemoteUrl(remote) : undefined;
    if (normalized) return { projectId: normalized, source: "git-remote" };
    return { projectId: safeId(`local/${basename(root)}`), source: "git-dir" };
  }
  return { projectId: safeId(`dir/${basename(resolve(cwd)) || "root"}`), source: "dir" };
}

function safeId(s: string): string {
  return s.replace(/[^A-Za-z0-9._:/-]/g, "-").slice(0, 128);
}

/** The project id every chat of a local runtime records under (cli/brain-mcp.ts chatBrainMcp). */
export const RUNTIME_BRAIN_PROJECT = "picortex-chats";

/**
 * The only place the brain client reads its environment. The local store, first match:
 *
 *   1. `$PICORTEX_BRAIN_DB` (what the runtime gives each chat's MCP server), else
 *   2. `<data dir>/brain.sqlite` for `--data-dir DIR`, else `$PICORTEX_DATA_DIR` (must be an
 *      existing runtime data dir), else
 *   3. `db` in `~/.picortex/brain.json`, else
 *   4. `<nearest .picortex>/brain.sqlite`: the runtime data dir rule of every client
 *      (config/data-dir.ts), so inside the clone `brain record`/`recall` use the store the
 *      chats use, under the chats' project id (`picortex-chats`), else
 *   5. `~/.picortex/brain.sqlite` (outside any runtime's folder).
 *
 * Workspace defaults to `local`; the project id to the repo's (git origin), or the chats'
 * one when the store is a runtime's (2 and 4); `$PICORTEX_PROJECT_ID` overrides both.
 */
export function loadBrainClientConfig(env: NodeJS.ProcessEnv, cwd: string, opts: { dataDir?: string } = {}): BrainClientConfig {
  const home = env.HOME || homedir();
  const filePath = env.PICORTEX_BRAIN_CONFIG || join(home, ".picortex", "brain.json");
  let file: z.infer<typeof brainClientFileSchema> = {};
  if (existsSync(filePath)) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(filePath, "utf8"));
    } catch (err) {
      throw new BrainConfigError(`Brain config ${filePath} is not valid JSON: ${(err as Error).message}`);
    }
    const parsed = brainClientFileSchema.safeParse(raw);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      throw new BrainConfigError(`Brain config ${filePath}: ${i.path.join(".") || "(root)"}: ${i.message}`);
    }
    file = parsed.data;
  }
  const check = (name: string, value: string | undefined, schema: z.ZodType<string>) => {
    if (value === undefined || value === "") return undefined;
    const r = schema.safeParse(value);
    if (!r.success) throw new BrainConfigError(`${name}=${JSON.stringify(value)}: ${r.error.issues[0]!.message}`);
    return r.data;
  };
  let dbPath: string;
  let dbSource: BrainClientConfig["dbSource"];
  const explicitDir = opts.dataDir ? { dir: opts.dataDir, via: "--data-dir" } : env.PICORTEX_DATA_DIR ? { dir: env.PICORTEX_DATA_DIR, via: "PICORTEX_DATA_DIR" } : undefined;
  if (env.PICORTEX_BRAIN_DB) {
    dbPath = resolve(cwd, env.PICORTEX_BRAIN_DB);
    dbSource = "env";
  } else if (explicitDir) {
    const dir = resolve(cwd, explicitDir.dir);
    if (!isRuntimeDataDir(dir)) {
      throw new BrainConfigError(
        `${explicitDir.via} ${explicitDir.dir}: ${existsSync(dir) ? "is not a picortex runtime data dir (no api-token, runtime.sqlite or endpoint.json in it)" : "does not exist"}. Point it at the folder \`npm start\` uses (./.picortex in the clone), or leave it unset.`,
      );
    }
    dbPath = join(dir, "brain.sqlite");
    dbSource = "data-dir";
  } else if (file.db) {
    dbPath = resolve(file.db);
    dbSource = "file";
  } else {
    const found = findDataDir(cwd);
    dbPath = found ? join(found, "brain.sqlite") : join(home, ".picortex", "brain.sqlite");
    dbSource = found ? "data-dir" : "home";
  }
  const envProject = check("PICORTEX_PROJECT_ID", env.PICORTEX_PROJECT_ID, scopeId);
  const project = envProject
    ? { projectId: envProject, source: "env" as const }
    : dbSource === "data-dir"
      ? { projectId: RUNTIME_BRAIN_PROJECT, source: "runtime" as const }
      : resolveProjectId(cwd);
  const serverUrl = check("PICORTEX_BRAIN_URL", env.PICORTEX_BRAIN_URL, z.string().url()) ?? file.serverUrl;
  return {
    dbPath,
    dbSource,
    workspaceId: check("PICORTEX_WORKSPACE_ID", env.PICORTEX_WORKSPACE_ID, scopeId) ?? file.workspaceId ?? "local",
    projectId: project.projectId,
    projectSource: project.source,
    agent: check("PICORTEX_AGENT", env.PICORTEX_AGENT, z.string().min(1).max(128)) ?? file.agent ?? "cli",
    ...(serverUrl ? { serverUrl } : {}),
    ...(env.PICORTEX_BRAIN_TOKEN ? { token: env.PICORTEX_BRAIN_TOKEN.trim() } : {}),
    tokenFile: resolve(env.PICORTEX_BRAIN_TOKEN_FILE || file.tokenFile || join(home, ".picortex", "brain-token")),
  };
}

/** The sync token: from the environment, or from its file, which must not be readable by others. */
export function readBrainToken(config: BrainClientConfig): string {
  if (config.token) return config.token;
  if (!existsSync(config.tokenFile)) {
    throw new BrainConfigError(
      `No brain sync token: set PICORTEX_BRAIN_TOKEN or write it to ${config.tokenFile} (mode 0600). Create one on the runtime host with \`picortex brain token create --workspace ${config.workspaceId}\`.`,
    );
  }
  const mode = statSync(config.tokenFile).mode & 0o777;
  if (mode & 0o077) {
    throw new BrainConfigError(`Token file ${config.tokenFile} is readable by others (mode ${mode.toString(8)}); run chmod 600 ${config.tokenFile}.`);
  }
  const token = readFileSync(config.tokenFile, "utf8").trim();
  if (!token) throw new BrainConfigError(`Token file ${config.tokenFile} is empty.`);
  return token;
}
