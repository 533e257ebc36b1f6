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

// The fast tier (`npm run test:unit`): pure logic, renderers under mocks, in-process
// HTTP on loopback. No root, no Linux users, no external programs; seconds in all.
// The same files run in `npm test` as part of the host phase's group.
const unitFiles = [
  "tests/bench/report.test.ts",
  "tests/bridges/approvals-attack.test.ts",
  "tests/bridges/approvals-pure.test.ts",
  "tests/bridges/terminal-output.test.ts",
  "tests/brain/chat-tokens.test.ts",
  "tests/brain/clock-poisoning.test.ts",
  "tests/brain/config.test.ts",
  "tests/brain/convergence.property.test.ts",
  "tests/brain/migration.test.ts",
  "tests/brain/query.test.ts",
  "tests/brain/relevance.test.ts",
  "tests/brain/server.test.ts",
  "tests/brain/store.test.ts",
  "tests/brain/sync-client.test.ts",
  "tests/deploy/chat-stack-cloud.test.ts",
  "tests/deploy/native-lock.test.ts",
  "tests/deploy/workflows.test.ts",
  "tests/infra/components-pure.test.ts",
  "tests/infra/host-contract.test.ts",
  "tests/infra/host-vars-from-config.test.ts",
  "tests/infra/workspace-config.test.ts",
  "tests/infra/workspace-deploy.test.ts",
  "tests/infra/workspace-entry.test.ts",
  "tests/infra/workspace-lifecycle.test.ts",
  "tests/infra/workspace-bridges.test.ts",
  "tests/infra/workspace-stack.test.ts",
  "tests/portal/connection.test.ts",
  "tests/portal/protocol.test.ts",
  "tests/runtime/endpoint-trust.test.ts",
  "tests/runtime/errors.test.ts",
  "tests/runtime/http.test.ts",
  "tests/runtime/listen-fds.test.ts",
  "tests/turns/activity.test.ts",
  "tests/turns/approvals-route.test.ts",
  "tests/turns/chat-service.test.ts",
  "tests/turns/units.test.ts",
  // The API emulators' rules (the booting test, tests/engine/emulators/boot.test.ts, is a machines test).
  "tests/engine/emulators/hetzner.test.ts",
  "tests/engine/emulators/tailscale.test.ts",
  // The recording comparison (keeping the provider doubles honest), on hand-written logs.
  "tests/engine/recording.test.ts",
  // The provider doubles' contract rules found by the recordings (no engine).
  "tests/engine/doubles.test.ts",
  "tests/engine/procs.test.ts",
];

export default defineConfig({
  test: {
    pool: "forks",
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ["default", "./tests/support/summary-reporter.ts"],
    projects: [
      {
        test: {
          ...shared,
          name: "unit",
          include: unitFiles,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: "host",
          include: ["tests/**/*.test.ts"],
          exclude: ["tests/e2e/**", "tests/engine/**", ...unitFiles],
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: "machines",
          include: ["tests/e2e/**/*.test.ts", "tests/engine/**/*.test.ts"],
          exclude: unitFiles,
          // One file at a time: each boots whole hosts, and two at once would only contend.
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
