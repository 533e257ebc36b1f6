/**
 * The rendered sudoers drop-in, installed for real on this machine and exercised as
 * real users: every operation the runtime and admin need works, and every escalation
 * on the list is refused. Each refusal is first checked with `sudo -l <argv>` (a pure
 * policy query) and only then attempted, so a policy bug can never run a destructive
 * command here; the attempt must fail with sudo's own refusal.
 */
import { withPrivateAliases } from "../support/sudoers-install.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { BIN, CHAT_GROUP, chatUser, chatWorkspace, CHAT_USER_STATE_DIR } from "../../agent-runtime/host/contract.js";
import { privilegedArgv, runAsChatPrefix, runTurnPrefix, asChatArgv } from "../../agent-runtime/host/chat-identity.js";
import { releaseHelperEscalations, sudoEscalations } from "../../agent-runtime/host/escalations.js";
import { renderSudoers } from "../../templates/render-sudoers.js";
import { renderChatUserHelper } from "../../templates/render-chat-user-helper.js";
import { RUNTIME_CAPABILITY_BOUNDING_SET } from "../../templates/render-units.js";
import { requireRoot, requireTools, run, runBytes, type RunResult } from "./support/tools.js";
import { DATA_BINDS } from "../../templates/render-host.js";

const suffix = randomBytes(4).toString("hex").replace(/[0-9]/g, (d) => "abcdefghij"[Number(d)]!);
const base = `/srv/pctest-${suffix}`;
const chatsRoot = `${base}/chats`;
const claudePath = `${base}/bin/claude`;
const releasePath = `${base}/sbin/picortex-release`;
const helperPath = `${base}/sbin/picortex-chat-user`;
const helperState = `${base}/chat-users`;
// A uid range of this file's own: other test files run helpers with their own records.
const UID_MIN = 90000;
const opsGroup = `pcops-${suffix}`;
const runtimeUser = `pcrt-${suffix}`;
const adminUser = `pcad-${suffix}`;
const dropIn = `/etc/sudoers.d/pctest${suffix}`;
const chatA = `ta${suffix}`;
const chatB = `tb${suffix}`;
const chatC = `tc${suffix}`;
const chatD = `td${suffix}`;
// Server replacement (same data volume, new root disk): a helper of its own.
const replRoot = `${base}/replace`;
const replChats = `${replRoot}/chats`;
const replState = `${replRoot}/state`;
const replHelper = `${base}/sbin/picortex-chat-user-replace`;
const REPL_UID_MIN = 95000;
const replAlice = `ra${suffix}`;
const replBob = `rb${suffix}`;
const replCarol = `rc${suffix}`;
const create = (id: string) => privilegedArgv.createUser(id, helperPath);
const remove = (id: string) => privilegedArgv.deleteUser(id, helperPath);
const uidOf = (name: string) => Number(run(["id", "-u", name]).stdout.trim());
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
const SUDO_REFUSAL = /a password is required|is not allowed|may not run|not allowed to execute|Sorry, user|not permitted to use the -D option|not allowed to set the following environment/;
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
/** SysV IPC ids (shm, msg, sem) owned or created by uid, from /proc/sysvipc. */
function sysvIpcOf(uid: number): string[] {
  const out: string[] = [];
  for (const [kind, uidCol, cuidCol] of [["shm", 7, 9], ["msg", 7, 9], ["sem", 4, 6]] as const) {
    const lines = readFileSync(`/proc/sysvipc/${kind}`, "utf8").trim().split("\n").slice(1);
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      if (Number(f[uidCol]) === uid || Number(f[cuidCol]) === uid) out.push(`${kind}:${f[1]}`);
    }
  }
  return out;
}

