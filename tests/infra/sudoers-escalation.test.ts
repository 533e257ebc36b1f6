/**
 * The rendered sudoers drop-in, installed for real on this machine and exercised as
 * real users: every operation the runtime and admin need works, and every escalation
 * on the list is refused. Each refusal is first checked with `sudo -l <argv>` (a pure
 * policy query) and only then attempted, so a policy bug can never run a destructive
 * command here; the attempt must fail with sudo's own refusal.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, chownSync, mkdirSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { BIN, CHAT_GROUP, privilegedArgv, runAsChatPrefix, chatUser, runTurnPrefix, asChatArgv, chatWorkspace } from "../../agent-runtime/host/chat-identity.js";
import { renderSudoers } from "../../templates/render-sudoers.js";
import { RUNTIME_CAPABILITY_BOUNDING_SET } from "../../templates/render-units.js";
import { requireRoot, requireTools, run, runBytes, type RunResult } from "./support/tools.js";

const suffix = randomBytes(4).toString("hex").replace(/[0-9]/g, (d) => "abcdefghij"[Number(d)]!);
const base = `/srv/pctest-${suffix}`;
const chatsRoot = `${base}/chats`;
const claudePath = `${base}/bin/claude`;
const releasePath = `${base}/sbin/picortex-release`;
const opsGroup = `pcops-${suffix}`;
const runtimeUser = `pcrt-${suffix}`;
const adminUser = `pcad-${suffix}`;
const dropIn = `/etc/sudoers.d/pctest${suffix}`;
const chatA = `ta${suffix}`;
const chatB = `tb${suffix}`;
const hash = "0123456789abcdef0123";
let createdChatGroup = false;

function sudoAs(user: string, argv: string[]): RunResult {
  return run(["runuser", "-u", user, "--", BIN.sudo, "-n", ...argv]);
}
function policyAllows(user: string, sudoArgs: string[]): boolean {
  // `sudo -l [-u X] cmd args` exits 0 only if the policy would allow exactly that.
  const dash = sudoArgs.indexOf("--");
  const opts = dash >= 0 ? sudoArgs.slice(0, dash) : [];
  const cmd = dash >= 0 ? sudoArgs.slice(dash + 1) : sudoArgs;
  return run(["runuser", "-u", user, "--", BIN.sudo, "-n", ...opts, "-l", ...cmd]).status === 0;
}
const SUDO_REFUSAL = /a password is required|is not allowed|may not run|not allowed to execute|Sorry, user|not permitted to use the -D option/;
function expectRefused(user: string, sudoArgs: string[]): void {
  expect(policyAllows(user, sudoArgs), `policy must refuse ${user}: sudo ${sudoArgs.join(" ")}`).toBe(false);
  const r = sudoAs(user, sudoArgs);
  expect(r.status, `sudo ${sudoArgs.join(" ")} as ${user} must fail`).not.toBe(0);
  expect(r.stderr, `refusal must come from sudo for: ${sudoArgs.join(" ")}`).toMatch(SUDO_REFUSAL);
}
function expectAllowed(user: string, sudoArgs: string[]): RunResult {
  const r = sudoAs(user, sudoArgs);
  expect(r.stderr).not.toMatch(SUDO_REFUSAL);
  return r;
}
const userExists = (name: string) => run(["getent", "passwd", name]).status === 0;

beforeAll(() => {
  requireRoot("it installs a sudoers drop-in and creates real users");
  requireTools("sudo", "visudo", "runuser", "useradd", "userdel", "groupadd", "groupdel", "setpriv", "getent");
  mkdirSync(`${base}/bin`, { recursive: true });
  mkdirSync(`${base}/sbin`, { recursive: true });
  mkdirSync(chatsRoot, { recursive: true });
  chmodSync(base, 0o755);
  chmodSync(chatsRoot, 0o711);
  writeFileSync(claudePath, '#!/bin/sh\n[ "$1" = "--version" ] && { echo "2.1.197 (stand-in)"; exit 0; }\necho "claude-as:$(id -un):$HOME:$(pwd)"\n', { mode: 0o755 });
  writeFileSync(releasePath, '#!/bin/sh\necho "release:$*"\n', { mode: 0o755 });
  for (const p of [claudePath, releasePath]) chownSync(p, 0, 0);

  const g = run(["groupadd", CHAT_GROUP]);
  createdChatGroup = g.status === 0; // 9 = already exists (another test or a real install)
  expect([0, 9]).toContain(g.status);
  expect(run(["groupadd", opsGroup]).status).toBe(0);
  expect(run(["useradd", "--system", "--shell", "/usr/sbin/nologin", "--no-create-home", "--groups", opsGroup, runtimeUser]).status).toBe(0);
  expect(run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", opsGroup, adminUser]).status).toBe(0);

  const text = renderSudoers({ runtimeUser, adminUser, opsGroup, chatGroup: CHAT_GROUP, chatsRoot, claudePath, releaseHelperPath: releasePath });
  const staged = `${base}/sudoers-candidate`;
  writeFileSync(staged, text, { mode: 0o440 });
  const check = run(["visudo", "-cf", staged]);
  expect(check.status, check.stderr + check.stdout).toBe(0);
  writeFileSync(dropIn, text, { mode: 0o440 });
  chownSync(dropIn, 0, 0);
  chmodSync(dropIn, 0o440);
  const whole = run(["visudo", "-c"]);
  expect(whole.status, whole.stderr + whole.stdout).toBe(0);
});

afterAll(() => {
  // Remove the drop-in first so nothing below is ever reachable through it.
  rmSync(dropIn, { force: true });
  for (const name of [chatUser(chatA), chatUser(chatB), "pc-evil0", "pc-evilg", "pc-evilp", "pc-evild", "pc-evilh"]) {
    if (userExists(name)) run(["userdel", "--remove", name]);
  }
  if (userExists(adminUser)) run(["userdel", "--remove", adminUser]);
  if (userExists(runtimeUser)) run(["userdel", runtimeUser]);
  run(["groupdel", opsGroup]);
  if (createdChatGroup) {
    const gid = run(["getent", "group", CHAT_GROUP]).stdout.split(":")[2];
    const primaryUsers = run(["getent", "passwd"]).stdout.split("\n").filter((l) => l.split(":")[3] === gid);
    if (primaryUsers.length === 0) run(["groupdel", CHAT_GROUP]);
  }
  rmSync(base, { recursive: true, force: true });
});

describe("sudoers drop-in on a real machine", () => {
  it("is installed root:root 0440 under a name without dots", () => {
    const st = statSync(dropIn);
    expect(st.uid).toBe(0);
    expect(st.gid).toBe(0);
    expect(st.mode & 0o7777).toBe(0o440);
    expect(dropIn.split("/").pop()).not.toMatch(/[.~]/);
  });

  it("lets the runtime user create, lock, unlock and delete a chat user with the exact argv the runtime builds", () => {
    const create = expectAllowed(runtimeUser, ["--", ...privilegedArgv.createUser(chatA, chatsRoot)]);
    expect(create.status, create.stderr).toBe(0);
    expect(userExists(chatUser(chatA))).toBe(true);
    const home = statSync(`${chatsRoot}/${chatA}`);
    expect(home.isDirectory()).toBe(true);
    expect(expectAllowed(runtimeUser, ["--", ...privilegedArgv.chmodHome(chatA, "0000", chatsRoot)]).status).toBe(0);
    expect(statSync(`${chatsRoot}/${chatA}`).mode & 0o7777).toBe(0o000);
    expect(expectAllowed(runtimeUser, ["--", ...privilegedArgv.chmodHome(chatA, "0700", chatsRoot)]).status).toBe(0);
    expect(statSync(`${chatsRoot}/${chatA}`).mode & 0o7777).toBe(0o700);
  });

  it("lets the runtime user run claude, pkill and tar as the chat user with the turn runner's exact argv", () => {
    const asRuntime = (argv: string[], input?: string | Buffer) => run(["runuser", "-u", runtimeUser, "--", ...argv], { input });
    const plain = asRuntime([...runAsChatPrefix(chatA), claudePath]);
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.stdout.trim()).toMatch(new RegExp(`^claude-as:${chatUser(chatA)}:${chatsRoot}/${chatA}:`));
    // The turn starts in the chat's fixed workspace (sudo -D, allowed by CWD=* on claude only).
    expect(run(["runuser", "-u", chatUser(chatA), "--", "mkdir", "-p", chatWorkspace(chatA, chatsRoot)]).status).toBe(0);
    const turn = asRuntime(runTurnPrefix(chatA, claudePath, chatsRoot));
    expect(turn.status, turn.stderr).toBe(0);
    expect(turn.stdout.trim()).toBe(`claude-as:${chatUser(chatA)}:${chatsRoot}/${chatA}:${chatWorkspace(chatA, chatsRoot)}`);
    const version = asRuntime(asChatArgv.claudeVersion(chatA, claudePath));
    expect(version.stdout.trim()).toBe("2.1.197 (stand-in)");
    const reap = asRuntime(asChatArgv.killAll(chatA));
    expect(reap.stderr).not.toMatch(SUDO_REFUSAL);
    expect(reap.status).toBe(1); // pkill ran: no process of that user to kill
    const tarball = runBytes(["tar", "--create", "--file", "-", "--directory", base, "bin"]);
    const unpack = asRuntime(asChatArgv.unpackIntoHome(chatA, chatsRoot), tarball);
    expect(unpack.status, unpack.stderr).toBe(0);
    expect(existsSync(`${chatsRoot}/${chatA}/bin/claude`)).toBe(true);
    expect(statSync(`${chatsRoot}/${chatA}/bin/claude`).uid).toBe(Number(run(["id", "-u", chatUser(chatA)]).stdout.trim()));
    const archive = asRuntime(asChatArgv.archiveHome(chatA, chatsRoot));
    expect(archive.status, archive.stderr).toBe(0);
  });

  it("refuses sudo -D for anything but claude", () => {
    expectRefused(runtimeUser, ["-H", "-u", chatUser(chatA), "-D", "/", "--", BIN.tar, "--create", "--file", "/dev/null", "."]);
  });

  it("keeps working under the runtime unit's capability bounding set (sudo, useradd, chmod, userdel)", () => {
    const caps = ["-all", ...RUNTIME_CAPABILITY_BOUNDING_SET.map((c) => "+" + c.replace(/^CAP_/, "").toLowerCase())].join(",");
    const gid = run(["id", "-g", runtimeUser]).stdout.trim();
    const asRuntime = (argv: string[]) =>
      run(["setpriv", `--bounding-set=${caps}`, `--reuid=${runtimeUser}`, `--regid=${gid}`, "--init-groups", "--", BIN.sudo, "-n", ...argv]);
    const created = asRuntime(["--", ...privilegedArgv.createUser(chatB, chatsRoot)]);
    expect(created.status, created.stderr).toBe(0);
    expect(asRuntime(["--", ...privilegedArgv.chmodHome(chatB, "0700", chatsRoot)]).status).toBe(0);
    const turn = asRuntime(["-H", "-u", chatUser(chatB), "--", claudePath]);
    expect(turn.stdout.trim()).toMatch(new RegExp(`^claude-as:${chatUser(chatB)}:${chatsRoot}/${chatB}:`));
    const removed = asRuntime(["--", ...privilegedArgv.deleteUser(chatB, true)]);
    expect(removed.status, removed.stderr).toBe(0);
    expect(userExists(chatUser(chatB))).toBe(false);
    expect(existsSync(`${chatsRoot}/${chatB}`)).toBe(false);
  });

  it("lets the admin (an ops member) manage chat users and run the release helper with contract arguments", () => {
    expect(policyAllows(adminUser, ["--", ...privilegedArgv.createUser(chatB, chatsRoot)])).toBe(true);
    expect(policyAllows(adminUser, ["--", ...privilegedArgv.deleteUser(chatB, false)])).toBe(true);
    for (const args of [["status"], ["install", hash], ["activate", hash], ["rollback"], ["rollback", hash], ["uninstall"], ["uninstall", hash]]) {
      const r = expectAllowed(adminUser, ["--", releasePath, ...args]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(`release:${args.join(" ")}`);
    }
  });

  const useraddTail = (id: string) => ["--gid", CHAT_GROUP, "--shell", "/bin/bash", chatUser(id)];
  const home = (id: string) => ["--create-home", "--home-dir", `${chatsRoot}/${id}`];
  const refusals: Array<[string, string[]]> = [
    ["useradd -o -u 0", ["--", BIN.useradd, "-o", "-u", "0", ...home("evil0"), ...useraddTail("evil0")]],
    ["useradd with uid 0 appended", ["--", BIN.useradd, ...home("evil0"), ...useraddTail("evil0"), "-o", "-u", "0"]],
    ["useradd -G sudo", ["--", BIN.useradd, ...home("evilg"), "-G", "sudo", ...useraddTail("evilg")]],
    ["useradd -G root", ["--", BIN.useradd, ...home("evilg"), "-G", "root", ...useraddTail("evilg")]],
    ["useradd --gid root", ["--", BIN.useradd, ...home("evilg"), "--gid", "root", "--shell", "/bin/bash", "pc-evilg"]],
    ["useradd -p <hash>", ["--", BIN.useradd, "-p", "$6$x$y", ...home("evilp"), ...useraddTail("evilp")]],
    ["useradd -d /root", ["--", BIN.useradd, "--create-home", "--home-dir", "/root", ...useraddTail("evild")]],
    ["useradd -d /root (short flag)", ["--", BIN.useradd, "-m", "-d", "/root", ...useraddTail("evild")]],
    ["useradd with a home outside the chats root", ["--", BIN.useradd, "--create-home", "--home-dir", "/srv/elsewhere/evilh", ...useraddTail("evilh")]],
    ["useradd with .. in the home", ["--", BIN.useradd, "--create-home", "--home-dir", `${chatsRoot}/../../etc`, ...useraddTail("evilh")]],
    ["useradd whose home names another chat", ["--", BIN.useradd, ...home(chatA), ...useraddTail("evilh")]],
    ["useradd of a non-chat user name", ["--", BIN.useradd, ...home("evilh"), "--gid", CHAT_GROUP, "--shell", "/bin/bash", "evilh"]],
    ["chmod u+s", ["--", BIN.chmod, "u+s", `${chatsRoot}/${chatA}`]],
    ["chmod 4755", ["--", BIN.chmod, "4755", `${chatsRoot}/${chatA}`]],
    ["chmod 0777", ["--", BIN.chmod, "0777", `${chatsRoot}/${chatA}`]],
    ["chmod on /etc/shadow", ["--", BIN.chmod, "0700", "/etc/shadow"]],
    ["chmod 777 /etc/shadow", ["--", BIN.chmod, "777", "/etc/shadow"]],
    ["chmod with .. in the path", ["--", BIN.chmod, "0700", `${chatsRoot}/${chatA}/../../../etc/shadow`]],
    ["chmod -R", ["--", BIN.chmod, "-R", "0700", `${chatsRoot}/${chatA}`]],
    ["chmod of two paths", ["--", BIN.chmod, "0700", `${chatsRoot}/${chatA}`, "/etc/shadow"]],
    ["userdel root", ["--", BIN.userdel, "root"]],
    ["userdel --remove root", ["--", BIN.userdel, "--remove", "root"]],
    ["userdel of the admin", ["--", BIN.userdel, adminUser]],
    ["userdel of the runtime user", ["--", BIN.userdel, runtimeUser]],
    ["userdel --force of a chat user", ["--", BIN.userdel, "--force", chatUser(chatA)]],
    ["sudo bash", ["--", "/bin/bash"]],
    ["sudo -s", ["-s"]],
    ["sudo -i", ["-i"]],
    ["sudo -u root id", ["-u", "root", "--", "/usr/bin/id"]],
    ["sudo -u root claude", ["-u", "root", "--", claudePath]],
    ["sudo -u <admin> claude (non-chat user)", ["-u", adminUser, "--", claudePath]],
    ["sudo -u nobody claude (non-chat user)", ["-u", "nobody", "--", claudePath]],
    ["sudo -u pc-<id> -g root claude", ["-u", chatUser(chatA), "-g", "root", "--", claudePath]],
    ["sudo -u pc-<id> bash", ["-u", chatUser(chatA), "--", "/bin/bash"]],
    ["sudoedit /etc/shadow", ["-e", "/etc/shadow"]],
  ];

  for (const [label, args] of refusals) {
    it(`refuses for the runtime user: ${label}`, () => expectRefused(runtimeUser, args));
  }
  for (const [label, args] of refusals) {
    it(`refuses for the admin: ${label}`, () => expectRefused(adminUser, args));
  }

  it("refuses release-helper arguments outside the contract, and the helper for anyone but the admin", () => {
    for (const args of [["install", "../../etc"], ["install", "ABCDEF0123456789"], ["install", "abc"], ["status", "--all"], ["install", hash, hash], ["activate", `${hash};id`], ["shell"]]) {
      expectRefused(adminUser, ["--", releasePath, ...args]);
    }
    expectRefused(runtimeUser, ["--", releasePath, "status"]);
  });

  it("refuses running commands as a chat user to anyone but the runtime user", () => {
    expectRefused(adminUser, ["-u", chatUser(chatA), "--", claudePath]);
  });

  it("lets the runtime user delete the chat user (home removed)", () => {
    expect(expectAllowed(runtimeUser, ["--", ...privilegedArgv.deleteUser(chatA, true)]).status).toBe(0);
    expect(userExists(chatUser(chatA))).toBe(false);
    expect(existsSync(`${chatsRoot}/${chatA}`)).toBe(false);
  });
});
