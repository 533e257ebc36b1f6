import { spawnSync } from "node:child_process";
import type { MachineMode } from "./machine.js";

/**
 * The end-to-end test needs root and real tools. Missing ones are a loud failure with
 * the install command, never a skip: a skipped e2e test would pass CI while proving
 * nothing about the host.
 */
const COMMON = ["mmdebstrap", "tar", "zstd", "ip", "ssh-keygen", "chroot"];
const PER_MODE: Record<MachineMode, string[]> = {
  nspawn: ["systemd-nspawn"],
  qemu: ["qemu-system-x86_64", "qemu-img", "mkfs.ext4", "debugfs", "genisoimage"],
};
const PACKAGE_OF: Record<string, string> = {
  mmdebstrap: "mmdebstrap",
  zstd: "zstd",
  ip: "iproute2",
  "ssh-keygen": "openssh-client",
  "systemd-nspawn": "systemd-container",
  "qemu-system-x86_64": "qemu-system-x86",
  "qemu-img": "qemu-utils",
  "mkfs.ext4": "e2fsprogs",
  debugfs: "e2fsprogs",
  genisoimage: "genisoimage",
};

export function requireHarness(mode: MachineMode): void {
  if (process.getuid?.() !== 0) {
    throw new Error("the e2e test boots a Debian host with systemd-nspawn/qemu and must run as root (CI: bash .ci/run)");
  }
  const missing = [...COMMON, ...PER_MODE[mode]].filter((t) => spawnSync("sh", ["-c", 'command -v "$1"', "sh", t]).status !== 0);
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((t) => PACKAGE_OF[t] ?? t))];
    throw new Error(`e2e (${mode} mode) needs ${missing.join(", ")}: apt-get install ${pkgs.join(" ")}`);
  }
}
