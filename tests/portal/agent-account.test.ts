/**
 * Issue 13 item 2: the portal's agent runs as its own unprivileged account, not as the
 * runtime user. On this machine, for real: the rendered sudoers drop-in, a runtime user
 * with its 0700 state dir (API token, portal token), a runtime config, a real chat (made by
 * the chat-user helper) with a transcript, and the agent account. The runtime user starts
 * and attaches to the agent's tmux session exactly as the portal does (tmuxInvocation with
 * portal.runAs, a tmux client in a node-pty), then TYPES a probe into the session. From
 * inside, the agent must reach none of the runtime's files, tokens, environment or sudo,
 * and a hostile tmux server (`detach-client -E <cmd>` makes a client run a command) only
 * ever gets a client running as the agent.
 */
import { withPrivateAliases } from "../support/sudoers-install.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { BIN, CHAT_GROUP, TMUX_PATH } from "../../agent-runtime/host/contract.js";
import { privilegedArgv } from "../../agent-runtime/host/chat-identity.js";
import { renderSudoers } from "../../templates/render-sudoers.js";
import { renderChatUserHelper } from "../../templates/render-chat-user-helper.js";
import { requireRoot, requireTools, run } from "../infra/support/tools.js";

const repo = resolve(import.meta.dirname, "../..");
const suffix = randomBytes(4).toString("hex").replace(/[0-9]/g, (d) => "abcdefghij"[Number(d)]!);
const base = `/srv/pcagent-${suffix}`;
const chatsRoot = `${base}/chats`;
const helperPath = `${base}/sbin/picortex-chat-user`;
const claudePath = `${base}/bin/claude`;
const stateDir = `${base}/state`;
const etcDir = `${base}/etc`;
const agentHome = `${base}/agent-home`;
const agentRunDir = `/run/pcag-${suffix}`;
const socket = `${agentRunDir}/tmux.sock`;
const runtimeUser = `pcrt-${suffix}`;
const agentUser = `pcag-${suffix}`;
const adminUser = `pcad-${suffix}`;
const opsGroup = `pcops-${suffix}`;
const dropIn = `/etc/sudoers.d/pcagent${suffix}`;
const chatId = `ag${suffix}`;
const API_TOKEN = `pct_${randomBytes(16).toString("hex")}`;
const PORTAL_TOKEN = `ppt_${randomBytes(16).toString("hex")}`;
const ENV_SECRET = `env-secret-${randomBytes(8).toString("hex")}`;
const TRANSCRIPT = `transcript-${randomBytes(8).toString("hex")}`;
let createdChatGroup = false;

const userExists = (name: string) => run(["getent", "passwd", name]).status === 0;
const asUser = (user: string, argv: string[]) => run(["runuser", "-u", user, "--", ...argv]);

