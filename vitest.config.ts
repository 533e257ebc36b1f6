import { defineConfig } from "vitest/config";

// Tests start real processes (sudo, claude, tmux, chromium, sshd), so files run in
// separate forks and the generous timeouts are for a loaded 2-core CI machine, not
// assertions about speed.
export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ["default", "./tests/support/summary-reporter.ts"],
  },
});
