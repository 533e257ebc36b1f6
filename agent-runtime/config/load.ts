import { readFileSync } from "node:fs";
import { issueMessage } from "./issue-message.js";
import { resolve } from "node:path";
import { runtimeConfigSchema, type RuntimeConfig } from "./schema.js";
import { defaultDataDir } from "./data-dir.js";
import { PicortexError } from "../errors.js";

/** A configuration the operator must fix (exit 2). */
export class ConfigError extends PicortexError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("config", "config", message, options);
  }
}

export interface ConfigSources {
  /** Path of a JSON config file (`--config` or PICORTEX_CONFIG). */
  file?: string;
  /** Values from command-line flags, merged over the file. */
  overrides?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Where relative paths and the data dir search start (default: process.cwd()). */
  cwd?: string;
}

/** `--port`, PICORTEX_PORT and the file's server.port: a plain message, never "expected number, received NaN". */
export function parsePort(value: unknown, source: string): number {
  const text = typeof value === "number" ? String(value) : typeof value === "string" ? value.trim() : "";
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw new ConfigError(`${source} must be a port number from 0 to 65535 (0 picks a free one), not ${JSON.stringify(value)}`);
  }
  return Number(text);
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] =
      v && typeof v === "object" && !Array.isArray(v) && b && typeof b === "object" && !Array.isArray(b)
        ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/**
 * `ANTHROPIC_BASE_URL` in the shell that runs `npm start` is where the gateway forwards
 * turns (as Claude Code itself would use it). It must be an http(s) URL, and it may not
 * contradict `turns.upstreamBaseUrl` in the config file: one of them would be ignored.
 */
function upstreamFromEnv(env: NodeJS.ProcessEnv, fromFile: Record<string, unknown>, file: string | undefined): string | undefined {
  const value = env.ANTHROPIC_BASE_URL?.trim();
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`ANTHROPIC_BASE_URL must be an http(s) URL such as https://api.anthropic.com, not ${JSON.stringify(value)}; fix or unset it.`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`ANTHROPIC_BASE_URL must be an http(s) URL such as https://api.anthropic.com, not ${JSON.stringify(value)}; fix or unset it.`);
  }
  const inFile = (fromFile.turns as { upstreamBaseUrl?: unknown } | undefined)?.upstreamBaseUrl;
  if (typeof inFile === "string" && inFile.replace(/\/+$/, "") !== value.replace(/\/+$/, "")) {
    throw new ConfigError(
      `ANTHROPIC_BASE_URL (${value}) and turns.upstreamBaseUrl in ${file} (${inFile}) disagree; unset ANTHROPIC_BASE_URL or change the config file, so it is clear where turns go.`,
    );
  }
  return value.replace(/\/+$/, "");
}

/** The only place the runtime reads its environment. */
export function loadRuntimeConfig(sources: ConfigSources = {}): RuntimeConfig {
  const env = sources.env ?? process.env;
  const file = sources.file ?? env.PICORTEX_CONFIG;
  let fromFile: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(resolve(file), "utf8");
    } catch (err) {
      throw new ConfigError(`Cannot read config file ${file}: ${(err as Error).message}`);
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`Config file ${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const fromEnv: Record<string, unknown> = {};
  if (env.PICORTEX_DATA_DIR) fromEnv.dataDir = env.PICORTEX_DATA_DIR;
  if (env.PICORTEX_PORT) fromEnv.server = { port: parsePort(env.PICORTEX_PORT, "PICORTEX_PORT") };
  const upstream = upstreamFromEnv(env, fromFile, file);
  if (upstream) fromEnv.turns = { upstreamBaseUrl: upstream };
  const merged = deepMerge(deepMerge(fromFile, fromEnv), sources.overrides ?? {});
  const cwd = sources.cwd ?? process.cwd();
  // One data dir rule (config/data-dir.ts): flag, env, file, else the nearest .picortex.
  if (merged.dataDir === undefined) merged.dataDir = defaultDataDir(cwd);
  const parsed = runtimeConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  - ${i.path.join(".") || "(root)"}: ${issueMessage(i)}`);
    throw new ConfigError(`Invalid runtime configuration${file ? ` in ${file}` : ""}:\n${lines.join("\n")}`);
  }
  const config = parsed.data;
  return { ...config, dataDir: resolve(cwd, config.dataDir) };
}
