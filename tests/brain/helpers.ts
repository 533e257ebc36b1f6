import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../agent-runtime/store/database.js";
import { HybridLogicalClock } from "../../agent-runtime/brain/hlc.js";
import { BrainService, type BrainIdentity } from "../../agent-runtime/brain/service.js";
import { SqliteBrainRepository } from "../../agent-runtime/brain/sqlite-repository.js";

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
