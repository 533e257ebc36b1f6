/**
 * scripts/doctor.ts can fail: on this machine (not a workspace host) with a deliberately
 * wide sudoers rule, the escalation checks must report ALLOWED. The e2e test shows the
 * passing side on a real booted host.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { checkIdentities, checkSudo, parseDoctorArgs, type DoctorOptions } from "../../scripts/doctor.js";
import { quoteArgv } from "./harness/ssh.js";

const suffix = String(process.pid % 100000);
const user = `pcdoc${suffix}`;
const dropIn = `/etc/sudoers.d/pcdoctest${suffix}`; // no dot: @includedir would skip it

function options(over: Partial<DoctorOptions> = {}): DoctorOptions {
  return { ...parseDoctorArgs([]).options, adminUser: user, runtimeUser: user, ...over };
}

describe("doctor", () => {
  beforeAll(() => {
    if (process.getuid?.() !== 0) throw new Error("the doctor test creates a user and a sudoers drop-in: run as root");
    const r = spawnSync("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", user]);
    if (r.status !== 0) throw new Error(`useradd ${user}: ${r.stderr}`);
    // Everything, as root: the "broad sudo -u *" mistake the seed design made.
    writeFileSync(dropIn, `${user} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
    const check = spawnSync("visudo", ["-cf", dropIn]);
    if (check.status !== 0) throw new Error(`visudo: ${check.stderr}`);
  });
  afterAll(() => {
    rmSync(dropIn, { force: true });
    spawnSync("userdel", [user]);
  });

  it("reports every escalation as ALLOWED under a wide sudoers rule", () => {
    const results = checkSudo(options());
    const refusals = results.filter((c) => c.name.startsWith(`sudo refuses ${user}:`));
    expect(refusals.length).toBeGreaterThanOrEqual(20);
    const allowedAnyway = refusals.filter((c) => !c.ok);
    // Every escalation that names a real command is allowed by ALL; the checks must say so.
    expect(allowedAnyway.map((c) => c.name)).toContain(`sudo refuses ${user}: sudo -u root id`);
    expect(allowedAnyway.map((c) => c.name)).toContain(`sudo refuses ${user}: chmod 777 /etc/shadow`);
    expect(allowedAnyway.every((c) => c.detail.startsWith("ALLOWED"))).toBe(true);
  });

  it("flags a missing runtime user and groups", () => {
    const results = checkIdentities(options({ runtimeUser: "pcnosuchuser", opsGroup: "pcnosuchgroup" }));
    expect(results.find((c) => c.name === "runtime user pcnosuchuser")?.ok).toBe(false);
    expect(results.find((c) => c.name === "group pcnosuchgroup")?.ok).toBe(false);
  });

  it("rejects bad arguments with a usage message", () => {
    expect(() => parseDoctorArgs(["--admin-user", "root;id"])).toThrow(/not a valid user\/group name/);
    expect(() => parseDoctorArgs(["--chats-root", "/srv/../etc"])).toThrow(/absolute path/);
    expect(() => parseDoctorArgs(["--expect-files", "{}"])).toThrow(/JSON array/);
    expect(() => parseDoctorArgs(["--ssh", "host; rm -rf /"])).toThrow(/user@host/);
  });
});

describe("remote argv quoting", () => {
  it("hands hostile arguments to a POSIX shell unchanged", () => {
    const args = ["printf", "%s\\n", "$(id)", "`id`", "a b", "it's", "", "semi;colon", "new\nline", "*"];
    const r = spawnSync("sh", ["-c", quoteArgv(args)], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(args.slice(2).map((a) => `${a}\n`).join(""));
  });
});
