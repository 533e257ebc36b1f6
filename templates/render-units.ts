/**
 * systemd units for the host. Checked in tests with `systemd-analyze verify` and scored
 * with `systemd-analyze security --offline=true` against the thresholds below.
 *
 * Design (see docs/workspace-stack.md, "Runtime sandbox"): the runtime MUST be able to
 * run sudo (host contract: chat users are managed with `sudo -n picortex-chat-user
 * create|delete <id>`, turns run as `sudo -u pc-<id>`, the portal's tmux as
 * `sudo -u picortex-agent`). So the runtime unit sets NoNewPrivileges=no and
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
import { systemdArgument, wrapSessionCommand } from "../agent-runtime/portal/session-command.js";
import {
  AGENT_HOME,
  AGENT_RUNTIME_DIR,
  AGENT_TMUX_SOCKET,
  AGENT_UNIT,
  AGENT_USER,
  ANTHROPIC_KEY_PATH,
  BRIDGE_CREDENTIAL,
  BRIDGE_CREDENTIALS_DIR,
  BIN,
  CHAT_USER_STATE_DIR,
  LISTEN_ADDRESS_SCRIPT_PATH,
  LISTEN_ADDRESS_UNIT,
  LISTEN_ENV_DIR,
  LISTEN_ENV_PATH,
  METADATA_GUARD_UNIT,
  RELEASE_ENTRY,
  RUNTIME_CONFIG_PATH,
  RUNTIME_SOCKET_UNIT,
  RUNTIME_UNIT,
  STATE_DIR,
  SYSTEMD_UNIT_DIR,
  TMUX_PATH,
} from "../agent-runtime/host/contract.js";
import { AGENT_BRAIN_HEADERS_CREDENTIAL, AGENT_BRAIN_HEADERS_PATH, AGENT_TOKEN_CREDENTIAL, AGENT_TOKEN_PATH, agentClaudeCommand, agentGatewayEnvironment } from "../agent-runtime/host/agent-key.js";

/**
 * Exposure thresholds (systemd-analyze security, 0 = locked down, 10 = unconfined).
 * The runtime is capped at 6.5 ("MEDIUM"): it keeps sudo working, so the NoNewPrivileges
 * family (≈3.2 points together) is unavailable to it by design; every other applicable
 * option is set. The helper has no such constraint and must score ≤ 2.0 ("OK").
 * Raising a threshold needs a written reason in docs/workspace-stack.md.
 */
/**
 * The runtime unit's memory limits (it holds the gateway's request bodies and every chat's
 * Claude Code process). Sized for a Hetzner CX23 (4 GB): about 1 GB stays for the OS,
 * tailscaled and the agent unit.
 */
export const RUNTIME_MEMORY_HIGH = "2560M";
export const RUNTIME_MEMORY_MAX = "3G";

