/**
 * The escalation list: sudo invocations the host's drop-in must refuse to the runtime user
 * and the deploy admin. One list, two users of it: tests/infra/sudoers-escalation.test.ts
 * installs the rendered drop-in and proves each is refused by the real sudo (and attempted
 * only after `sudo -l` said no), and scripts/doctor checks the same list on a deployed host
 * with `sudo -l` (a policy query; nothing is executed).
 *
 * Each entry is `[label, sudoArgs]`: the arguments after `sudo -n` (options, then `--` and
 * the command). Built from the host contract only.
 */
import { BIN, LOGIN_SHELL, chatUser } from "./contract.js";

export type Escalation = [label: string, sudoArgs: string[]];

export interface EscalationContext {
  chatsRoot: string;
  chatGroup: string;
  claudePath: string;
  adminUser: string;
  runtimeUser: string;
  /** The chat-user helper as installed (CHAT_USER_HELPER_PATH on a host; a scratch copy in tests). */
  chatUserHelperPath: string;
  /** A chat id whose home and user the entries aim at (an existing chat in the tests; any id for doctor). */
  chat: string;
}

/** Refused to both the runtime user and the admin. */
export function sudoEscalations(c: EscalationContext): Escalation[] {
  const home = (id: string) => ["--create-home", "--home-dir", `${c.chatsRoot}/${id}`];
  const useraddTail = (id: string) => ["--gid", c.chatGroup, "--shell", LOGIN_SHELL, chatUser(id)];
  const helper = c.chatUserHelperPath;
  return [
    ["useradd -o -u 0", ["--", BIN.useradd, "-o", "-u", "0", ...home("evil0"), ...useraddTail("evil0")]],
    ["useradd with uid 0 appended", ["--", BIN.useradd, ...home("evil0"), ...useraddTail("evil0"), "-o", "-u", "0"]],
    ["useradd -G sudo", ["--", BIN.useradd, ...home("evilg"), "-G", "sudo", ...useraddTail("evilg")]],
    ["useradd -G root", ["--", BIN.useradd, ...home("evilg"), "-G", "root", ...useraddTail("evilg")]],
    ["useradd --gid root", ["--", BIN.useradd, ...home("evilg"), "--gid", "root", "--shell", LOGIN_SHELL, chatUser("evilg")]],
    ["useradd -p <hash>", ["--", BIN.useradd, "-p", "$6$x$y", ...home("evilp"), ...useraddTail("evilp")]],
    ["useradd -d /root", ["--", BIN.useradd, "--create-home", "--home-dir", "/root", ...useraddTail("evild")]],
    ["useradd -d /root (short flag)", ["--", BIN.useradd, "-m", "-d", "/root", ...useraddTail("evild")]],
    ["useradd with a home outside the chats root", ["--", BIN.useradd, "--create-home", "--home-dir", "/srv/elsewhere/evilh", ...useraddTail("evilh")]],
    ["useradd with .. in the home", ["--", BIN.useradd, "--create-home", "--home-dir", `${c.chatsRoot}/../../etc`, ...useraddTail("evilh")]],
    ["useradd whose home names another chat", ["--", BIN.useradd, ...home(c.chat), ...useraddTail("evilh")]],
    ["useradd of a non-chat user name", ["--", BIN.useradd, ...home("evilh"), "--gid", c.chatGroup, "--shell", LOGIN_SHELL, "evilh"]],
    ["useradd directly (only the chat-user helper may)", ["--", BIN.useradd, ...home("evilh"), ...useraddTail("evilh")]],
    ["chmod u+s", ["--", BIN.chmod, "u+s", `${c.chatsRoot}/${c.chat}`]],
    ["chmod 4755", ["--", BIN.chmod, "4755", `${c.chatsRoot}/${c.chat}`]],
    ["chmod 0777", ["--", BIN.chmod, "0777", `${c.chatsRoot}/${c.chat}`]],
    ["chmod on /etc/shadow", ["--", BIN.chmod, "0700", "/etc/shadow"]],
    ["chmod 777 /etc/shadow", ["--", BIN.chmod, "777", "/etc/shadow"]],
    ["chmod with .. in the path", ["--", BIN.chmod, "0700", `${c.chatsRoot}/${c.chat}/../../../etc/shadow`]],
    ["chmod -R", ["--", BIN.chmod, "-R", "0700", `${c.chatsRoot}/${c.chat}`]],
    ["chmod of two paths", ["--", BIN.chmod, "0700", `${c.chatsRoot}/${c.chat}`, "/etc/shadow"]],
    ["userdel root", ["--", BIN.userdel, "root"]],
    ["userdel --remove root", ["--", BIN.userdel, "--remove", "root"]],
    ["userdel of the admin", ["--", BIN.userdel, c.adminUser]],
    ["userdel of the runtime user", ["--", BIN.userdel, c.runtimeUser]],
    ["userdel --force of a chat user", ["--", BIN.userdel, "--force", chatUser(c.chat)]],
    ["sudo bash", ["--", LOGIN_SHELL]],
    ["sudo -s", ["-s"]],
    ["sudo -i", ["-i"]],
    ["sudo -u root id", ["-u", "root", "--", BIN.id]],
    ["sudo -u root claude", ["-u", "root", "--", c.claudePath]],
    ["sudo -u <admin> claude (non-chat user)", ["-u", c.adminUser, "--", c.claudePath]],
    ["sudo -u nobody claude (non-chat user)", ["-u", "nobody", "--", c.claudePath]],
    ["sudo -u pc-<id> -g root claude", ["-u", chatUser(c.chat), "-g", "root", "--", c.claudePath]],
    ["sudo -u pc-<id> bash", ["-u", chatUser(c.chat), "--", LOGIN_SHELL]],
    ["sudoedit /etc/shadow", ["-e", "/etc/shadow"]],
    // The chat-user helper: only `create|delete <id>` reaches it.
    ["the helper with a merged argument carrying useradd options", ["--", helper, "create", "evilh --gid root --shell /bin/sh"]],
    ["the helper with an extra argument", ["--", helper, "create", "evilh", "--gid"]],
    ["the helper with an option before the command", ["--", helper, "--gid", "root", "create", "evilh"]],
    ["the helper with an uppercase id", ["--", helper, "create", "Evilh"]],
    ["the helper with a path as id", ["--", helper, "create", "../../etc"]],
    ["the helper with an id that is too long", ["--", helper, "create", "e".repeat(25)]],
    ["the helper with another command", ["--", helper, "purge", "evilh"]],
    ["the helper with no arguments", ["--", helper]],
    ["the helper as another user", ["-u", "nobody", "--", helper, "create", "evilh"]],
  ];
}

/**
 * Release-helper arguments outside the contract (`RELEASE_ARGS_REGEX`): refused to the
 * admin (who may run the helper with contract arguments), and, like every release-helper
 * call, to the runtime user. `hash` is a valid release hash.
 */
export function releaseHelperEscalations(releaseHelperPath: string, hash: string): Escalation[] {
  const rel = (...args: string[]): string[] => ["--", releaseHelperPath, ...args];
  return [
    ["release helper: path argument", rel("install", "../../etc")],
    ["release helper: uppercase hash", rel("install", "ABCDEF0123456789")],
    ["release helper: short hash", rel("install", "abc")],
    ["release helper: unknown option", rel("status", "--all")],
    ["release helper: two hashes", rel("install", hash, hash)],
    ["release helper: injected argument", rel("activate", `${hash};id`)],
    ["release helper: unknown verb", rel("shell")],
  ];
}
