/**
 * picortex doctor, the checks: each reads the host it runs on (files, `systemctl`,
 * `sudo -l`, loopback HTTP) and returns results; none changes anything. Commands run
 * through the local transport (transport.ts); the CLI (cli.ts) chooses and prints.
 */
import { lstatSync, readFileSync, readlinkSync } from "node:fs";
import {
  ANTHROPIC_KEY_PATH as ANTHROPIC_KEY,
  BIN,
  CHAT_USER_HELPER_PATH,
  CREDENTIALS_DIR,
  CURRENT_RELEASE_LINK,
  CURRENT_RELEASE_TARGET_PATTERN,
  RELEASE_HELPER_PATH as RELEASE_HELPER,
  RELEASES_ROOT,
  RUNTIME_CONFIG_PATH as RUNTIME_CONFIG,
  RUNTIME_UNIT,
  STATE_DIR,
  SUDOERS_DROPIN_PATH as SUDOERS_DROPIN,
  SYSTEMD_UNIT_DIR,
  chatUser,
} from "../../agent-runtime/host/contract.js";
import { privilegedArgv } from "../../agent-runtime/host/chat-identity.js";
import { releaseHelperEscalations, sudoEscalations, type Escalation } from "../../agent-runtime/host/escalations.js";
import { httpGet, sh, type Proc } from "./transport.js";

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
