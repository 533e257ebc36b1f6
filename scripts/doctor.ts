/**
 * picortex doctor: checks a workspace host the way it was designed, from the host
 * itself, as the admin user (or root, which adds the runtime user's sudo rules).
 *
 *   node doctor.mjs [--json] ...           on the host (the e2e test pipes a bundle over ssh)
 *   npx tsx scripts/doctor.ts --ssh pcadmin@host [--json]   from your machine
 *
 * Checks: cloud-init finished with no errors; no failed units; users, groups, modes and
 * owners; the sudoers drop-in installed and effective (allowed operations pass, the
 * escalation list is refused by the real sudo, asked with `sudo -l <argv>` so nothing
 * is ever executed); tools present; and, with --runtime, the deployed runtime's health.
 * Exit 0 when every check passes, 1 otherwise, 2 on bad usage.
 */
import { spawnSync } from "node:child_process";
import { lstatSync, readFileSync, readlinkSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  ANTHROPIC_KEY_PATH as ANTHROPIC_KEY,
  BIN,
  CHAT_GROUP,
  CHAT_USER_HELPER_PATH,
  CREDENTIALS_DIR,
  CURRENT_RELEASE_LINK,
  CURRENT_RELEASE_TARGET_PATTERN,
  DEFAULT_ADMIN_USER,
  DEFAULT_CHATS_ROOT,
  DEFAULT_CLAUDE_PATH,
  LINUX_NAME_SOURCE,
  OPS_GROUP,
  RELEASE_HELPER_PATH as RELEASE_HELPER,
  RELEASES_ROOT,
  RUNTIME_CONFIG_PATH as RUNTIME_CONFIG,
  RUNTIME_UNIT,
  RUNTIME_USER,
  STATE_DIR,
  SUDOERS_DROPIN_PATH as SUDOERS_DROPIN,
  SYSTEMD_UNIT_DIR,
  chatUser,
  linuxNameProblem,
} from "../agent-runtime/host/contract.js";
import { privilegedArgv } from "../agent-runtime/host/chat-identity.js";
import { releaseHelperEscalations, sudoEscalations, type Escalation } from "../agent-runtime/host/escalations.js";

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do about a failure. */
  hint?: string;
}

export interface DoctorOptions {
  adminUser: string;
  runtimeUser: string;
  opsGroup: string;
  chatGroup: string;
  chatsRoot: string;
  claudePath: string;
  runtimePort: number;
  /** Check the deployed runtime too (after `picortex-release activate`). */
  runtime: boolean;
  /** Seconds to wait for cloud-init (`cloud-init status --wait`). */
  cloudInitTimeout: number;
  /** Extra files to verify, e.g. renderHost().files: [{ path, mode, owner }]. */
  expectFiles: Array<{ path: string; mode: string; owner: string }>;
}

interface Proc {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function sh(argv: string[], timeoutMs = 30_000): Proc {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"] });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}

function idMaps(): { users: Map<number, string>; groups: Map<number, string>; members: Map<string, string[]> } {
  const users = new Map<number, string>();
  const groups = new Map<number, string>();
  const members = new Map<string, string[]>();
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const f = line.split(":");
    if (f.length >= 7) users.set(Number(f[2]), f[0]!);
  }
  for (const line of readFileSync("/etc/group", "utf8").split("\n")) {
    const f = line.split(":");
    if (f.length >= 4) {
      groups.set(Number(f[2]), f[0]!);
      members.set(f[0]!, f[3] ? f[3].split(",") : []);
    }
  }
  return { users, groups, members };
}

function passwdEntry(user: string): { uid: number; gid: number; home: string; shell: string } | undefined {
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const f = line.split(":");
    if (f[0] === user && f.length >= 7) return { uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]! };
  }
  return undefined;
}

/** Mode as 4 octal digits (e.g. "0440"), including setuid/setgid/sticky bits. */
function octalMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

