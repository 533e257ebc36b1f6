import { defineConfig } from "vitest/config";

// Tests start real processes (sudo, claude, tmux, chromium, sshd), so files run in
// separate forks and the generous timeouts are for a loaded 2-core CI machine, not
// assertions about speed.
//
// Two phases, run one after the other (sequence.groupOrder):
//   host      everything that runs on this machine directly, files in parallel;
//   machines  tests that build, mount and boot whole hosts (mmdebstrap, nspawn, qemu), and
//             the real-engine lane (tests/engine: Pulumi CLI, provider doubles, API emulators).
// The machines phase starts only after the host phase has finished, so no host test
// (the key-leak grep walks /var, /tmp, /srv as a chat user) ever sees a half-built
// root filesystem, a mounted /proc inside it, or the load of an image build.
const shared = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  test: {
    pool: "forks",
    maxWorkers: 2,
    reporters: ["default", "./tests/support/summary-reporter.ts"],
    projects: [
      {
        test: {
          ...shared,
          name: "host",
          include: ["tests/**/*.test.ts"],
          exclude: ["tests/e2e/**", "tests/engine/**"],
          fileParallelism: true,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: "machines",
          include: ["tests/e2e/**/*.test.ts", "tests/engine/**/*.test.ts"],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
