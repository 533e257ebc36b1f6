/**
 * Metadata guard (production): only root may reach the cloud metadata service at
 * 169.254.169.254. Hetzner serves this server's user_data there to any local process;
 * chat users run arbitrary code (Claude Code tools), and neither they nor the runtime
 * need it. cloud-init and tailscaled run as root and are unaffected.
 * Checked with `nft -c` and run for real in a network namespace (tests/infra).
 */
import { BIN, METADATA_GUARD_NFT_PATH, METADATA_GUARD_UNIT, SYSTEMD_UNIT_DIR } from "../agent-runtime/host/contract.js";

export const METADATA_GUARD_TABLE = "picortex_metadata_guard";
export const METADATA_ADDRESS = "169.254.169.254";

export function renderMetadataGuardRules(): string {
  return [
    `#!${BIN.nft} -f`,
    "# picortex: only root may reach the cloud metadata service (it serves user_data).",
    "# From templates/render-metadata-guard.ts. Declare + delete + define: reloads are idempotent.",
    `table inet ${METADATA_GUARD_TABLE}`,
    `delete table inet ${METADATA_GUARD_TABLE}`,
    `table inet ${METADATA_GUARD_TABLE} {`,
    "  chain output {",
    "    type filter hook output priority filter; policy accept;",
    `    ip daddr ${METADATA_ADDRESS} meta skuid != 0 counter reject`,
    "  }",
    "}",
    "",
  ].join("\n");
}

export function renderMetadataGuardUnit(): { name: string; path: string; content: string } {
  const content = [
    `# ${METADATA_GUARD_UNIT}: rendered by templates/render-metadata-guard.ts; edit the renderer, not this file.`,
    "",
    "[Unit]",
    "Description=picortex: only root may reach the cloud metadata service",
    "Wants=network-pre.target",
    "Before=network-pre.target picortex-runtime.service",
    "DefaultDependencies=no",
    "After=local-fs.target",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    `ExecStart=${BIN.nft} -f ${METADATA_GUARD_NFT_PATH}`,
    `ExecStop=${BIN.nft} delete table inet ${METADATA_GUARD_TABLE}`,
    "# Root with CAP_NET_ADMIN only; everything else locked down.",
    "CapabilityBoundingSet=CAP_NET_ADMIN",
    "NoNewPrivileges=yes",
    "RestrictAddressFamilies=AF_NETLINK AF_UNIX",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "ProtectProc=invisible",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectKernelLogs=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelTunables=yes",
    "ProtectControlGroups=yes",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "UMask=0077",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
  return { name: METADATA_GUARD_UNIT, path: `${SYSTEMD_UNIT_DIR}/${METADATA_GUARD_UNIT}`, content };
}