beforeAll(() => {
  requireRoot("it installs a sudoers drop-in and creates real users");
  requireTools("sudo", "visudo", "runuser", "useradd", "userdel", "groupadd", "groupdel", "setpriv", "getent", "ipcmk", "ipcrm", "pkill", "find");
  mkdirSync(`${base}/bin`, { recursive: true });
  mkdirSync(`${base}/sbin`, { recursive: true });
  mkdirSync(chatsRoot, { recursive: true });
  chmodSync(base, 0o755);
  chmodSync(chatsRoot, 0o711);
  writeFileSync(claudePath, '#!/bin/sh\n[ "$1" = "--version" ] && { echo "2.1.197 (stand-in)"; exit 0; }\necho "claude-as:$(id -un):$HOME:$(pwd)"\n', { mode: 0o755 });
  writeFileSync(releasePath, '#!/bin/sh\necho "release:$*"\n', { mode: 0o755 });
  writeFileSync(helperPath, renderChatUserHelper({ chatsRoot, chatGroup: CHAT_GROUP, stateDir: helperState, uidMin: UID_MIN, uidMax: UID_MIN + 4999 }), { mode: 0o755 });
  for (const p of [claudePath, releasePath, helperPath]) chownSync(p, 0, 0);

  const g = run(["groupadd", CHAT_GROUP]);
  createdChatGroup = g.status === 0; // 9 = already exists (another test or a real install)
  expect([0, 9]).toContain(g.status);
  expect(run(["groupadd", opsGroup]).status).toBe(0);
  expect(run(["useradd", "--system", "--shell", "/usr/sbin/nologin", "--no-create-home", "--groups", opsGroup, runtimeUser]).status).toBe(0);
  expect(run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", opsGroup, adminUser]).status).toBe(0);

  const rendered = renderSudoers({
    runtimeUser,
    adminUser,
    opsGroup,
    chatGroup: CHAT_GROUP,
    chatsRoot,
    claudePath,
    releaseHelperPath: releasePath,
    chatUserHelperPath: helperPath,
  });
  // Aliases of this file's own: another test file may have its copy installed right now.
  const text = withPrivateAliases(rendered, suffix);
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
  for (const name of [chatUser(chatA), chatUser(chatB), chatUser(chatC), chatUser(chatD), chatUser(replAlice), chatUser(replBob), chatUser(replCarol), "pc-evil0", "pc-evilg", "pc-evilp", "pc-evild", "pc-evilh", "pc-evilx", "pc-abc"]) {
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
  for (const d of ["/tmp", "/var/tmp", "/dev/shm"]) for (const n of [`left-${suffix}`, `deep-${suffix}`]) rmSync(`${d}/${n}`, { recursive: true, force: true });
});

describe("sudoers drop-in on a real machine", () => {
  it("is installed root:root 0440 under a name without dots", () => {
    const st = statSync(dropIn);
    expect(st.uid).toBe(0);
    expect(st.gid).toBe(0);
    expect(st.mode & 0o7777).toBe(0o440);
    expect(dropIn.split("/").pop()).not.toMatch(/[.~]/);
  });

  it("lets the runtime user create a chat user with the exact argv the runtime builds: a fresh uid, a 0700 home at once", () => {
    const r = expectAllowed(runtimeUser, ["--", ...create(chatA)]);
    expect(r.status, r.stderr).toBe(0);
    expect(userExists(chatUser(chatA))).toBe(true);
    const uid = uidOf(chatUser(chatA));
    expect(JSON.parse(r.stdout)).toEqual({ user: chatUser(chatA), uid, home: `${chatsRoot}/${chatA}` });
    expect(uid).toBeGreaterThanOrEqual(UID_MIN);
    expect(run(["id", "-gn", chatUser(chatA)]).stdout.trim()).toBe(CHAT_GROUP);
    expect(run(["id", "-Gn", chatUser(chatA)]).stdout.trim()).toBe(CHAT_GROUP); // no other group
    const home = statSync(`${chatsRoot}/${chatA}`);
    expect([home.isDirectory(), home.uid, home.mode & 0o7777]).toEqual([true, uid, 0o700]);
    expect(statSync(`${chatsRoot}/${chatA}/tmp`).mode & 0o7777).toBe(0o700);
    // The allocation is recorded where only root can change it.
    const st = statSync(helperState);
    expect([st.uid, st.mode & 0o777]).toEqual([0, 0o700]);
    expect(Number(readFileSync(`${helperState}/next-uid`, "utf8"))).toBe(uid + 1);
    // A second create of the same chat is refused, not repaired.
    const again = expectAllowed(runtimeUser, ["--", ...create(chatA)]);
    expect(again.status).toBe(3);
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

  it("keeps working under the runtime unit's capability bounding set (sudo, the chat-user helper)", () => {
    const caps = ["-all", ...RUNTIME_CAPABILITY_BOUNDING_SET.map((c) => "+" + c.replace(/^CAP_/, "").toLowerCase())].join(",");
    const gid = run(["id", "-g", runtimeUser]).stdout.trim();
    const asRuntime = (argv: string[]) =>
      run(["setpriv", `--bounding-set=${caps}`, `--reuid=${runtimeUser}`, `--regid=${gid}`, "--init-groups", "--", BIN.sudo, "-n", ...argv]);
    const created = asRuntime(["--", ...create(chatB)]);
    expect(created.status, created.stderr).toBe(0);
    const turn = asRuntime(["-H", "-u", chatUser(chatB), "--", claudePath]);
    expect(turn.stdout.trim()).toMatch(new RegExp(`^claude-as:${chatUser(chatB)}:${chatsRoot}/${chatB}:`));
    // Leave IPC behind, so the delete must remove it under this bounding set too.
    expect(run(["runuser", "-u", chatUser(chatB), "--", "ipcmk", "-M", "4096"]).status).toBe(0);
    const uid = uidOf(chatUser(chatB));
    const removed = asRuntime(["--", ...remove(chatB)]);
    expect(removed.status, removed.stderr).toBe(0);
    expect(userExists(chatUser(chatB))).toBe(false);
    expect(existsSync(`${chatsRoot}/${chatB}`)).toBe(false);
    expect(sysvIpcOf(uid)).toEqual([]);
  });

  it("never reuses a deleted chat's uid, and leaves nothing of it: files in shared temp dirs, IPC, processes", async () => {
    expect(expectAllowed(runtimeUser, ["--", ...create(chatC)]).status).toBe(0);
    const userC = chatUser(chatC);
    const uidC = uidOf(userC);
    const asC = (argv: string[]) => run(["runuser", "-u", userC, "--", ...argv]);
    // What a chat's tools leave lying around in places every user shares.
    const left = [`/tmp/left-${suffix}`, `/var/tmp/left-${suffix}`, `/dev/shm/left-${suffix}`, `/tmp/claude-${uidC}/session-${suffix}`];
    expect(asC(["mkdir", "-p", `/tmp/claude-${uidC}`]).status).toBe(0);
    for (const f of left) expect(asC(["sh", "-c", 'echo "secret of C" > "$1" && chmod 0666 "$1"', "sh", f]).status, f).toBe(0);
    expect(asC(["mkdir", "-p", `/tmp/deep-${suffix}/a`]).status).toBe(0);
    expect(asC(["chmod", "0777", `/tmp/deep-${suffix}`, `/tmp/deep-${suffix}/a`]).status).toBe(0);
    expect(asC(["ipcmk", "-M", "4096"]).status).toBe(0);
    expect(asC(["ipcmk", "-Q"]).status).toBe(0);
    expect(asC(["ipcmk", "-S", "1"]).status).toBe(0);
    expect(sysvIpcOf(uidC).length).toBe(3);
    // A process that detaches from everything and would otherwise outlive the chat.
    run(["runuser", "-u", userC, "--", "sh", "-c", "setsid sleep 600 </dev/null >/dev/null 2>&1 &"]);
    expect(run(["pgrep", "-U", String(uidC)]).status).toBe(0);

    const del = expectAllowed(runtimeUser, ["--", ...remove(chatC)]);
    expect(del.status, del.stderr).toBe(0);
    expect(run(["pgrep", "-U", String(uidC)]).status, "a process of the deleted chat survived").toBe(1);
    for (const f of [...left, `/tmp/claude-${uidC}`, `/tmp/deep-${suffix}`]) expect(existsSync(f), `${f} survived the delete`).toBe(false);
    expect(sysvIpcOf(uidC)).toEqual([]);

    // The next chat gets a new uid: nothing the old one owned can become its own.
    expect(expectAllowed(runtimeUser, ["--", ...create(chatD)]).status).toBe(0);
    const uidD = uidOf(chatUser(chatD));
    expect(uidD).not.toBe(uidC);
    expect(uidD).toBeGreaterThan(uidC);
    const sees = run(["runuser", "-u", chatUser(chatD), "--", "find", "/tmp", "/var/tmp", "/dev/shm", "-user", String(uidD), "-not", "-path", `${chatsRoot}/*`]);
    expect(sees.stdout.trim()).toBe("");
    expect(expectAllowed(runtimeUser, ["--", ...remove(chatD)]).status).toBe(0);
    // Even with the lowest uid free again, the record only moves forward.
    expect(Number(readFileSync(`${helperState}/next-uid`, "utf8"))).toBe(uidD + 1);
  });

  it("lets the admin (an ops member) manage chat users and run the release helper with contract arguments", () => {
    expect(policyAllows(adminUser, ["--", ...create(chatB)])).toBe(true);
    expect(policyAllows(adminUser, ["--", ...remove(chatB)])).toBe(true);
    for (const args of [["status"], ["install", hash], ["activate", hash], ["rollback"], ["rollback", hash], ["uninstall"], ["uninstall", hash]]) {
      const r = expectAllowed(adminUser, ["--", releasePath, ...args]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(`release:${args.join(" ")}`);
    }
  });

  // The one escalation list (doctor checks the same one on a deployed host).
  const refusals = sudoEscalations({ chatsRoot, chatGroup: CHAT_GROUP, claudePath, adminUser, runtimeUser, chatUserHelperPath: helperPath, chat: chatA });

  for (const [label, args] of refusals) {
    it(`refuses for the runtime user: ${label}`, () => expectRefused(runtimeUser, args));
  }
  for (const [label, args] of refusals) {
    it(`refuses for the admin: ${label}`, () => expectRefused(adminUser, args));
  }

  it("refuses release-helper arguments outside the contract, and the helper for anyone but the admin", () => {
    for (const [, args] of releaseHelperEscalations(releasePath, hash)) expectRefused(adminUser, args);
    expectRefused(runtimeUser, ["--", releasePath, "status"]);
  });

  it("refuses running commands as a chat user to anyone but the runtime user", () => {
    expectRefused(adminUser, ["-u", chatUser(chatA), "--", claudePath]);
  });

  it("the helper refuses what sudo's joined-string match lets through: merged argv, odd ids, non-chat accounts", () => {
    // Sudo matches "create abc" whether it came as one argument or two: the helper checks.
    for (const argv of [[helperPath, "create abc"], [helperPath, "delete abc"], [helperPath, `create ${chatA}`]]) {
      expect(policyAllows(runtimeUser, ["--", ...argv]), `sudo passes ${JSON.stringify(argv)} on to the helper`).toBe(true);
      const r = expectAllowed(runtimeUser, ["--", ...argv]);
      expect(r.status, `${JSON.stringify(argv)}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/usage/);
    }
    expect(userExists("pc-abc")).toBe(false);
    // No environment reaches it either (no SETENV): PATH or LD_PRELOAD cannot steer it.
    for (const env of ["PATH=/tmp", "LD_PRELOAD=/tmp/x.so"]) {
      const r = sudoAs(runtimeUser, [env, helperPath, "create", "evilh"]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(SUDO_REFUSAL);
    }
    expect(userExists("pc-evilh")).toBe(false);
    // Ids the sudoers class admits but the chat-id grammar does not.
    for (const id of ["ab-", "a--b", "a-", "zz--"]) {
      expect(policyAllows(runtimeUser, ["--", helperPath, "create", id])).toBe(true);
      const r = expectAllowed(runtimeUser, ["--", helperPath, "create", id]);
      expect(r.status, `${id}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/invalid chat id/);
      expect(userExists(`pc-${id}`)).toBe(false);
    }
    // A pc- account that is not a chat (made by hand, outside the chat group) is never deleted.
    expect(run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "pc-evilx"]).status).toBe(0);
    const r = expectAllowed(runtimeUser, ["--", helperPath, "delete", "evilx"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/not in group/);
    expect(userExists("pc-evilx")).toBe(true);
    // Deleting a chat that does not exist says so, and touches nothing.
    expect(expectAllowed(runtimeUser, ["--", helperPath, "delete", "root"]).status).toBe(6);
    expect(userExists("root")).toBe(true);
  });

  it("lets the runtime user delete the chat user (home removed)", () => {
    expect(expectAllowed(runtimeUser, ["--", ...remove(chatA)]).status).toBe(0);
    expect(userExists(chatUser(chatA))).toBe(false);
    expect(existsSync(`${chatsRoot}/${chatA}`)).toBe(false);
  });
});

describe("chat-user helper after a server replacement (data volume kept, root disk new)", () => {
  const replace = (id: string) => {
    // What a new root disk does: the account and the helper's record are gone, the home stays.
    expect(run(["userdel", "--", chatUser(id)]).status).toBe(0);
    rmSync(replState, { recursive: true, force: true });
  };
  const helper = (cmd: string, id: string) => run([replHelper, cmd, id]);

  beforeAll(() => {
    mkdirSync(replChats, { recursive: true });
    chmodSync(replRoot, 0o755);
    chmodSync(replChats, 0o711);
    writeFileSync(replHelper, renderChatUserHelper({ chatsRoot: replChats, chatGroup: CHAT_GROUP, stateDir: replState, uidMin: REPL_UID_MIN, uidMax: REPL_UID_MIN + 99 }), { mode: 0o755 });
    chownSync(replHelper, 0, 0);
  });

  it("keeps the uid record on the data volume (bind-mounted from it like the chat homes)", () => {
    expect(DATA_BINDS.map(([, dst]) => dst)).toContain(CHAT_USER_STATE_DIR);
  });

  it("never gives a new chat an old chat's uid (and home); the old chat re-adopts its home and uid", () => {
    const a = helper("create", replAlice);
    expect(a.status, a.stderr).toBe(0);
    const aliceUid = uidOf(chatUser(replAlice));
    const secret = `${replChats}/${replAlice}/secret`;
    writeFileSync(secret, "alice's transcript\n", { mode: 0o600 });
    chownSync(secret, aliceUid, 0);
    replace(replAlice);

    const b = helper("create", replBob);
    expect(b.status, b.stderr).toBe(0);
    const bobUid = uidOf(chatUser(replBob));
    expect(bobUid).toBeGreaterThan(aliceUid);
    const steal = run(["runuser", "-u", chatUser(replBob), "--", "cat", secret]);
    expect(steal.stdout).not.toContain("transcript");
    expect(steal.status).not.toBe(0);

    // The old chat comes back (the runtime db lists it as ready): same uid, its home intact.
    const again = helper("create", replAlice);
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ uid: aliceUid, readopted: true });
    expect(uidOf(chatUser(replAlice))).toBe(aliceUid);
    expect(run(["runuser", "-u", chatUser(replAlice), "--", "cat", secret]).stdout).toContain("transcript");
    // And the re-adoption advanced the (new) record: no later chat gets a uid at or below it.
    expect(Number(readFileSync(`${replState}/next-uid`, "utf8").trim())).toBeGreaterThan(aliceUid);
  });

  it("refuses to re-adopt a home whose uid another account holds, with what to do", () => {
    const bobUid = uidOf(chatUser(replBob));
    const home = `${replChats}/${replCarol}`;
    mkdirSync(home, { mode: 0o700 });
    chownSync(home, bobUid, 0);
    const r = helper("create", replCarol);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`owned by uid ${bobUid}, which account ${chatUser(replBob)} now holds`));
    expect(userExists(chatUser(replCarol))).toBe(false);
    chownSync(home, 0, 0);
    const r2 = helper("create", replCarol);
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/outside the chat uid range/);
    expect(userExists(chatUser(replCarol))).toBe(false);
  });
});
