/**
 * renderHost: everything that lands on a workspace host, from one HostVars object.
 *
 * Pure (no Pulumi, no network): the only I/O is reading the two static scripts under
 * templates/host/, which `loadHostAssets()` does once and tests can replace. Output is
 * byte-stable for equal input. Used by WorkspaceHost (userData), `npm run render`, and
 * the e2e test, which boots `cloudConfig` with `profile: "offline-test"`.
 *
 * Example:
 *   const host = renderHost({ profile: "offline-test", adminSshPublicKey: "ssh-ed25519 AAAA…" });
 *   host.cloudConfig   // "#cloud-config\n…" (NoCloud user-data)
 *   host.files         // [{ path: "/etc/sudoers.d/picortex", mode: "0440", owner: "root:root", … }, …]
 */
import { readFileSync } from "node:fs";
import { parseHostVars, type HostVars, type HostVarsInput } from "./host-vars.js";
import type { HostFile } from "./host-file.js";
import { renderSudoers } from "./render-sudoers.js";
import { renderAgentUnit, renderRuntimeUnit, renderListenAddressUnit, renderSocketUnit } from "./render-units.js";
import { renderRuntimeConfig } from "./render-runtime-config.js";
import { renderSshdConfig } from "./render-sshd.js";
import { renderTmpfiles } from "./render-tmpfiles.js";
import { renderFirewall, type FirewallRule } from "./render-firewall.js";
import {
  NODESOURCE_KEY_FINGERPRINT,
  TAILSCALE_KEY_FINGERPRINT,
  VERIFY_KEY_SCRIPT,
  NODESOURCE_KEY_URL,
  renderNodesourceSource,
  renderTailscaleSource,
  tailscaleKeyUrl,
} from "./render-apt-sources.js";
import { renderCloudConfig, type CloudConfigUser } from "./render-cloud-config.js";
import {
  AGENT_HOME,
  AGENT_SESSION,
  AGENT_UNIT,
  AGENT_USER,
  APT_STAGING_DIR,
  BUILD_USER,
  CHAT_USER_HELPER_PATH,
  CHAT_USER_STATE_DIR,
  DATA_MOUNT,
  LISTEN_ADDRESS_SCRIPT_PATH,
  LISTEN_ADDRESS_UNIT,
  LOGIN_SHELL,
  METADATA_GUARD_NFT_PATH,
  METADATA_GUARD_UNIT,
  NODESOURCE_KEYRING,
  NOLOGIN_SHELL,
  RELEASE_HELPER_PATH,
  RUNTIME_CONFIG_PATH,
  RUNTIME_UNIT,
  SRV_DIR,
  SSHD_DROPIN_PATH,
  STATE_DIR,
  SUDOERS_DROPIN_PATH,
  TAILSCALE_AUTH_KEY_PATH,
  TAILSCALE_KEYRING,
  TMPFILES_PATH,
} from "../agent-runtime/host/contract.js";
import { renderChatUserHelper } from "./render-chat-user-helper.js";
import { stripShellComments } from "./shell-script.js";

/** /usr/local/sbin/picortex-release as installed: the script without its comments. */
export function renderReleaseHelper(script: string = loadHostAssets().releaseScript): string {
  return stripShellComments(script, "templates/host/picortex-release.sh");
}
import { renderMetadataGuardRules, renderMetadataGuardUnit } from "./render-metadata-guard.js";

export type { HostVars, HostVarsInput } from "./host-vars.js";
export type { HostFile } from "./host-file.js";
export type { FirewallRule } from "./render-firewall.js";

/**
 * Hetzner's user_data limit, and the budget we hold ourselves to: 2 KiB under it, room for
 * a user's own additions. (Raised from 28 KiB for the agent unit's key path and bind limits,
 * then from 29 KiB for the agent's brain credential and the bridges' secrets.)
 */
export const HETZNER_USER_DATA_LIMIT = 32 * 1024;
export const USER_DATA_BUDGET = 30 * 1024;

