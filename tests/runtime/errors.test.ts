/**
 * Issue 14: one error base (PicortexError: category, code, cause), mapped once to an HTTP
 * status (http/errors.ts) and once to an exit code (cli/shell.ts), and one CLI shell.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { BrainError, SyncError } from "../../agent-runtime/brain/shared/errors.js";
import { ClientError } from "../../agent-runtime/cli/endpoint.js";
import { EXIT_FAILED, EXIT_USAGE, exitCodeOf, fail } from "../../agent-runtime/cli/shell.js";
import { BrainConfigError } from "../../agent-runtime/config/brain.js";
import { ConfigError } from "../../agent-runtime/config/load.js";
import { PicortexError } from "../../agent-runtime/errors.js";
import { HttpError, httpStatusOf, tooManyRequests } from "../../agent-runtime/http/errors.js";
import { BackupError } from "../../agent-runtime/store/backup.js";
import { DataDirError } from "../../agent-runtime/store/data-dir.js";
import { DiskFullError } from "../../agent-runtime/store/disk.js";
import { TurnError } from "../../agent-runtime/turns/errors.js";

describe("one error base", () => {
  const cases: Array<[string, PicortexError, string, number, number]> = [
    ["ConfigError", new ConfigError("bad config"), "config", 500, EXIT_USAGE],
    ["BrainConfigError", new BrainConfigError("no brain"), "config", 500, EXIT_USAGE],
    ["BrainError invalid_input", new BrainError("invalid_input", "x"), "invalid_input", 400, EXIT_USAGE],
    ["BrainError not_found", new BrainError("not_found", "x"), "not_found", 404, EXIT_USAGE],
    ["BrainError conflict", new BrainError("conflict", "x"), "conflict", 409, EXIT_FAILED],
    ["SyncError not_configured", new SyncError("not_configured", "x"), "sync_not_configured", 500, EXIT_USAGE],
    ["SyncError unauthorized", new SyncError("unauthorized", "x", 401), "sync_unauthorized", 500, EXIT_FAILED],
    ["SyncError unreachable", new SyncError("unreachable", "x"), "sync_unreachable", 503, EXIT_FAILED],
    ["TurnError", new TurnError("timeout", "x"), "timeout", 500, EXIT_FAILED],
    ["BackupError", new BackupError("x"), "state", 500, EXIT_USAGE],
    ["DataDirError", new DataDirError("x", "/f"), "state", 500, EXIT_USAGE],
    ["ClientError config", new ClientError("x", "config", "config"), "config", 500, EXIT_USAGE],
    ["ClientError not_running", new ClientError("x", "unavailable", "not_running"), "not_running", 503, EXIT_FAILED],
    ["HttpError 429 (retry later: not a usage error)", tooManyRequests(3), "rate_limited", 429, EXIT_FAILED],
    ["HttpError 422", new HttpError(422, "idempotency_key_reused", "x"), "idempotency_key_reused", 422, EXIT_USAGE],
    ["DiskFullError", new DiskFullError("/d", 0, 1), "disk_full", 507, EXIT_FAILED],
  ];
  for (const [name, err, code, status, exit] of cases) {
    it(`${name}: code ${code}, HTTP ${status}, exit ${exit}`, () => {
      expect(err).toBeInstanceOf(PicortexError);
      expect(err.code).toBe(code);
      expect(httpStatusOf(err)).toBe(status);
      expect(exitCodeOf(err)).toBe(exit);
    });
  }

  it("keeps the cause, and a plain Error exits 1", () => {
    const cause = new Error("ENOSPC");
    expect(new DiskFullError("/d", 0, 1, cause).cause).toBe(cause);
    expect(new TurnError("claude_failed", "x", { cause }).cause).toBe(cause);
    expect(new PicortexError("failed", "x", "y").cause).toBeUndefined();
    expect(exitCodeOf(new Error("x"))).toBe(EXIT_FAILED);
    expect(exitCodeOf("a string")).toBe(EXIT_FAILED);
  });
});

describe("the CLI shell", () => {
  afterEach(() => vi.restoreAllMocks());

  function capture(run: () => void) {
    const stdout: string[] = [];
    const stderr: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((c) => (stdout.push(String(c)), true));
    vi.spyOn(process.stderr, "write").mockImplementation((c) => (stderr.push(String(c)), true));
    const exit = vi.spyOn(process, "exit").mockImplementation(((code?: number) => {
      throw Object.assign(new Error("exit"), { exitCode: code });
    }) as never);
    let code: number | undefined;
    try {
      run();
    } catch (e) {
      code = (e as { exitCode?: number }).exitCode;
    }
    expect(exit).toHaveBeenCalledTimes(1);
    return { stdout: stdout.join(""), stderr: stderr.join(""), code };
  }

  it("prints the message with the command's prefix and exits with the error's code", () => {
    const r = capture(() => fail(new BrainError("not_found", "No brain entry x."), { prefix: "picortex brain" }));
    expect(r).toEqual({ stdout: "", stderr: "picortex brain: No brain entry x.\n", code: 2 });
  });

  it("--json: one document on stdout with the error's code (and extra fields first)", () => {
    const r = capture(() => fail(new BackupError("not a backup"), { prefix: "picortex", json: true, extra: { ok: false } }));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('{"ok":false,"error":{"code":"state","message":"not a backup"}}\n');
    const plain = capture(() => fail(new Error("boom"), { prefix: "picortex chat", json: true }));
    expect([plain.code, JSON.parse(plain.stdout)]).toEqual([1, { error: { code: "error", message: "boom" } }]);
  });
});
