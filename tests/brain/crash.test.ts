import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../agent-runtime/store/database.js";
import { SqliteBrainRepository } from "../../agent-runtime/brain/shared/sqlite-repository.js";
import { tempDir } from "./helpers.js";

// A real kill -9 in the middle of pulling and recording: every page is applied together
// with its cursor or not at all, every acknowledged write survives, and the FTS index is intact.
describe("local brain survives kill -9", () => {
  it("keeps the pull cursor consistent with the entries and loses no acknowledged write", async () => {
    const { dir, cleanup } = tempDir("picortex-brain-crash-");
    try {
      const db = join(dir, "brain.sqlite");
      const child = spawn(process.execPath, ["--import", "tsx", resolve("tests/brain/fixtures/crash-writer.ts"), db], { stdio: ["ignore", "pipe", "pipe"] });
      const acked: Array<{ cursor: number; id: string }> = [];
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      await new Promise<void>((done, fail) => {
        let buf = "";
        child.stdout.on("data", (d: Buffer) => {
          buf += d.toString();
          const lines = buf.split("\n");
          buf = lines.pop()!;
          for (const l of lines) {
            const [cursor, id] = l.split(" ");
            acked.push({ cursor: Number(cursor), id: id! });
          }
          if (acked.length >= 40 && !child.killed) child.kill("SIGKILL");
        });
        child.on("exit", (_code, signal) => (signal === "SIGKILL" ? done() : fail(new Error(`writer exited before the kill: ${stderr}`))));
      });
      expect(acked.length).toBeGreaterThanOrEqual(40);

      const repo = new SqliteBrainRepository(openDatabase(db));
      try {
        const cursor = Number(repo.getMeta("pull_cursor:ws"));
        const pulled = (repo.db.prepare("SELECT COUNT(*) AS n, MAX(created_at) AS max FROM brain_entries WHERE agent = 'peer'").get() as { n: number; max: number });
        // Page and cursor are one transaction: exactly the entries up to the cursor exist.
        expect(pulled.n).toBe(cursor);
        expect(pulled.max).toBe(cursor);
        expect(cursor).toBeGreaterThanOrEqual(acked[acked.length - 1]!.cursor);
        // Every write the writer reported as done is there (synchronous=FULL, WAL).
        for (const a of acked) expect(repo.get("ws", a.id)?.title).toMatch(/^local \d+$/);
        expect(repo.pendingCount("ws")).toBeGreaterThanOrEqual(acked.length);
        expect(repo.db.pragma("integrity_check", { simple: true })).toBe("ok");
        expect(() => repo.db.exec("INSERT INTO brain_fts (brain_fts) VALUES ('integrity-check')")).not.toThrow();
        const hits = repo.recall("pulled entry", { workspaceId: "ws", limit: 1000 });
        expect(hits.hits.length).toBe(Math.min(cursor, 1000));
      } finally {
        repo.close();
      }
    } finally {
      cleanup();
    }
  });
});
