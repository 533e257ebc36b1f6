import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import type { BrainClientConfig } from "../../config/brain.js";
import { readBrainToken } from "../../config/brain.js";
import { SyncError } from "../shared/errors.js";
import { HybridLogicalClock } from "../shared/hlc.js";
import { HttpSyncTransport } from "./http-transport.js";
import { BrainService } from "../shared/service.js";
import { SqliteBrainRepository } from "../shared/sqlite-repository.js";
import { BrainSyncClient, DEFAULT_RETRY, type RetryPolicy } from "./sync-client.js";
import type { SyncError as SyncErrorType } from "../shared/errors.js";

export interface OpenBrain {
  repo: SqliteBrainRepository;
  clock: HybridLogicalClock;
  service: BrainService;
  nodeId: string;
  close(): void;
}

/** This replica's HLC node id: random once, then stable, stored in the local database. */
export function ensureNodeId(repo: SqliteBrainRepository): string {
  const existing = repo.getMeta("node_id");
  if (existing) return existing;
  const id = randomBytes(8).toString("hex");
  repo.setMeta("node_id", id);
  return id;
}

/**
 * Creates a new store file 0600 (in a 0700 folder) before SQLite opens it: SQLite creates
 * the -wal and -shm files with the database file's permissions, so all three stay private
 * whatever the umask. An existing file is left as it is.
 */
export function createPrivate(dbPath: string): void {
  mkdirSync(dirname(dbPath), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(dbPath, "wx", 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
}

/** Opens the local brain described by the client config (the CLI and MCP server both use this). */
export function openBrain(config: BrainClientConfig, warn?: (message: string) => void): OpenBrain {
  createPrivate(config.dbPath);
  const repo = SqliteBrainRepository.open(config.dbPath, warn);
  const nodeId = ensureNodeId(repo);
  const clock = new HybridLogicalClock(nodeId);
  const service = new BrainService(repo, clock, { workspaceId: config.workspaceId, projectId: config.projectId, agent: config.agent });
  return { repo, clock, service, nodeId, close: () => repo.close() };
}

/** A sync client over HTTP, or a `not_configured` error saying what to set. */
export function openSyncClient(
  brain: OpenBrain,
  config: BrainClientConfig,
  retry: RetryPolicy = DEFAULT_RETRY,
  onRetry?: (err: SyncErrorType, delayMs: number) => void,
  onProgress?: (event: { phase: "push" | "pull"; done: number; cursor?: number }) => void,
  onWarn?: (message: string) => void,
): BrainSyncClient {
  if (!config.serverUrl) {
    throw new SyncError("not_configured", "No brain server configured: set PICORTEX_BRAIN_URL or serverUrl in ~/.picortex/brain.json.");
  }
  const transport = new HttpSyncTransport({ serverUrl: config.serverUrl, token: readBrainToken(config) });
  return new BrainSyncClient(brain.repo, brain.clock, transport, config.workspaceId, retry, Date.now, onRetry, onProgress, onWarn);
}
