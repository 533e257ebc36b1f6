/**
 * picortex doctor, the command line: options (validated at the edge), usage, output,
 * exit status (0 every check passed, 1 a check failed, 2 bad usage).
 */
import { parseArgs } from "node:util";
import {
  CHAT_GROUP,
  DEFAULT_ADMIN_USER,
  DEFAULT_CHATS_ROOT,
  DEFAULT_CLAUDE_PATH,
  DEFAULT_RUNTIME_PORT,
  LINUX_NAME_SOURCE,
  OPS_GROUP,
  RUNTIME_USER,
  linuxNameProblem,
} from "../../agent-runtime/host/contract.js";
import { runDoctor, type CheckResult, type DoctorOptions } from "./checks.js";
import { forwardedArgs, runOverSsh } from "./transport.js";

export const HELP = `Usage: picortex-doctor [options]

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
  --port <n>               runtime port (default ${DEFAULT_RUNTIME_PORT})
  --cloud-init-timeout <s> seconds to wait for cloud-init (default 600)
  --expect-files <json>    JSON array of {path, mode, owner} to verify as well
  -h, --help               show this help

Exit status: 0 all checks pass, 1 a check failed, 2 bad usage.`;

export class UsageError extends Error {}

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
      port: { type: "string", default: String(DEFAULT_RUNTIME_PORT) },
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

function printHuman(result: { ok: boolean; checks: CheckResult[] }): void {
  for (const c of result.checks) {
    process.stdout.write(`${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}\n`);
    if (!c.ok && c.hint) process.stdout.write(`      → ${c.hint}\n`);
  }
  const failed = result.checks.filter((c) => !c.ok).length;
  process.stdout.write(failed === 0 ? `\nall ${result.checks.length} checks passed\n` : `\n${failed} of ${result.checks.length} checks failed\n`);
}

export async function doctorMain(argv: string[]): Promise<number> {
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
  if (parsed.ssh) return runOverSsh(parsed.ssh, forwardedArgs(argv));
  const result = await runDoctor(parsed.options);
  if (parsed.json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  else printHuman(result);
  return result.ok ? 0 : 1;
}