export const EXPOSURE_THRESHOLDS: Record<string, number> = {
  [RUNTIME_UNIT]: 6.5,
  [LISTEN_ADDRESS_UNIT]: 2.0,
  // Root with CAP_NET_ADMIN and the host network namespace (it must filter it): ≤ 3.0.
  [METADATA_GUARD_UNIT]: 3.0,
  // The operator's agent: a general-purpose shell and Claude Code with network access
  // (JIT, so no MemoryDenyWriteExecute): everything else is locked, no capabilities.
  [AGENT_UNIT]: 2.0,
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

/**
 * The kernel, clock and personality lockdown both root-free sandboxes share (the listen
 * address helper and the portal agent), in one place so they cannot drift apart.
 */
const KERNEL_LOCKDOWN: Array<[string, string]> = [
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
];

/**
 * A unit file. The string entries are the reasons for the settings beside them: they stay
 * here, in the renderer the header names, and are not written to the host (user_data is
 * limited to 32 KiB, and a default deploy came within 1 KiB of it).
 */
function unitFile(sections: Array<[string, Array<string | [string, string]>]>, header: string[]): string {
  const out: string[] = header.map((h) => `# ${h}`.trimEnd());
  for (const [name, entries] of sections) {
    out.push("", `[${name}]`);
    for (const e of entries) if (typeof e !== "string") out.push(`${e[0]}=${e[1]}`);
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
          // After= is implied: a socket unit orders itself before the service it activates.
          ["Requires", RUNTIME_SOCKET_UNIT],
          "Nothing to run until picortex-release activates the first release.",
          ["ConditionPathExists", RELEASE_ENTRY],
          // No start limit: a runtime that keeps failing must never make the socket give up its
          // ports (service-start-limit-hit), which another account could then bind.
          ["StartLimitIntervalSec", "0"],
        ],
      ],
      [
        "Service",
        [
          ["Type", "simple"],
          ["User", vars.runtimeUser],
          ["Group", vars.runtimeUser],
          ["WorkingDirectory", STATE_DIR],
          "Names only (ports: the socket's): optional `--host 127.0.0.1 <tailnet IPv4>` from the listen-address unit.",
          ["EnvironmentFile", `-${LISTEN_ENV_PATH}`],
          ["ExecStart", `${BIN.node} ${RELEASE_ENTRY} serve --config ${RUNTIME_CONFIG_PATH} $PICORTEX_LISTEN_ARGS`],
          ["Environment", "NODE_ENV=production"],
          "The real Anthropic key reaches only this process, as $CREDENTIALS_DIRECTORY/anthropic-api-key.",
          "tmpfiles creates an empty root-only file so a missing key is a clear runtime error, not a unit failure.",
          ["LoadCredential", `anthropic-api-key:${ANTHROPIC_KEY_PATH}`],
          // The bridges' secrets, the folder whole (bridges_<file>): empty unless the stack sets them.
          ["LoadCredential", `${BRIDGE_CREDENTIAL}:${BRIDGE_CREDENTIALS_DIR}`],
          "0700: the portal's agent and the chats are other accounts and must read none of it.",
          ["StateDirectory", "picortex"],
          ["StateDirectoryMode", "0700"],
          ["Restart", "on-failure"],
          ["RestartSec", "2s"],
          "Exit 3 = state refused (missing or damaged database or token): restarting cannot fix it.",
          ["RestartPreventExitStatus", "3"],
          ["TimeoutStopSec", "30s"],
          "Runtime + chats' Claude Code; sized for a 4 GB CX23.",
          ["MemoryHigh", RUNTIME_MEMORY_HIGH],
          ["MemoryMax", RUNTIME_MEMORY_MAX],
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
  return { name: RUNTIME_UNIT, path: `${SYSTEMD_UNIT_DIR}/${RUNTIME_UNIT}`, content };
}

export interface SocketUnitVars {
  /** HostVars.runtimePort: the API (loopback and tailnet sources). */
  runtimePort: number;
  /** HostVars.gatewayPort: the key gateway (loopback sources only). */
  gatewayPort: number;
}

/**
 * The runtime's listening sockets (issue 13, port squatting), in one unit named like the
 * service: the API port, then the gateway port (systemd passes them in this order; the
 * runtime checks each one's port against its config). `ListenStream=<port>` with
 * BindIPv6Only=both is the dual-stack wildcard: one AF_INET6 socket with IPV6_V6ONLY off,
 * which covers every IPv4 and IPv6 address, bound by PID 1 without SO_REUSEPORT (off by
 * default). While it exists the kernel refuses every other bind of that port, on any
 * address and family (`[::1]`, 127.0.0.2, the tailnet IPv6 address, `0.0.0.0`), to every
 * other account; and it exists across every restart and crash of the runtime
 * (connections wait in its backlog meanwhile). The wildcard serves the ports on every
 * interface: the runtime closes connections from outside loopback and the tailnet (the
 * gateway: outside loopback) as it accepts them (agent-runtime/http/listen-fds.ts).
 *
 * ConditionPathExists: before the first release nothing may trigger the runtime (its own
 * condition would fail); the first `picortex-release activate` starts it through the
 * service's Requires=. No [Install]: the enabled service pulls it in at boot. (Kept
 * short: user_data is near its budget.)
 */
export function renderSocketUnit(vars: SocketUnitVars): RenderedUnit {
  for (const [what, port] of [["runtime", vars.runtimePort], ["gateway", vars.gatewayPort]] as const) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`socket unit: the ${what} port must be 1-65535, not ${port}`);
  }
  if (vars.runtimePort === vars.gatewayPort) throw new Error(`socket unit: the runtime and gateway ports must differ (both ${vars.runtimePort})`);
  const content = unitFile(
    [
      [
        "Unit",
        [["ConditionPathExists", RELEASE_ENTRY]],
      ],
      [
        "Socket",
        [
          ["ListenStream", String(vars.runtimePort)],
          ["ListenStream", String(vars.gatewayPort)],
          ["BindIPv6Only", "both"],
          // Nor its trigger limit: connections to a failed runtime never free the ports.
          ["TriggerLimitIntervalSec", "0"],
        ],
      ],
    ],
    [`${RUNTIME_SOCKET_UNIT}: rendered by templates/render-units.ts`],
  );
  return { name: RUNTIME_SOCKET_UNIT, path: `${SYSTEMD_UNIT_DIR}/${RUNTIME_SOCKET_UNIT}`, content };
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
          `Keeps /run/${LISTEN_ENV_DIR} (and listen.env) while active.`,
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
          ...KERNEL_LOCKDOWN,
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
  return { name: LISTEN_ADDRESS_UNIT, path: `${SYSTEMD_UNIT_DIR}/${LISTEN_ADDRESS_UNIT}`, content };
}

