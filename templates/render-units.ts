/**
 * systemd units for the host. Checked in tests with `systemd-analyze verify` and scored
 * with `systemd-analyze security --offline=true` against the thresholds below.
 *
 * Design (see docs/workspace-stack.md, "Runtime sandbox"): the runtime MUST be able to
 * run sudo (host contract: chat users are managed with `sudo -n useradd/userdel/chmod`
 * and turns run as `sudo -u pc-<id>`). So the runtime unit sets NoNewPrivileges=no and
 * avoids every option that implies it for a non-root User= (systemd 252 list:
 * LockPersonality, MemoryDenyWriteExecute, PrivateDevices, ProtectClock, ProtectHostname,
 * ProtectKernelLogs/Modules/Tunables, RestrictAddressFamilies, RestrictNamespaces,
 * RestrictRealtime, RestrictSUIDSGID, SystemCallArchitectures, SystemCallFilter,
 * SystemCallLog). MemoryDenyWriteExecute would also crash V8 and Claude Code's JIT.
 * What remains is filesystem and capability confinement that also holds for sudo's
 * children: ProtectSystem=strict with only /etc (useradd), the chats root and the state
 * dir writable, no /home or /root, private /tmp, hidden foreign processes, a
 * capability bounding set limited to what sudo/useradd/userdel/chmod need.
 *
 * The listen-address helper needs none of that, so it gets the full sandbox.
 */
import { safePathProblem } from "./validators.js";
import { CHAT_USER_STATE_DIR } from "../agent-runtime/host/accounts.js";

export const RUNTIME_UNIT = "picortex-runtime.service";
export const LISTEN_ADDRESS_UNIT = "picortex-listen-address.service";
export const LISTEN_ADDRESS_SCRIPT_PATH = "/usr/local/lib/picortex/listen-address";
export const LISTEN_ENV_DIR = "picortex-listen";
export const RUNTIME_CONFIG_PATH = "/etc/picortex/runtime.json";
export const ANTHROPIC_KEY_PATH = "/etc/picortex/credentials/anthropic-api-key";
export const RELEASE_ENTRY = "/opt/picortex/current/picortex.mjs";
export const STATE_DIR = "/var/lib/picortex";

/**
 * Exposure thresholds (systemd-analyze security, 0 = locked down, 10 = unconfined).
 * The runtime is capped at 6.5 ("MEDIUM"): it keeps sudo working, so the NoNewPrivileges
 * family (≈3.2 points together) is unavailable to it by design; every other applicable
 * option is set. The helper has no such constraint and must score ≤ 2.0 ("OK").
 * Raising a threshold needs a written reason in docs/workspace-stack.md.
 */
export const EXPOSURE_THRESHOLDS: Record<string, number> = {
  [RUNTIME_UNIT]: 6.5,
  [LISTEN_ADDRESS_UNIT]: 2.0,
  // Root with CAP_NET_ADMIN and the host network namespace (it must filter it): ≤ 3.0.
  "picortex-metadata-guard.service": 3.0,
};

/**
 * Capabilities sudo's root children may hold. sudo needs SETUID/SETGID (switch user,
 * set groups) and AUDIT_WRITE (PAM), SYS_RESOURCE (it adjusts RLIMIT_NPROC);
 * useradd/userdel/chmod need CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID
 * (create/remove a home owned by the chat user, set its mode), KILL (userdel checks for
 * running processes). tests/infra/sudoers-escalation.test.ts runs the real operations
 * under exactly this bounding set with setpriv.
 */
export const RUNTIME_CAPABILITY_BOUNDING_SET = [
  "CAP_AUDIT_WRITE",
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SYS_RESOURCE",
] as const;

export interface UnitVars {
  runtimeUser: string;
  chatsRoot: string;
  /** Production binds loopback + the tailnet address written by the listen-address unit. */
  tailnetListen: boolean;
}

export interface RenderedUnit {
  name: string;
  path: string;
  content: string;
}

function unitFile(sections: Array<[string, Array<string | [string, string]>]>, header: string[]): string {
  const out: string[] = header.map((h) => `# ${h}`.trimEnd());
  for (const [name, entries] of sections) {
    out.push("", `[${name}]`);
    for (const e of entries) out.push(typeof e === "string" ? `# ${e}` : `${e[0]}=${e[1]}`);
  }
  return out.join("\n") + "\n";
}

