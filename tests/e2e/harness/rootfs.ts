import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync, unlinkSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { progress } from "./log.js";
import { run } from "./run.js";
import { mountsUnder } from "./leftovers.js";

/**
 * The Debian 12 root filesystem the end-to-end test boots. Built once from Debian
 * packages with mmdebstrap and cached as `<cacheDir>/<key>.tar.zst`, where the key is a
 * hash of the package list and of this file, so a change to either rebuilds it and
 * everything else restores in seconds.
 */

export const SUITE = "bookworm";
export const MIRROR = "http://deb.debian.org/debian";

/** What environment-notes.md measured as the minimum for a clean `cloud-init status`. */
const BASE_PACKAGES = [
  "linux-image-amd64", // qemu mode boots its kernel and initrd
  "systemd-sysv",
  "udev",
  "dbus",
  "kmod",
  "e2fsprogs", // cloud-init resizefs errors without it
  "iproute2",
  "ifupdown", // renders the NoCloud network-config
  "isc-dhcp-client",
  "netbase",
  "procps",
  "libnss-myhostname", // sudo cannot resolve the host name without it
  "locales",
  "cloud-init",
  "openssh-server",
  "sudo",
  "tmux",
  "ca-certificates",
  "python3",
  // qemu mode's root console (guest-exec over virtio-serial), the VM's stand-in for the
  // Hetzner console; it only starts when the VM has the agent's port, so nspawn never runs it.
  "qemu-guest-agent",
];

/**
 * What a production host installs from Debian in cloud-init (`packages:`), preinstalled
 * here because the guest has no internet; cloud-init's own apt step then finds them
 * installed. The toolchain lets `picortex-release install` rebuild native modules.
 */
const HOST_PACKAGES = [
  "g++", "make", "git", "curl", "psmisc", "less", "jq", "acl",
  // The production cloud-config's `packages:` beyond the above, which the engine lane's
  // booted servers install (tests/engine/emulators): in the one image, so a cold run
  // builds one image, not two.
  "build-essential", "gnupg", "nftables", "unattended-upgrades",
];

export function packageList(extra: readonly string[] = []): string[] {
  return [...new Set([...BASE_PACKAGES, ...HOST_PACKAGES, ...extra])].sort();
}

export function cacheDir(): string {
  return process.env.PICORTEX_E2E_CACHE ?? "/var/cache/picortex-e2e";
}

/** The mmdebstrap invocation (part of the recipe, so part of the key). */
function mmdebstrapArgv(packages: readonly string[], tree: string): string[] {
  return ["mmdebstrap", "--variant=apt", "--mode=root", "--format=directory", `--include=${packages.join(",")}`, SUITE, tree, MIRROR];
}

/**
 * Content key: the package list and the build recipe (the mmdebstrap argv and the
 * customization step's source), so editing either rebuilds, and editing the cache or
 * logging code around them does not.
 */
export function rootfsKey(packages: readonly string[]): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({ argv: mmdebstrapArgv(packages, "<tree>"), customize: customize.toString() }));
  return `debian12-${h.digest("hex").slice(0, 16)}`;
}

export interface RootfsImage {
  key: string;
  tarball: string;
  /** True when this call built the image (cold cache). */
  built: boolean;
  seconds: number;
}

/** The fixes cloud-init needs (environment-notes.md), applied inside the built tree. */
async function customize(root: string): Promise<void> {
  writeFileSync(join(root, "etc/locale.gen"), "en_US.UTF-8 UTF-8\n");
  await run(["chroot", root, "locale-gen"], { step: "rootfs" });
  writeFileSync(join(root, "etc/default/locale"), "LANG=en_US.UTF-8\n");
  writeFileSync(
    join(root, "etc/cloud/cloud.cfg.d/90-picortex-e2e-datasource.cfg"),
    "# picortex e2e image: seed comes from the NoCloud directory or cidata ISO only\ndatasource_list: [ NoCloud, None ]\n",
  );
  // First boot must make its own identity, as a fresh cloud server does.
  for (const f of readdirSync(join(root, "etc/ssh"))) if (f.startsWith("ssh_host_")) unlinkSync(join(root, "etc/ssh", f));
  writeFileSync(join(root, "etc/machine-id"), "");
  rmSync(join(root, "var/lib/dbus/machine-id"), { force: true });
  // Keep apt's cache small in the tarball; the guest has no network to refill it anyway.
  rmSync(join(root, "var/cache/apt/archives"), { recursive: true, force: true });
  mkdirSync(join(root, "var/cache/apt/archives/partial"), { recursive: true });
}

/** Returns the cached image for these packages, building it on a cold cache. */
export async function ensureRootfs(extraPackages: readonly string[] = []): Promise<RootfsImage> {
  const t0 = Date.now();
  const packages = packageList(extraPackages);
  const key = rootfsKey(packages);
  const dir = cacheDir();
  // Root-only: the image and its build tree are nobody else's business, and the host
  // tests that walk the filesystem as chat users must never descend into a build.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const tarball = join(dir, `${key}.tar.zst`);
  if (existsSync(tarball)) {
    progress("rootfs", `cache hit ${tarball} (${(statSync(tarball).size / 2 ** 20).toFixed(0)} MiB)`);
    return { key, tarball, built: false, seconds: (Date.now() - t0) / 1000 };
  }
  progress("rootfs", `cache miss: building ${key} with mmdebstrap (${packages.length} packages; about 2-5 minutes)`);
  // Per-process names: two runs on a cold cache both build, and the last rename wins.
  const tree = join(dir, `${key}.building-${process.pid}`);
  rmSync(tree, { recursive: true, force: true });
  // In a private mount namespace: the chroot's /proc, /sys and /dev mounts exist only for
  // mmdebstrap and vanish with it, so no other process on the machine (another test
  // walking /var, say) can read through them or hold them busy.
  await run(["unshare", "--mount", "--propagation", "private", "--", ...mmdebstrapArgv(packages, tree)], { step: "mmdebstrap" });
  // mmdebstrap only warns when it cannot unmount the chroot's /proc ("target is busy",
  // seen on a loaded machine); a mount left there would be archived and left behind.
  for (const m of mountsUnder(tree).reverse()) {
    progress("rootfs", `unmounting leftover ${m.mountPoint}`);
    await run(["umount", "--lazy", m.mountPoint]);
  }
  await customize(tree);
  progress("rootfs", "compressing tree into tar.zst");
  const partial = `${tarball}.partial-${process.pid}`;
  await run(["tar", "--zstd", "--numeric-owner", "--xattrs", "--acls", "--one-file-system", "-C", tree, "-cf", partial, "."], { step: "rootfs" });
  renameSync(partial, tarball); // atomic: a crashed build never leaves a truncated cache entry
  rmSync(tree, { recursive: true, force: true });
  progress("rootfs", `built ${tarball} (${(statSync(tarball).size / 2 ** 20).toFixed(0)} MiB)`);
  return { key, tarball, built: true, seconds: (Date.now() - t0) / 1000 };
}

/** Extracts the image into `target` (which must not exist); returns the seconds it took. */
export async function restoreRootfs(image: RootfsImage, target: string): Promise<number> {
  const t0 = Date.now();
  mkdirSync(target, { recursive: true });
  await run(["tar", "--zstd", "--numeric-owner", "--xattrs", "--acls", "-C", target, "-xpf", image.tarball], { step: "restore" });
  const s = (Date.now() - t0) / 1000;
  progress("restore", `restored ${image.key} into ${target} in ${s.toFixed(1)}s`);
  return s;
}