export interface AgentUnitVars {
  /** The session name the portal attaches to (portal.session). */
  session: string;
  /** The agent's command, e.g. the Claude Code CLI. */
  claudePath: string;
  /** The key gateway's loopback port (HostVars.gatewayPort, runtime.json turns.gatewayPort). */
  gatewayPort: number;
  /** The runtime's port (HostVars.runtimePort): the agent may never bind it. */
  runtimePort: number;
}

/**
 * The portal's agent: a tmux server (session `picortex`) running Claude Code as the
 * unprivileged `picortex-agent` account, in its own cgroup (a runtime restart no longer
 * ends it) and sandbox. No sudo (NoNewPrivileges, and no sudoers rule), no access to the
 * runtime's state (0700, another owner). The runtime attaches through
 * `sudo -n -u picortex-agent -- tmux -S <socket> …`; when the agent exits, the session
 * ends and systemd starts a fresh one.
 *
 * Its key path (host/agent-key.ts): the gateway token is a systemd credential (root's
 * file, readable in $CREDENTIALS_DIRECTORY by this unit's user only); claude runs with
 * `--settings` naming an apiKeyHelper that reads it, and ANTHROPIC_BASE_URL (the unit's
 * environment, which tmux hands to its panes) is the gateway on 127.0.0.1:<gatewayPort>.
 * The token is in no Exec line, environment variable or argv. The sandbox already allowed
 * AF_INET to any address (the agent has network access), so the gateway needs nothing new.
 */