beforeAll(() => {
  requireRoot("it creates real users and installs a sudoers drop-in");
  requireTools("sudo", "visudo", "runuser", "useradd", "userdel", "groupadd", "tmux", "pkill");
  for (const d of [`${base}/bin`, `${base}/sbin`, chatsRoot, etcDir]) mkdirSync(d, { recursive: true });
  for (const d of [base, `${base}/bin`, `${base}/sbin`, etcDir]) chmodSync(d, 0o755);
  chmodSync(chatsRoot, 0o711);
  writeFileSync(claudePath, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  writeFileSync(helperPath, renderChatUserHelper({ chatsRoot, chatGroup: CHAT_GROUP, stateDir: `${base}/chat-users`, uidMin: 85000, uidMax: 89999 }), { mode: 0o755 });
  const g = run(["groupadd", CHAT_GROUP]);
  createdChatGroup = g.status === 0;
  expect(run(["groupadd", opsGroup]).status).toBe(0);
  expect(run(["useradd", "--system", "--shell", "/usr/sbin/nologin", "--no-create-home", "--groups", opsGroup, runtimeUser]).status).toBe(0);
  expect(run(["useradd", "--no-create-home", "--shell", "/bin/bash", "--groups", opsGroup, adminUser]).status).toBe(0);
  // The agent: a login shell for its tmux panes, no group beyond its own, no sudo rule.
  expect(run(["useradd", "--system", "--shell", "/bin/bash", "--home-dir", agentHome, "--no-create-home", "--user-group", agentUser]).status).toBe(0);
  mkdirSync(agentHome, { mode: 0o700 });
  chownSync(agentHome, Number(run(["id", "-u", agentUser]).stdout), Number(run(["id", "-g", agentUser]).stdout));
  mkdirSync(agentRunDir, { mode: 0o700 });
  chownSync(agentRunDir, Number(run(["id", "-u", agentUser]).stdout), Number(run(["id", "-g", agentUser]).stdout));

  // The runtime's state, as on a host: 0700 dir of the runtime user, tokens 0600.
  const rtUid = Number(run(["id", "-u", runtimeUser]).stdout);
  const rtGid = Number(run(["id", "-g", runtimeUser]).stdout);
  mkdirSync(stateDir, { mode: 0o700 });
  chownSync(stateDir, rtUid, rtGid);
  for (const [name, value] of [["api-token", API_TOKEN], ["portal-token", PORTAL_TOKEN]] as const) {
    writeFileSync(join(stateDir, name), value + "\n", { mode: 0o600 });
    chownSync(join(stateDir, name), rtUid, rtGid);
  }
  writeFileSync(join(etcDir, "runtime.json"), JSON.stringify({ mode: "host", secret: API_TOKEN }), { mode: 0o640 });
  chownSync(join(etcDir, "runtime.json"), 0, rtGid);

  const rendered = renderSudoers({
    runtimeUser,
    adminUser,
    opsGroup,
    chatGroup: CHAT_GROUP,
    chatsRoot,
    claudePath,
    chatUserHelperPath: helperPath,
    releaseHelperPath: `${base}/sbin/picortex-release`,
    agentUser,
    agentRuntimeDir: agentRunDir,
  });
  // Aliases of this file's own: another test file may have its copy installed right now.
  const text = withPrivateAliases(rendered, suffix);
  const staged = `${base}/sudoers-candidate`;
  writeFileSync(staged, text, { mode: 0o440 });
  const check = run(["visudo", "-cf", staged]);
  expect(check.status, check.stderr + check.stdout).toBe(0);
  writeFileSync(dropIn, text, { mode: 0o440 });
  chmodSync(dropIn, 0o440);

  // A real chat with a transcript in its 0700 home.
  const created = asUser(runtimeUser, [BIN.sudo, "-n", "--", ...privilegedArgv.createUser(chatId, helperPath)]);
  expect(created.status, created.stderr).toBe(0);
  expect(asUser(`pc-${chatId}`, ["sh", "-c", `echo ${TRANSCRIPT} > ${chatsRoot}/${chatId}/transcript.jsonl`]).status).toBe(0);
});

afterAll(() => {
  rmSync(dropIn, { force: true });
  run(["runuser", "-u", agentUser, "--", TMUX_PATH, "-S", socket, "kill-server"]);
  run(["pkill", "-KILL", "-u", agentUser]);
  // The control probe (as the runtime user, which may) creates a chat "evil": remove it too.
  for (const id of [chatId, "evil"]) if (userExists(`pc-${id}`)) run([helperPath, "delete", id]);
  for (const u of [agentUser, runtimeUser, adminUser]) if (userExists(u)) run(["userdel", u]);
  run(["groupdel", agentUser]);
  run(["groupdel", opsGroup]);
  if (createdChatGroup) run(["groupdel", CHAT_GROUP]);
  rmSync(agentRunDir, { recursive: true, force: true });
  rmSync(base, { recursive: true, force: true });
});

/** Types the probe into the session through the portal's tmux path, as the runtime user; returns what it printed. */
function probeFromInside(o: { runAs: string; socket: string; cwd: string; outDir: string }): string {
    // One line typed into the agent's shell. Each check prints a marker only if it worked.
    const checks = [
      "id -un",
      `cat ${stateDir}/api-token && echo READ-API-TOKEN`,
      `cat ${stateDir}/portal-token && echo READ-PORTAL-TOKEN`,
      `ls ${stateDir} && echo LIST-STATE`,
      `cat ${etcDir}/runtime.json && echo READ-CONFIG`,
      `cat ${chatsRoot}/${chatId}/transcript.jsonl && echo READ-TRANSCRIPT`,
      `for p in $(pgrep -u ${runtimeUser}); do cat /proc/$p/environ && echo READ-ENV; done`,
      "sudo -n true && echo SUDO-ROOT",
      `sudo -n -u ${runtimeUser} true && echo SUDO-RUNTIME`,
      `sudo -n ${helperPath} create evil && echo SUDO-HELPER`,
      `sudo -n -u pc-${chatId} ${claudePath} && echo SUDO-CHAT`,
      "sudo -n -l && echo SUDO-LIST",
    ];
    const probe = join(o.outDir, "probe");
    const pwned = join(stateDir, "pwned");
    const typed =
      `{ ${checks.join("; ")}; } > ${probe}.tmp 2>&1; mv ${probe}.tmp ${probe}; ` +
      // The hostile-server move: make the attached client run a command. It must run as the agent.
      `tmux detach-client -E "sh -c 'id -un > ${o.outDir}/client-ran-as; id -un > ${pwned}'"`;
    const driver = run(
      [
        "runuser",
        "-u",
        runtimeUser,
        "--",
        "env",
        `PICORTEX_TEST_SECRET=${ENV_SECRET}`,
        `HOME=/nonexistent`,
        process.execPath,
        "--import",
        "tsx",
        join(repo, "tests/portal/support/agent-driver.ts"),
        JSON.stringify({ socket: o.socket, runAs: o.runAs, session: "agent", cwd: o.cwd, command: ["/bin/bash", "--noprofile", "--norc"], typed }),
      ],
      { cwd: repo },
    );
    expect(driver.status, driver.stderr).toBe(0);
    expect(existsSync(probe), `the probe never ran: ${driver.stdout} ${driver.stderr}`).toBe(true);
    return readFileSync(probe, "utf8");
}

describe("the portal's agent runs as its own account", { timeout: 120_000 }, () => {
  it("control: with the session as the runtime user (the old way), the same probe reads the runtime's token", () => {
    const out = probeFromInside({ runAs: "", socket: join(stateDir, "ctl.sock"), cwd: stateDir, outDir: stateDir });
    expect(out.split("\n")[0]).toBe(runtimeUser);
    expect(out).toContain("READ-API-TOKEN");
    expect(out).toContain(API_TOKEN);
    // ...and a hostile server made the portal's client run a command as the runtime.
    expect(readFileSync(join(stateDir, "pwned"), "utf8").trim()).toBe(runtimeUser);
    run(["runuser", "-u", runtimeUser, "--", TMUX_PATH, "-S", join(stateDir, "ctl.sock"), "kill-server"]);
    for (const f of ["pwned", "probe", "client-ran-as", "ctl.sock"]) rmSync(join(stateDir, f), { force: true });
  });

  it("from inside the session (commands typed through the portal's own tmux path), the runtime's files, tokens, env and sudo are out of reach", () => {
    // The agent's own server, started as the agent the way its unit does (not through the
    // portal's sudo rule, which is NOEXEC: a server forked from that client could not exec).
    const started = run(["runuser", "-u", agentUser, "--", TMUX_PATH, "-S", socket, "-f", "/dev/null", "new-session", "-d", "-s", "agent", "-c", agentHome, "--", "/bin/bash", "--noprofile", "--norc"]);
    expect(started.status, started.stderr).toBe(0);
    const out = probeFromInside({ runAs: agentUser, socket, cwd: agentHome, outDir: agentHome });
    const pwned = join(stateDir, "pwned");
    expect(out.split("\n")[0]).toBe(agentUser);
    for (const marker of ["READ-API-TOKEN", "READ-PORTAL-TOKEN", "LIST-STATE", "READ-CONFIG", "READ-TRANSCRIPT", "READ-ENV", "SUDO-ROOT", "SUDO-RUNTIME", "SUDO-HELPER", "SUDO-CHAT", "SUDO-LIST"]) {
      expect(out, `the agent could: ${marker}\n${out}`).not.toContain(marker);
    }
    for (const secret of [API_TOKEN, PORTAL_TOKEN, ENV_SECRET, TRANSCRIPT]) expect(out).not.toContain(secret);
    expect(out).toMatch(/Permission denied/);
    expect(out).toMatch(/password is required|not allowed|may not run sudo/);
    // The hostile server told the portal's client to exec a command (`detach-client -E`):
    // the client runs in the runtime's unit, outside the agent's sandbox, so the sudo rule
    // is NOEXEC and the command never ran, as anyone.
    expect(existsSync(join(agentHome, "client-ran-as")), "the portal's tmux client executed the agent's command").toBe(false);
    expect(existsSync(pwned)).toBe(false);
    // And the session really is the agent's: the tmux server process runs as it.
    const server = run(["pgrep", "-u", agentUser, "-f", `tmux -S ${socket}`]);
    expect(server.stdout.trim()).not.toBe("");
    expect(run(["pgrep", "-u", runtimeUser, "-x", "tmux"]).stdout.trim()).toBe("");
  });

  it("the runtime user reaches the agent only as tmux on the agent's socket; the agent has no sudo at all", () => {
    const policy = (user: string, args: string[]) => asUser(user, [BIN.sudo, "-n", ...args]);
    expect(policy(runtimeUser, ["-l", "-u", agentUser, TMUX_PATH, "-S", socket, "list-sessions"]).status).toBe(0);
    for (const args of [
      ["-u", agentUser, "--", "/bin/bash"],
      ["-u", agentUser, "--", TMUX_PATH, "-S", "/tmp/other.sock", "list-sessions"],
      ["-u", agentUser, "--", TMUX_PATH, "list-sessions"],
      ["-u", agentUser, "--", TMUX_PATH, "-S", `${socket}x`],
      ["-u", "root", "--", TMUX_PATH, "-S", socket, "list-sessions"],
      ["-u", adminUser, "--", TMUX_PATH, "-S", socket, "list-sessions"],
    ]) {
      const r = policy(runtimeUser, ["-l", ...args.filter((a) => a !== "--")]);
      expect(r.status, `runtime may not: sudo ${args.join(" ")}`).not.toBe(0);
    }
    const agentSudo = policy(agentUser, ["-l"]);
    expect(agentSudo.status).not.toBe(0);
    expect(policy(adminUser, ["-l", "-u", agentUser, TMUX_PATH, "-S", socket, "list-sessions"]).status).not.toBe(0);
  });
});