function normalizeMode(mode: string): string {
  return mode.replace(/^0*/, "").padStart(4, "0");
}

export function checkCloudInit(o: DoctorOptions): CheckResult[] {
  const r = sh(["cloud-init", "status", "--wait", "--format", "json"], o.cloudInitTimeout * 1000);
  let parsed: { status?: string; errors?: unknown[]; recoverable_errors?: Record<string, unknown[]> } = {};
  try {
    parsed = JSON.parse(r.stdout) as typeof parsed;
  } catch {
    return [{ name: "cloud-init status", ok: false, detail: `could not read status (exit ${r.status}): ${r.stdout}${r.stderr}`.trim(), hint: "is cloud-init installed? run `cloud-init status --long`" }];
  }
  const errors = parsed.errors ?? [];
  const recoverable = Object.entries(parsed.recoverable_errors ?? {}).flatMap(([level, list]) => list.map((e) => `${level}: ${String(e)}`));
  return [
    {
      name: "cloud-init status",
      ok: parsed.status === "done",
      detail: `status ${parsed.status}`,
      hint: "see `sudo cloud-init status --long` and /var/log/cloud-init.log on the host",
    },
    {
      name: "cloud-init errors",
      ok: errors.length === 0 && recoverable.length === 0,
      detail: errors.length + recoverable.length === 0 ? "none" : [...errors.map(String), ...recoverable].join("; ").slice(0, 2000),
      hint: "each error names the module that failed; fix the rendered cloud-config (templates/) and rebuild the server",
    },
  ];
}

export function checkSystemd(): CheckResult[] {
  const failed = sh(["systemctl", "--failed", "--plain", "--no-legend", "--no-pager"]);
  const units = failed.stdout.split("\n").map((l) => l.trim().split(/\s+/)[0]).filter((u): u is string => !!u);
  const state = sh(["systemctl", "is-system-running"]).stdout.trim();
  return [
    {
      name: "no failed units",
      ok: failed.status === 0 && units.length === 0,
      detail: units.length === 0 ? "none failed" : units.join(", "),
      hint: "inspect with `systemctl status <unit>` and `journalctl -u <unit>`",
    },
    { name: "system state", ok: state === "running", detail: state, hint: "`systemctl list-jobs` shows what is still starting" },
  ];
}

export function checkIdentities(o: DoctorOptions): CheckResult[] {
  const { members } = idMaps();
  const out: CheckResult[] = [];
  const rt = passwdEntry(o.runtimeUser);
  out.push({
    name: `runtime user ${o.runtimeUser}`,
    ok: !!rt && rt.uid > 0 && rt.uid < 1000 && /\/(nologin|false)$/.test(rt.shell),
    detail: rt ? `uid ${rt.uid}, shell ${rt.shell}` : "missing",
    hint: "the runtime must be a system user without a login shell",
  });
  const admin = passwdEntry(o.adminUser);
  out.push({ name: `admin user ${o.adminUser}`, ok: !!admin && admin.uid >= 1000, detail: admin ? `uid ${admin.uid}, home ${admin.home}` : "missing" });
  for (const group of [o.opsGroup, o.chatGroup]) out.push({ name: `group ${group}`, ok: members.has(group), detail: members.has(group) ? "exists" : "missing" });
  const adminGroups = sh(["id", "-nG", o.adminUser]).stdout.trim().split(/\s+/);
  out.push({
    name: `${o.adminUser} in ${o.opsGroup}`,
    ok: adminGroups.includes(o.opsGroup),
    detail: adminGroups.join(" "),
  });
  const privileged = adminGroups.filter((g) => ["sudo", "wheel", "root", "adm", "admin", "docker", "lxd", "disk", "shadow"].includes(g));
  out.push({
    name: `${o.adminUser} has no general privilege groups`,
    ok: privileged.length === 0,
    detail: privileged.length === 0 ? "none of sudo/wheel/root/adm/admin/docker/lxd/disk/shadow" : privileged.join(" "),
    hint: "the admin deploys through picortex-release only; remove it from these groups",
  });
  const rtGroups = sh(["id", "-nG", o.runtimeUser]).stdout.trim().split(/\s+/);
  out.push({ name: `${o.runtimeUser} in ${o.opsGroup}`, ok: rtGroups.includes(o.opsGroup), detail: rtGroups.join(" ") });
  return out;
}

