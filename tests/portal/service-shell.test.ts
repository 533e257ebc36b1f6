/**
 * On a host the runtime runs as `picortex`, whose passwd shell is /usr/sbin/nologin, and
 * systemd exports that as SHELL. tmux runs a one-word session command through SHELL, so
 * without the portal's override the agent session died at creation (found by the
 * booted-host e2e test). This reproduces that environment with a real tmux server.
 */
import { afterEach, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureSession, runTmux, sessionExists, tmuxEnv, type TmuxTarget } from "../../agent-runtime/portal/tmux.js";

const dir = mkdtempSync(join(tmpdir(), "pcx-shell-"));
const target: TmuxTarget = {
  session: "svc",
  command: ["cat"],
  socket: join(dir, "tmux.sock"),
  windowSize: "largest",
  env: { PATH: "/usr/sbin:/usr/bin:/bin", HOME: dir, SHELL: "/usr/sbin/nologin", TERM: "xterm-256color" },
};

afterEach(() => {
  try {
    execFileSync("tmux", ["-S", target.socket!, "kill-server"], { stdio: "ignore" });
  } catch {
    /* already gone */
  }
  rmSync(dir, { recursive: true, force: true });
});

it("replaces a non-login SHELL so the session command actually runs", async () => {
  expect(tmuxEnv({ SHELL: "/usr/sbin/nologin" }).SHELL).toBe("/bin/sh");
  expect(tmuxEnv({ SHELL: "/bin/false" }).SHELL).toBe("/bin/sh");
  expect(tmuxEnv({}).SHELL).toBe("/bin/sh");
  expect(tmuxEnv({ SHELL: "/bin/bash" }).SHELL).toBe("/bin/bash");
  // The runtime's secrets and tmux's own variables never reach the agent's terminal.
  const env = tmuxEnv({ PATH: "/usr/bin", LC_ALL: "C.UTF-8", ANTHROPIC_API_KEY: "sk-ant-x", CREDENTIALS_DIRECTORY: "/run/c", PICORTEX_API_TOKEN: "t", TMUX: "/tmp/x,1,0" });
  expect(env).toEqual({ PATH: "/usr/bin", LC_ALL: "C.UTF-8", SHELL: "/bin/sh" });

  await ensureSession(target, { cols: 80, rows: 24 });
  await runTmux(target, ["send-keys", "-t", "=svc:", "-l", "marker-42"]);
  await runTmux(target, ["send-keys", "-t", "=svc:", "Enter"]);
  let screen = "";
  for (let i = 0; i < 50 && (screen.match(/marker-42/g) ?? []).length < 2; i++) {
    await new Promise((r) => setTimeout(r, 100));
    screen = await runTmux(target, ["capture-pane", "-p", "-t", "=svc:"]).catch(() => "");
  }
  // `cat` echoed the line back: the command ran instead of `nologin -c cat`.
  expect((screen.match(/marker-42/g) ?? []).length).toBe(2);
  expect(await sessionExists(target)).toBe(true);
});