export function renderAgentUnit(vars: AgentUnitVars): RenderedUnit {
  const claudeProblem = safePathProblem(vars.claudePath);
  if (claudeProblem) throw new Error(`agent unit: ${claudeProblem}`);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(vars.session)) throw new Error(`agent unit: invalid tmux session name ${JSON.stringify(vars.session).slice(0, 40)}`);
  const tmux = `${TMUX_PATH} -S ${AGENT_TMUX_SOCKET}`;
  const content = unitFile(
    [
      [
        "Unit",
        [
          ["Description", "picortex portal agent (tmux as its unprivileged account)"],
          ["After", "network-online.target"],
          ["Wants", "network-online.target"],
        ],
      ],
      [
        "Service",
        [
          // tmux forks its server and the client exits: the server is the main process. (The
          // agent unit's comments live here, not in the unit: user_data is near its budget.)
          ["Type", "forking"],
          ["User", AGENT_USER],
          ["Group", AGENT_USER],
          ["Environment", `HOME=${AGENT_HOME} ${agentGatewayEnvironment(vars.gatewayPort)}`],
          ["WorkingDirectory", AGENT_HOME],
          // A FAILING agent keeps its dead pane (last output and status) for the portal to show
          // and restart, instead of a restart loop (offline, claude exits at once); a clean
          // exit ends the session and Restart= starts a fresh one.
          ["ExecStart", `${tmux} new-session -d -s ${vars.session} -c ${AGENT_HOME} -- ${agentPaneCommand(vars.claudePath, vars.gatewayPort)} \\; set-option -w -t =${vars.session}: remain-on-exit failed`],
          // The agent's gateway token and its brain headers, root's files, in $CREDENTIALS_DIRECTORY for this unit's user only.
          ["LoadCredential", `${AGENT_TOKEN_CREDENTIAL}:${AGENT_TOKEN_PATH}`],
          ["LoadCredential", `${AGENT_BRAIN_HEADERS_CREDENTIAL}:${AGENT_BRAIN_HEADERS_PATH}`],
          ["ExecStop", `${tmux} kill-server`],
          ["Restart", "always"],
          ["RestartSec", "5s"],
          // The socket dir: AGENT_RUNTIME_DIR, 0700, the agent's own.
          ["RuntimeDirectory", AGENT_RUNTIME_DIR.replace(/^\/run\//, "")],
          ["RuntimeDirectoryMode", "0700"],
          ["StateDirectory", AGENT_HOME.replace(/^\/var\/lib\//, "")],
          ["StateDirectoryMode", "0700"],
          // --- Sandbox: no privilege at all (sudo cannot work here), its home the only writable place.
          ["NoNewPrivileges", "yes"],
          ["CapabilityBoundingSet", ""],
          ["AmbientCapabilities", ""],
          ["ProtectSystem", "strict"],
          ["ProtectHome", "yes"],
          ["PrivateTmp", "yes"],
          ["PrivateDevices", "yes"],
          ["ProtectProc", "invisible"],
          ...KERNEL_LOCKDOWN,
          // AF_NETLINK: getifaddrs (Node's os.networkInterfaces) needs it. AF_INET to any
          // address: the agent has network access, the gateway on 127.0.0.1 included.
          ["RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"],
          // A second layer: picortex-runtime.socket already holds both ports in PID 1 across
          // restarts, so no account can bind them (tests/runtime/port-squat.test.ts, the e2e
          // test). This one is enforced with cgroup BPF by a booted systemd (not inside the
          // nspawn test host: no BPF there).
          ["SocketBindDeny", `tcp:${vars.runtimePort}`],
          ["SocketBindDeny", `tcp:${vars.gatewayPort}`],
          ["SystemCallArchitectures", "native"],
          // A call outside the set fails with EPERM instead of killing the agent (the CLI's
          // runtime may probe newer calls, e.g. io_uring, and fall back).
          ["SystemCallFilter", "@system-service"],
          ["SystemCallErrorNumber", "EPERM"],
          ["KeyringMode", "private"],
          ["RemoveIPC", "yes"],
          ["UMask", "0077"],
        ],
      ],
      ["Install", [["WantedBy", "multi-user.target"]]],
    ],
    [`${AGENT_UNIT}: rendered by templates/render-units.ts; edit the renderer, not this file.`],
  );
  return { name: AGENT_UNIT, path: `${SYSTEMD_UNIT_DIR}/${AGENT_UNIT}`, content };
}

/** The agent's pane argv, as the portal's Restart runs it too (exit status recorded: session-command.ts). */
function agentPaneCommand(claudePath: string, gatewayPort: number): string {
  return wrapSessionCommand(TMUX_PATH, agentClaudeCommand(claudePath, gatewayPort))
    .map((a) => (/^[\w/.@:=+-]+$/.test(a) ? a : systemdArgument(a)))
    .join(" ");
}