interface ExpectedPath {
  path: string;
  type: "file" | "dir" | "symlink";
  owner: string;
  group?: string;
  mode?: string;
  /** Only when the runtime is deployed. */
  runtime?: boolean;
}

function expectedPaths(o: DoctorOptions): ExpectedPath[] {
  return [
    { path: SUDOERS_DROPIN, type: "file", owner: "root", group: "root", mode: "0440" },
    { path: RELEASE_HELPER, type: "file", owner: "root", group: "root", mode: "0755" },
    { path: RUNTIME_CONFIG, type: "file", owner: "root" },
    { path: CREDENTIALS_DIR, type: "dir", owner: "root", group: "root", mode: "0700" },
    { path: `${SYSTEMD_UNIT_DIR}/${RUNTIME_UNIT}`, type: "file", owner: "root", group: "root", mode: "0644" },
    { path: o.chatsRoot, type: "dir", owner: "root", mode: "0711" },
    { path: RELEASES_ROOT, type: "dir", owner: "root", runtime: true },
    { path: STATE_DIR, type: "dir", owner: o.runtimeUser, runtime: true },
    { path: CURRENT_RELEASE_LINK, type: "symlink", owner: "root", runtime: true },
  ];
}

function checkPath(e: ExpectedPath, maps: ReturnType<typeof idMaps>): CheckResult {
  const name = `${e.path} ${e.type}${e.owner ? ` ${e.owner}${e.group ? `:${e.group}` : ""}` : ""}${e.mode ? ` ${e.mode}` : ""}`;
  try {
    const st = lstatSync(e.path);
    const type = st.isSymbolicLink() ? "symlink" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
    const owner = maps.users.get(st.uid) ?? String(st.uid);
    const group = maps.groups.get(st.gid) ?? String(st.gid);
    const mode = octalMode(st.mode);
    const problems: string[] = [];
    if (type !== e.type) problems.push(`is a ${type}`);
    if (owner !== e.owner) problems.push(`owner ${owner}`);
    if (e.group && group !== e.group) problems.push(`group ${group}`);
    if (e.mode && type !== "symlink" && mode !== normalizeMode(e.mode)) problems.push(`mode ${mode}`);
    return { name, ok: problems.length === 0, detail: problems.length ? problems.join(", ") : `${type} ${owner}:${group} ${mode}` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { name, ok: false, detail: code === "ENOENT" ? "missing" : `cannot stat: ${code}`, hint: "compare with the rendered files (npm run render)" };
  }
}

export function checkPaths(o: DoctorOptions): CheckResult[] {
  const maps = idMaps();
  // A non-root caller cannot stat inside root-only directories (/etc/sudoers.d is 0750):
  // that is the design, not a failure. Run doctor as root to check those modes too.
  const visible = (r: CheckResult): CheckResult =>
    !r.ok && r.detail === "cannot stat: EACCES" && process.getuid?.() !== 0
      ? { ...r, ok: true, detail: `not visible to ${passwdName()} (private parent directory; run as root to check)` }
      : r;
  const out = expectedPaths(o)
    .filter((e) => o.runtime || !e.runtime)
    .map((e) => visible(checkPath(e, maps)));
  for (const f of o.expectFiles) {
    const [owner, group] = f.owner.split(":");
    out.push(visible(checkPath({ path: f.path, type: "file", owner: owner!, group, mode: f.mode }, maps)));
  }
  // The key must never be readable by anyone but root (and the unit, via LoadCredential).
  let readable = false;
  try {
    readFileSync(ANTHROPIC_KEY);
    readable = true;
  } catch {
    readable = false;
  }
  if (process.getuid?.() !== 0) {
    out.push({
      name: `Anthropic key unreadable by ${passwdName()}`,
      ok: !readable,
      detail: readable ? `${ANTHROPIC_KEY} is readable` : "permission denied, as designed",
      hint: `chmod 0600 ${ANTHROPIC_KEY} and 0700 ${CREDENTIALS_DIR}, owned by root`,
    });
  }
  if (o.runtime) {
    try {
      const target = readlinkSync(CURRENT_RELEASE_LINK);
      out.push({ name: "current release link", ok: CURRENT_RELEASE_TARGET_PATTERN.test(target), detail: target });
    } catch (err) {
      out.push({ name: "current release link", ok: false, detail: String((err as Error).message) });
    }
  }
  return out;
}

function passwdName(): string {
  const uid = process.getuid?.() ?? -1;
  return idMaps().users.get(uid) ?? String(uid);
}

/** `sudo -n -l [-U user] <argv>`: exit 0 when the policy would allow it; nothing is executed. */
function policyAllows(sudoArgs: string[], asUser?: string): Proc {
  return sh([BIN.sudo, "-n", ...(asUser ? ["-U", asUser] : []), "-l", ...sudoArgs]);
}

const PROBE_CHAT = "doctor-probe";
const PROBE_HASH = "0123456789abcdef0123456789abcdef";

/**
 * Escalations that must be refused to both the admin and the runtime user: the same list
 * tests/infra/sudoers-escalation.test.ts proves refused by the real sudo.
 */
export function escalations(o: DoctorOptions): Escalation[] {
  const context = { ...o, chatUserHelperPath: CHAT_USER_HELPER_PATH, chat: "evil" };
  return [...sudoEscalations(context), ...releaseHelperEscalations(RELEASE_HELPER, PROBE_HASH)];
}

export function checkSudo(o: DoctorOptions): CheckResult[] {
  const out: CheckResult[] = [];
  const me = passwdName();
  const isRoot = process.getuid?.() === 0;
  const visudo = isRoot ? sh(["visudo", "-cf", SUDOERS_DROPIN]) : undefined;
  if (visudo) out.push({ name: "sudoers drop-in parses", ok: visudo.status === 0, detail: (visudo.stdout + visudo.stderr).trim() });

  const subjects: Array<{ user: string; who: "admin" | "runtime" }> = [];
  if (isRoot) subjects.push({ user: o.adminUser, who: "admin" }, { user: o.runtimeUser, who: "runtime" });
  else if (me === o.adminUser) subjects.push({ user: o.adminUser, who: "admin" });
  else out.push({ name: "sudo rules", ok: false, detail: `run doctor as ${o.adminUser} or root (running as ${me})` });

  for (const { user, who } of subjects) {
    const as = isRoot ? user : undefined;
    const allowed: Array<[string, string[]]> = [
      ["create a chat user", ["--", ...privilegedArgv.createUser(PROBE_CHAT)]],
      ["delete a chat user", ["--", ...privilegedArgv.deleteUser(PROBE_CHAT)]],
    ];
    if (who === "admin") allowed.push(["release helper status", ["--", RELEASE_HELPER, "status"]], ["release helper install <hash>", ["--", RELEASE_HELPER, "install", PROBE_HASH]]);
    for (const [label, args] of allowed) {
      const r = policyAllows(args, as);
      out.push({ name: `sudo allows ${user}: ${label}`, ok: r.status === 0, detail: r.status === 0 ? "allowed" : (r.stdout + r.stderr).trim() || `exit ${r.status}`, hint: `check ${SUDOERS_DROPIN} (root:root 0440) and that ${user} is in ${o.opsGroup}` });
    }
    const refusals = escalations(o);
    if (who === "admin") refusals.push(["run as a chat user", ["-u", chatUser(PROBE_CHAT), "--", o.claudePath]]);
    if (who === "runtime") refusals.push(["release helper", ["--", RELEASE_HELPER, "status"]]);
    for (const [label, args] of refusals) {
      const r = policyAllows(args, as);
      out.push({ name: `sudo refuses ${user}: ${label}`, ok: r.status !== 0, detail: r.status !== 0 ? "refused" : `ALLOWED: ${r.stdout.trim()}`, hint: "the drop-in is wider than designed: re-render it (templates/render-sudoers.ts)" });
    }
  }
  if (me === o.adminUser) {
    // One real run of an allowed operation: proves NOPASSWD works and the helper runs.
    const r = sh([BIN.sudo, "-n", RELEASE_HELPER, "status"], 60_000);
    let json = false;
    try {
      JSON.parse(r.stdout);
      json = true;
    } catch {
      json = false;
    }
    out.push({ name: "sudo -n picortex-release status runs", ok: r.status === 0 && json, detail: r.status === 0 ? r.stdout.trim().slice(0, 300) : (r.stdout + r.stderr).trim().slice(0, 500) });
  }
  return out;
}

export function checkTools(o: DoctorOptions): CheckResult[] {
  const node = sh(["node", "--version"]);
  const major = Number(/^v(\d+)/.exec(node.stdout.trim())?.[1] ?? 0);
  // Generous: the CLI is a 240 MB binary, and a TCG-emulated test VM starts it slowly.
  const claude = sh([o.claudePath, "--version"], 300_000);
  const tmux = sh(["tmux", "-V"]);
  return [
    { name: "node >= 20", ok: node.status === 0 && major >= 20, detail: node.stdout.trim() || node.stderr.trim(), hint: "production installs Node.js LTS from NodeSource in cloud-init" },
    {
      name: `claude at ${o.claudePath}`,
      ok: claude.status === 0,
      detail:
        claude.status === null
          ? `killed by ${claude.signal ?? "?"}${claude.signal === "SIGILL" ? " (illegal instruction: the CPU lacks an instruction set the CLI needs, e.g. AVX2)" : ""}${claude.stderr.trim() ? `: ${claude.stderr.trim()}` : ""}`
          : ((claude.stdout || claude.stderr).trim().split("\n")[0] ?? ""),
    },
    { name: "tmux", ok: tmux.status === 0, detail: tmux.stdout.trim() || tmux.stderr.trim() },
  ];
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "GET", timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** What /healthz says, as checks: the process serves, and its data dir's disk has room. */
export function runtimeHealthChecks(status: number, text: string): CheckResult[] {
  let body: { ok?: boolean; disk?: { full?: boolean; path?: string; freeBytes?: number | null; message?: string | null } };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return [{ name: "runtime /healthz", ok: false, detail: `${status} ${text.slice(0, 200)}` }];
  }
  const out: CheckResult[] = [{ name: "runtime /healthz", ok: status === 200 && body.ok === true, detail: `${status} ${text.slice(0, 200)}` }];
  if (body.disk) {
    out.push({
      name: "runtime data disk",
      ok: body.disk.full !== true,
      detail: body.disk.full ? (body.disk.message ?? `disk full: ${body.disk.path}`) : `${body.disk.path}: ${Math.floor((body.disk.freeBytes ?? 0) / 1048576)} MiB free`,
      hint: body.disk.full ? `free space on the filesystem of ${body.disk.path} (e.g. old archives, journal logs); the runtime recovers without a restart` : undefined,
    });
  }
  return out;
}

export async function checkRuntime(o: DoctorOptions): Promise<CheckResult[]> {
  const active = sh(["systemctl", "is-active", RUNTIME_UNIT]).stdout.trim();
  const out: CheckResult[] = [{ name: `${RUNTIME_UNIT} active`, ok: active === "active", detail: active, hint: `journalctl -u ${RUNTIME_UNIT}` }];
  try {
    const r = await httpGet(o.runtimePort, "/healthz");
    out.push(...runtimeHealthChecks(r.status, r.body));
  } catch (err) {
    out.push({ name: "runtime /healthz", ok: false, detail: String((err as Error).message), hint: `is the runtime listening on 127.0.0.1:${o.runtimePort}?` });
  }
  return out;
}

export async function runDoctor(o: DoctorOptions): Promise<{ ok: boolean; checks: CheckResult[] }> {
  const checks = [
    ...checkCloudInit(o),
    ...checkSystemd(),
    ...checkIdentities(o),
    ...checkPaths(o),
    ...checkSudo(o),
    ...checkTools(o),
    ...(o.runtime ? await checkRuntime(o) : []),
  ];
  return { ok: checks.every((c) => c.ok), checks };
}

const HELP = `Usage: picortex-doctor [options]

Checks a picortex workspace host from the host itself (run it as the admin user, or
as root to include the runtime user's sudo rules).

Options:
  --json                   print {"ok", "checks": [{name, ok, detail, hint}]} only
  --runtime                also check the deployed runtime (unit active, /healthz)
  --ssh <user@host>        run on a remote host over ssh (bundles this script, pipes it to node)
  --ssh-port <port>        ssh port (default 22)
  --identity <file>        ssh private key file
  --admin-user <name>      default ${DEFAULT_ADMIN_USER}
  --runtime-user <name>    default ${RUNTIME_USER}
  --ops-group <name>       default ${OPS_GROUP}
  --chat-group <name>      default ${CHAT_GROUP}
  --chats-root <path>      default ${DEFAULT_CHATS_ROOT}
  --claude-path <path>     default ${DEFAULT_CLAUDE_PATH}
  --port <n>               runtime port (default 7420)
  --cloud-init-timeout <s> seconds to wait for cloud-init (default 600)
  --expect-files <json>    JSON array of {path, mode, owner} to verify as well
  -h, --help               show this help

Exit status: 0 all checks pass, 1 a check failed, 2 bad usage.`;

class UsageError extends Error {}

export function parseDoctorArgs(argv: string[]): { options: DoctorOptions; json: boolean; ssh?: { target: string; port: number; identity?: string }; help: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      runtime: { type: "boolean", default: false },
      ssh: { type: "string" },
      "ssh-port": { type: "string", default: "22" },
      identity: { type: "string" },
      "admin-user": { type: "string", default: DEFAULT_ADMIN_USER },
      "runtime-user": { type: "string", default: RUNTIME_USER },
      "ops-group": { type: "string", default: OPS_GROUP },
      "chat-group": { type: "string", default: CHAT_GROUP },
      "chats-root": { type: "string", default: DEFAULT_CHATS_ROOT },
      "claude-path": { type: "string", default: DEFAULT_CLAUDE_PATH },
      port: { type: "string", default: "7420" },
      "cloud-init-timeout": { type: "string", default: "600" },
      "expect-files": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  const path = /^(?:\/[a-z0-9_.-]+)+$/;
  for (const [k, v] of [["admin-user", values["admin-user"]], ["runtime-user", values["runtime-user"]], ["ops-group", values["ops-group"]], ["chat-group", values["chat-group"]]] as const) {
    const problem = linuxNameProblem(v);
    if (problem) throw new UsageError(`--${k}: ${problem}`);
  }
  for (const [k, v] of [["chats-root", values["chats-root"]], ["claude-path", values["claude-path"]]] as const) {
    if (!path.test(v) || v.includes("..")) throw new UsageError(`--${k} ${JSON.stringify(v)} must be an absolute path without ..`);
  }
  const int = (k: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${k} must be an integer from ${min} to ${max}`);
    return n;
  };
  let expectFiles: DoctorOptions["expectFiles"] = [];
  if (values["expect-files"]) {
    try {
      const parsed = JSON.parse(values["expect-files"]) as unknown;
      if (!Array.isArray(parsed)) throw new Error("not an array");
      expectFiles = parsed.map((f: unknown) => {
        const r = f as Record<string, unknown>;
        if (typeof r.path !== "string" || typeof r.mode !== "string" || typeof r.owner !== "string" || !/^[0-7]{3,4}$/.test(r.mode)) throw new Error(`bad entry ${JSON.stringify(f)}`);
        return { path: r.path, mode: r.mode, owner: r.owner };
      });
    } catch (err) {
      throw new UsageError(`--expect-files must be a JSON array of {path, mode, owner}: ${(err as Error).message}`);
    }
  }
  if (values.ssh !== undefined && !new RegExp(`^${LINUX_NAME_SOURCE}@[A-Za-z0-9.:-]+$`).test(values.ssh)) throw new UsageError("--ssh must look like user@host");
  return {
    help: values.help,
    json: values.json,
    ssh: values.ssh ? { target: values.ssh, port: int("ssh-port", values["ssh-port"], 1, 65535), identity: values.identity } : undefined,
    options: {
      adminUser: values["admin-user"],
      runtimeUser: values["runtime-user"],
      opsGroup: values["ops-group"],
      chatGroup: values["chat-group"],
      chatsRoot: values["chats-root"],
      claudePath: values["claude-path"],
      runtimePort: int("port", values.port, 1, 65535),
      runtime: values.runtime,
      cloudInitTimeout: int("cloud-init-timeout", values["cloud-init-timeout"], 1, 3600),
      expectFiles,
    },
  };
}

/** Bundles this file into one ESM script that runs with plain `node` on the host. */
export async function bundleDoctor(outFile: string): Promise<string> {
  const { build } = await import("esbuild");
  const here = fileURLToPath(import.meta.url);
  await build({
    entryPoints: [here],
    outfile: outFile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "silent",
    define: { "process.env.PICORTEX_DOCTOR_BUNDLED": '"1"' },
  });
  return outFile;
}

function printHuman(result: { ok: boolean; checks: CheckResult[] }): void {
  for (const c of result.checks) {
    process.stdout.write(`${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}\n`);
    if (!c.ok && c.hint) process.stdout.write(`      → ${c.hint}\n`);
  }
  const failed = result.checks.filter((c) => !c.ok).length;
  process.stdout.write(failed === 0 ? `\nall ${result.checks.length} checks passed\n` : `\n${failed} of ${result.checks.length} checks failed\n`);
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseDoctorArgs>;
  try {
    parsed = parseDoctorArgs(argv);
  } catch (err) {
    process.stderr.write(`picortex-doctor: ${(err as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  if (parsed.ssh) {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "picortex-doctor-"));
    try {
      const bundle = await bundleDoctor(join(dir, "doctor.mjs"));
      const local = ["--ssh", "--ssh-port", "--identity"];
      // Drop the options that only mean something here (both `--opt value` and `--opt=value`).
      const forward = argv.filter((a, i) => !local.includes(a) && !local.includes(argv[i - 1] ?? "") && !local.some((o) => a.startsWith(`${o}=`)));
      const sshArgv = ["ssh", "-p", String(parsed.ssh.port), ...(parsed.ssh.identity ? ["-i", parsed.ssh.identity] : []), parsed.ssh.target, "--", "node", "--input-type=module", "-", ...forward.map(shQuote)];
      const r = spawnSync(sshArgv[0]!, sshArgv.slice(1), { input: readFileSync(bundle), stdio: ["pipe", "inherit", "inherit"] });
      return r.status ?? 1;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const result = await runDoctor(parsed.options);
  if (parsed.json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  else printHuman(result);
  return result.ok ? 0 : 1;
}

/** ssh joins its remote argv into one shell string, so quote each argument. */
function shQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

const invokedDirectly =
  process.env.PICORTEX_DOCTOR_BUNDLED === "1" || (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]);
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`picortex-doctor: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
