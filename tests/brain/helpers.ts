import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../agent-runtime/store/database.js";
import { HybridLogicalClock } from "../../agent-runtime/brain/shared/hlc.js";
import { BrainService, type BrainIdentity } from "../../agent-runtime/brain/shared/service.js";
import { SqliteBrainRepository } from "../../agent-runtime/brain/shared/sqlite-repository.js";

export function tempDir(prefix = "picortex-brain-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An in-memory brain with a controllable clock. */
export function memoryBrain(identity: Partial<BrainIdentity> = {}, node = "node-a", now: () => number = Date.now) {
  const repo = new SqliteBrainRepository(openDatabase(":memory:"));
  const clock = new HybridLogicalClock(node, now);
  const service = new BrainService(repo, clock, { workspaceId: "ws1", projectId: "github.com/acme/api", agent: "tester", ...identity }, now);
  return { repo, clock, service };
}

import { loadRuntimeConfig } from "../../agent-runtime/config/load.js";
import { startRuntime, type RunningRuntime } from "../../agent-runtime/server.js";
import { createLogger } from "../../agent-runtime/log.js";
import { BrainServerStore } from "../../agent-runtime/brain/server/server-store.js";
import type { BrainEntry } from "../../agent-runtime/brain/shared/entry.js";

/** A real runtime on loopback with only the brain mounted, plus a second connection for issuing tokens. */
export async function startBrainRuntime(): Promise<{
  runtime: RunningRuntime;
  url: string;
  dataDir: string;
  store: BrainServerStore;
  stop: () => Promise<void>;
}> {
  const { dir, cleanup } = tempDir("picortex-brain-rt-");
  const config = loadRuntimeConfig({
    overrides: { dataDir: dir, server: { port: 0 }, portal: { enabled: false }, turns: { enabled: false } },
    env: {},
  });
  const runtime = await startRuntime(config, createLogger("test", () => {}));
  const db = openDatabase(join(dir, "runtime.sqlite"));
  const store = new BrainServerStore(db);
  return {
    runtime,
    url: runtime.urls[0]!,
    dataDir: dir,
    store,
    stop: async () => {
      db.close();
      await runtime.close();
      cleanup();
    },
  };
}

export function post(url: string, path: string, body: unknown, token?: string): Promise<Response> {
  return fetch(url + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

export function sampleEntry(overrides: Partial<BrainEntry> = {}): BrainEntry {
  return {
    entryId: "e-1",
    workspaceId: "ws1",
    projectId: "github.com/acme/api",
    agent: "tester",
    kind: "note",
    title: "t",
    summary: "",
    conclusion: "",
    tags: [],
    refs: [],
    confidence: null,
    status: "active",
    supersededBy: null,
    createdAt: 1,
    updatedAt: 1,
    version: "000000000000001-000000-n1",
    ...overrides,
  };
}