export function renderRuntimeUnit(vars: UnitVars): RenderedUnit {
  const chatsRootProblem = safePathProblem(vars.chatsRoot);
  if (chatsRootProblem) throw new Error(`runtime unit: ${chatsRootProblem}`);
  const listen = vars.tailnetListen
    ? ([
        ["After", `network-online.target ${LISTEN_ADDRESS_UNIT}`],
        ["Wants", `network-online.target ${LISTEN_ADDRESS_UNIT}`],
      ] as Array<[string, string]>)
    : ([
        ["After", "network-online.target"],
        ["Wants", "network-online.target"],
      ] as Array<[string, string]>);
  const content = unitFile(
    [
      [
        "Unit",
        [
          ["Description", "picortex agent runtime (portal, chat turns, brain)"],
          ...listen,
          "Nothing to run until picortex-release activates the first release.",
          ["ConditionPathExists", RELEASE_ENTRY],
          ["StartLimitIntervalSec", "120"],
          ["StartLimitBurst", "5"],
        ],
      ],
      [
        "Service",
        [
          ["Type", "simple"],
          ["User", vars.runtimeUser],
          ["Group", vars.runtimeUser],
          ["WorkingDirectory", STATE_DIR],
          "Loopback + tailnet address (host contract); the optional file holds `--host 127.0.0.1 <tailnet IPv4>`",
          "written by the listen-address unit. Without it the runtime uses runtime.json (loopback only).",
          ["EnvironmentFile", `-/run/${LISTEN_ENV_DIR}/listen.env`],
          ["ExecStart", `/usr/bin/node ${RELEASE_ENTRY} serve --config ${RUNTIME_CONFIG_PATH} $PICORTEX_LISTEN_ARGS`],
          ["Environment", "NODE_ENV=production"],
          "The real Anthropic key reaches only this process, as $CREDENTIALS_DIRECTORY/anthropic-api-key.",
          "tmpfiles creates an empty root-only file so a missing key is a clear runtime error, not a unit failure.",
          ["LoadCredential", `anthropic-api-key:${ANTHROPIC_KEY_PATH}`],
          ["StateDirectory", "picortex"],
          ["StateDirectoryMode", "0750"],
          ["Restart", "on-failure"],
          ["RestartSec", "2s"],
          ["TimeoutStopSec", "30s"],
          "--- Sandbox. It must leave sudo working: see templates/render-units.ts and docs/workspace-stack.md.",
          "No option implying NoNewPrivileges may be added here (sudo would fail with",
          '"effective uid is not 0, is sudo installed setuid root?").',
          ["NoNewPrivileges", "no"],
          "Read-only OS; writable: /etc for useradd/userdel and the uid record (both by the chat-user",
          "helper, run through sudo), the chats root, the state dir.",
          ["ProtectSystem", "strict"],
          ["ReadWritePaths", `/etc ${vars.chatsRoot} ${CHAT_USER_STATE_DIR} -/var/mail -/var/log/lastlog -/var/log/faillog`],
          ["ProtectHome", "yes"],
          ["PrivateTmp", "yes"],
          ["PrivateMounts", "yes"],
          ["ProtectControlGroups", "yes"],
          ["ProtectProc", "invisible"],
          ["KeyringMode", "private"],
          ["RemoveIPC", "yes"],
          ["UMask", "0027"],
          "Devices: the standard pseudo devices plus ptys for the portal's tmux/node-pty.",
          ["DevicePolicy", "closed"],
          ["DeviceAllow", "/dev/ptmx rw"],
          ["DeviceAllow", "char-pts rw"],
          ["DeviceAllow", "/dev/tty rw"],
          "Only what sudo and the user-management tools need, checked by a real setpriv test.",
          ["CapabilityBoundingSet", RUNTIME_CAPABILITY_BOUNDING_SET.join(" ")],
          ["AmbientCapabilities", ""],
        ],
      ],
      ["Install", [["WantedBy", "multi-user.target"]]],
    ],
    ["picortex-runtime.service: rendered by templates/render-units.ts; edit the renderer, not this file."],
  );
  return { name: RUNTIME_UNIT, path: `/etc/systemd/system/${RUNTIME_UNIT}`, content };
}

export function renderListenAddressUnit(): RenderedUnit {
  const content = unitFile(
    [
      [
        "Unit",
        [
          ["Description", "picortex: find this node's tailnet address for the runtime to bind"],
          ["After", "tailscaled.service"],
          ["Wants", "tailscaled.service"],
          ["Before", RUNTIME_UNIT],
        ],
      ],
      [
        "Service",
        [
          ["Type", "oneshot"],
          "Keeps /run/picortex-listen (and listen.env) while active.",
          ["RemainAfterExit", "yes"],
          ["ExecStart", LISTEN_ADDRESS_SCRIPT_PATH],
          ["RuntimeDirectory", LISTEN_ENV_DIR],
          ["RuntimeDirectoryMode", "0755"],
          ["TimeoutStartSec", "150s"],
          "Full sandbox: it only asks tailscaled (unix socket) for an address and writes one file.",
          ["DynamicUser", "yes"],
          ["CapabilityBoundingSet", ""],
          ["AmbientCapabilities", ""],
          ["NoNewPrivileges", "yes"],
          ["PrivateNetwork", "yes"],
          ["RestrictAddressFamilies", "AF_UNIX"],
          ["IPAddressDeny", "any"],
          ["PrivateDevices", "yes"],
          ["PrivateUsers", "yes"],
          ["ProtectHome", "yes"],
          ["ProtectSystem", "strict"],
          ["ProtectProc", "invisible"],
          ["ProcSubset", "pid"],
          ["ProtectClock", "yes"],
          ["ProtectHostname", "yes"],
          ["ProtectKernelLogs", "yes"],
          ["ProtectKernelModules", "yes"],
          ["ProtectKernelTunables", "yes"],
          ["ProtectControlGroups", "yes"],
          ["RestrictNamespaces", "yes"],
          ["RestrictRealtime", "yes"],
          ["RestrictSUIDSGID", "yes"],
          ["LockPersonality", "yes"],
          ["MemoryDenyWriteExecute", "yes"],
          ["SystemCallArchitectures", "native"],
          ["SystemCallFilter", "@system-service"],
          ["SystemCallFilter", "~@privileged @resources"],
          ["UMask", "0022"],
        ],
      ],
      ["Install", [["WantedBy", "multi-user.target"]]],
    ],
    ["picortex-listen-address.service: rendered by templates/render-units.ts; edit the renderer, not this file."],
  );
  return { name: LISTEN_ADDRESS_UNIT, path: `/etc/systemd/system/${LISTEN_ADDRESS_UNIT}`, content };
}