export interface HostAssets {
  /** templates/host/picortex-release.sh (deploy helper, installed root 0755). */
  releaseScript: string;
  /** templates/host/picortex-chat-user.sh (chat user helper template, rendered then installed root 0755). */
  chatUserHelperTemplate: string;
  /** templates/host/listen-address.sh. */
  listenAddressScript: string;
}

export function loadHostAssets(): HostAssets {
  const read = (name: string) => readFileSync(new URL(`./host/${name}`, import.meta.url), "utf8");
  return {
    releaseScript: read("picortex-release.sh"),
    chatUserHelperTemplate: read("picortex-chat-user.sh"),
    listenAddressScript: read("listen-address.sh"),
  };
}

export interface RenderedHost {
  /** The parsed variables (defaults applied) the output was rendered from. */
  vars: HostVars;
  /** Full `#cloud-config` text: Hetzner userData, or NoCloud user-data for the e2e test. */
  cloudConfig: string;
  /** Every file cloud-init writes, in write order; `secret` ones hold the Tailscale key. */
  files: HostFile[];
  /** Hetzner firewall rules (inbound only; empty = nothing inbound). */
  firewallRules: FirewallRule[];
  /** Loud warnings for the operator (e.g. SSH open to the internet). */
  warnings: string[];
  /** Units the host has, for checks (`systemctl is-enabled`…). */
  units: string[];
}

const BASE_PACKAGES = ["sudo", "tmux", "curl", "ca-certificates", "gnupg", "git", "build-essential", "python3", "nftables", "unattended-upgrades"];
/** What the first runcmd steps need before anything else is installed (the packages module). */
const BOOTSTRAP_PACKAGES = ["curl", "ca-certificates", "gnupg"];

/** The device path Hetzner gives an attached volume. */
export const volumeDevice = (volumeId: string | number): string => `/dev/disk/by-id/scsi-0HC_Volume_${volumeId}`;

/**
 * Where the data volume is mounted; /srv/picortex, /var/lib/picortex and the chat-user
 * helper's uid record (root 0700, by tmpfiles) are bind mounts from it: the record must
 * survive a server replacement with the chat homes, or old uids would be handed out again.
 */
export const DATA_BINDS = [
  ["srv", SRV_DIR],
  ["lib", STATE_DIR],
  ["chat-users", CHAT_USER_STATE_DIR],
] as const;

/** Waits up to 5 minutes for "$1" to appear (the volume is attached just after the server exists). */
export const WAIT_FOR_DEVICE_SCRIPT = 'i=0; until [ -b "$1" ]; do i=$((i + 1)); [ "$i" -gt 150 ] && { echo "volume $1 not attached after 300 s" >&2; exit 1; }; sleep 2; done';

/**
 * Mounts the data volume ("$1", ext4) at $DATA_MOUNT and bind-mounts each directory from it,
 * through /etc/fstab (so reboots mount them too; nofail keeps a missing volume from
 * blocking boot). Idempotent: safe to run again. Fixed text; the device arrives as "$1".
 */
export const MOUNT_DATA_SCRIPT = [
  "set -eu",
  'dev="$1"',
  `m=${DATA_MOUNT}`,
  'mkdir -p "$m"',
  'grep -q "^[^#]* $m " /etc/fstab || echo "$dev $m ext4 discard,nofail,defaults 0 2" >> /etc/fstab',
  'mountpoint -q "$m" || mount "$m"',
  `for pair in ${DATA_BINDS.map(([a, b]) => `${a}:${b}`).join(" ")}; do`,
  '  src="$m/${pair%%:*}"; dst="${pair#*:}"',
  '  mkdir -p "$src" "$dst"',
  '  grep -q "^[^#]* $dst " /etc/fstab || echo "$src $dst none bind,nofail,x-systemd.requires-mounts-for=$m 0 0" >> /etc/fstab',
  '  mountpoint -q "$dst" || mount "$dst"',
  "done",
].join("\n");

/** Runs "$@" unless this node is already on the tailnet (`tailscale status` succeeds only when logged in and running). */
export const JOIN_ONCE_SCRIPT = 'if tailscale status >/dev/null 2>&1; then echo "already on the tailnet" >&2; else exec "$@"; fi';

/** Runs "$@" up to 5 times, 10 s, 20 s, … apart. Fixed text: the command arrives as arguments. */
export const RETRY_SCRIPT = 'n=1; until "$@"; do [ "$n" -ge 5 ] && exit 1; sleep $((n * 10)); n=$((n + 1)); done';

export interface RenderHostOptions {
  /**
   * false: no gzip in the output (files as literal blocks). The bytes then depend on the
   * input only, not on this machine's zlib: what the replacement hash is computed from.
   * Such output is not for Hetzner (it may exceed the user_data limit). Default true.
   */
  compressFiles?: boolean;
}

export function renderHost(input: HostVarsInput, assets: HostAssets = loadHostAssets(), options: RenderHostOptions = {}): RenderedHost {
  const vars = parseHostVars(input);
  const production = vars.profile === "production";
  const firewall = renderFirewall(vars.firewall);

  const runtimeUnit = renderRuntimeUnit({ runtimeUser: vars.runtimeUser, chatsRoot: vars.chatsRoot, tailnetListen: production });
  const socketUnit = renderSocketUnit({ runtimePort: vars.runtimePort, gatewayPort: vars.gatewayPort });
  const listenUnit = renderListenAddressUnit();
  const agentUnit = renderAgentUnit({ session: AGENT_SESSION, claudePath: vars.claudePath, gatewayPort: vars.gatewayPort, runtimePort: vars.runtimePort });
  const guardUnit = renderMetadataGuardUnit();
  const rootFile = (path: string, content: string, mode = "0644"): HostFile => ({ path, content, mode, owner: "root:root" });

  const files: HostFile[] = [
    rootFile(
      SUDOERS_DROPIN_PATH,
      renderSudoers({
        runtimeUser: vars.runtimeUser,
        adminUser: vars.adminUser,
        opsGroup: vars.opsGroup,
        chatGroup: vars.chatGroup,
        chatsRoot: vars.chatsRoot,
        claudePath: vars.claudePath,
      }),
      "0440",
    ),
    rootFile(SSHD_DROPIN_PATH, renderSshdConfig({ adminUser: vars.adminUser })),
    rootFile(TMPFILES_PATH, renderTmpfiles({ chatsRoot: vars.chatsRoot, adminUser: vars.adminUser })),
    rootFile(RELEASE_HELPER_PATH, renderReleaseHelper(assets.releaseScript), "0755"),
    rootFile(
      CHAT_USER_HELPER_PATH,
      renderChatUserHelper({ chatsRoot: vars.chatsRoot, chatGroup: vars.chatGroup }, assets.chatUserHelperTemplate),
      "0755",
    ),
    rootFile(runtimeUnit.path, runtimeUnit.content),
    rootFile(socketUnit.path, socketUnit.content),
    rootFile(agentUnit.path, agentUnit.content),
    {
      path: RUNTIME_CONFIG_PATH,
      content: renderRuntimeConfig({
        runtimePort: vars.runtimePort,
        gatewayPort: vars.gatewayPort,
        chatsRoot: vars.chatsRoot,
        claudePath: vars.claudePath,
        hostname: vars.hostname,
      }),
      mode: "0640",
      // Readable by the runtime, writable only by root.
      owner: `root:${vars.runtimeUser}`,
    },
  ];
  if (production && vars.tailscale) {
    files.push(
      rootFile(LISTEN_ADDRESS_SCRIPT_PATH, stripShellComments(assets.listenAddressScript, "templates/host/listen-address.sh"), "0755"),
      rootFile(listenUnit.path, listenUnit.content),
      rootFile(METADATA_GUARD_NFT_PATH, renderMetadataGuardRules()),
      rootFile(guardUnit.path, guardUnit.content),
      rootFile(`${APT_STAGING_DIR}/nodesource.sources`, renderNodesourceSource(vars.nodeMajor)),
      rootFile(`${APT_STAGING_DIR}/tailscale.sources`, renderTailscaleSource(vars.image)),
      { ...rootFile(TAILSCALE_AUTH_KEY_PATH, vars.tailscale.authKey + "\n", "0600"), secret: true },
    );
  }

  const users: CloudConfigUser[] = [
    {
      name: vars.adminUser,
      gecos: "picortex deploy admin (no general sudo)",
      shell: LOGIN_SHELL,
      groups: vars.opsGroup,
      lock_passwd: true,
      ssh_authorized_keys: [vars.adminSshPublicKey.trim()],
    },
    {
      name: vars.runtimeUser,
      gecos: "picortex runtime service",
      shell: NOLOGIN_SHELL,
      groups: vars.opsGroup,
      lock_passwd: true,
      system: true,
      homedir: STATE_DIR,
      no_create_home: true,
    },
    {
      // The portal's agent (tmux + Claude Code): no sudo rule, no ops group, its own home.
      name: AGENT_USER,
      gecos: "picortex portal agent (no sudo)",
      shell: LOGIN_SHELL,
      lock_passwd: true,
      system: true,
      homedir: AGENT_HOME,
      no_create_home: true,
    },
    {
      // picortex-release builds native modules as this account and nothing else runs as
      // it, so no other principal can race root's chown of the staging tree.
      name: BUILD_USER,
      gecos: "picortex release builds (no login, no sudo)",
      shell: NOLOGIN_SHELL,
      lock_passwd: true,
      system: true,
      homedir: "/nonexistent",
      no_create_home: true,
    },
  ];

  const curl = (output: string, url: string) => ["curl", "--fail", "--silent", "--show-error", "--location", "--retry", "5", "--retry-all-errors", "--output", output, url];
  // Network steps are retried with a growing pause (a fixed shell text; the command is
  // passed as arguments, never spliced in), and apt waits for the dpkg lock that
  // unattended-upgrades often holds on first boot.
  const retry = ["sh", "-c", RETRY_SCRIPT, "retry"];
  const apt = (...args: string[]) => [...retry, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-o", "Acquire::Retries=5", "-o", "DPkg::Lock::Timeout=600", ...args];
  const runcmd: Array<string[] | string> = [
    // A fixed statement, not input: stop at the first failing step so `cloud-init status` reports the error.
    "set -eu",
    // The data volume first: everything below writes into /srv/picortex and /var/lib/picortex.
    ...(vars.dataVolume
      ? [
          ["sh", "-c", WAIT_FOR_DEVICE_SCRIPT, "wait-for-volume", vars.dataVolume.device],
          ["sh", "-c", MOUNT_DATA_SCRIPT, "mount-data", vars.dataVolume.device],
        ]
      : []),
    ["systemd-tmpfiles", "--create", TMPFILES_PATH],
    ["systemctl", "daemon-reload"],
    ["systemctl", "try-reload-or-restart", "ssh.service"],
  ];
  if (production && vars.tailscale) {
    runcmd.push(
      // 1. Join the tailnet first: the host is reachable over the tailnet (and the deploy
      //    can wait for it) before the long installs, and the one-time key is spent at once.
      curl(TAILSCALE_KEYRING, tailscaleKeyUrl(vars.image)),
      // Trusted only if it is the one pinned key (not whatever the download returned).
      ["sh", "-c", VERIFY_KEY_SCRIPT, "verify-key", TAILSCALE_KEYRING, TAILSCALE_KEY_FINGERPRINT],
      ["install", "-m", "0644", "-t", "/etc/apt/sources.list.d", `${APT_STAGING_DIR}/tailscale.sources`],
      apt("update"),
      apt("install", "-y", "--no-install-recommends", "tailscale"),
      [
        // Skipped when already joined, so the whole runcmd script can be run again after a
        // failure further down (the key file is gone by then, and the node is up).
        "sh",
        "-c",
        JOIN_ONCE_SCRIPT,
        "join",
        "tailscale",
        "up",
        // `file:` keeps the key out of the process list; the file is removed right after.
        `--auth-key=file:${TAILSCALE_AUTH_KEY_PATH}`,
        `--hostname=${vars.hostname}`,
        `--advertise-tags=${vars.tailscale.tags.join(",")}`,
        ...(vars.tailscale.ssh ? ["--ssh"] : []),
      ],
      ["rm", "-f", TAILSCALE_AUTH_KEY_PATH],
      // 2. Then everything else.
      curl(NODESOURCE_KEYRING, NODESOURCE_KEY_URL),
      ["sh", "-c", VERIFY_KEY_SCRIPT, "verify-key", NODESOURCE_KEYRING, NODESOURCE_KEY_FINGERPRINT],
      ["install", "-m", "0644", "-t", "/etc/apt/sources.list.d", `${APT_STAGING_DIR}/nodesource.sources`],
      apt("update"),
      apt("install", "-y", "--no-install-recommends", "nodejs", ...BASE_PACKAGES),
      [...retry, "npm", "install", "--global", "--prefix", "/usr/local", "--no-fund", "--no-audit", `@anthropic-ai/claude-code@${vars.claudeCodeVersion}`],
      ["systemctl", "enable", "--now", LISTEN_ADDRESS_UNIT],
      // nftables comes with the base packages, so the guard is production-only.
      ["systemctl", "enable", "--now", METADATA_GUARD_UNIT],
    );
  }
  // Enabled now, started by the first `picortex-release activate` (ConditionPathExists until then).
  runcmd.push(["systemctl", "enable", RUNTIME_UNIT]);
  // The agent's session lives in its own unit (so a runtime restart never ends it).
  runcmd.push(["systemctl", "enable", "--now", "--no-block", AGENT_UNIT]);

  const skipped = production
    ? "production profile: installs Tailscale and joins the tailnet first, then Node.js LTS,\nthe base packages and Claude Code; network steps are retried."
    : "offline-test profile: SKIPPED because they need the internet: the packages module\n(and so the nftables metadata guard), NodeSource Node.js, Tailscale install and\n`tailscale up`, npm install of Claude Code.\nThe test image must already contain node, tmux, sudo and the claude binary.";

  const cloudConfig = renderCloudConfig({
    headerComment: [
      `picortex workspace host (profile: ${vars.profile}, image: ${vars.image}).`,
      "Rendered by templates/render-host.ts (byte-stable): edit the renderer, not this file.",
    ].join("\n"),
    hostname: vars.hostname,
    groups: [vars.opsGroup, vars.chatGroup],
    users,
    sshKeys: vars.sshHostKey ? { ed25519_private: vars.sshHostKey.privateKey, ed25519_public: vars.sshHostKey.publicKey.trim() } : undefined,
    // Only what the first steps need: the rest is installed after the tailnet join.
    packages: production ? BOOTSTRAP_PACKAGES : undefined,
    files,
    runcmd,
    runcmdComment: skipped,
    compress: options.compressFiles ?? true,
  });

  if (options.compressFiles !== false && Buffer.byteLength(cloudConfig) > HETZNER_USER_DATA_LIMIT) {
    throw new Error(`cloud-config is ${Buffer.byteLength(cloudConfig)} bytes, over Hetzner's ${HETZNER_USER_DATA_LIMIT}-byte user_data limit`);
  }

  return {
    vars,
    cloudConfig,
    files,
    firewallRules: firewall.rules,
    warnings: firewall.warnings,
    units: production ? [RUNTIME_UNIT, AGENT_UNIT, LISTEN_ADDRESS_UNIT, METADATA_GUARD_UNIT] : [RUNTIME_UNIT, AGENT_UNIT],
  };
}
