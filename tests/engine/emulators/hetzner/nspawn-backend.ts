/**
 * The `nspawn` backend of the Hetzner emulator: every server is a real Debian 12 host,
 * booted with systemd-nspawn by the e2e harness (tests/e2e/harness), with the request's
 * user_data as its NoCloud seed.
 *
 * - Image: ensureRootfs(EMULATOR_IMAGE_PACKAGES) (the e2e image plus what the production
 *   cloud-config's `packages:` list needs), restored per server, plus the offline
 *   stand-ins of ./host-standins.ts. Node and the Claude CLI are provisioned read-only as
 *   in the e2e test. Callers hold /tmp/picortex-system.lock while building/booting.
 * - Address: each server gets an nspawn slot (its own veth /30); public_net.ipv4.ip is the
 *   guest end, reachable from this machine. meta-data's instance-id is per server, so a
 *   poweron boots the same disk without re-running cloud-init; a rebuild restores a fresh
 *   disk with a new instance-id.
 * - Tailnet: the Tailscale emulator also listens on the veth's host address; the stand-in
 *   `tailscale up` joins through it; the device's 100.64/10 address is routed here via
 *   the guest (`ip route replace <addr>/32 via <guest> dev ve-…`), again after every boot.
 * - Volumes: a sparse file per volume (`mkfs.<format>` on create when `format` is given,
 *   as Hetzner does), attached to a loop device; attaching makes the block device node
 *   `/dev/disk/by-id/scsi-0HC_Volume_<id>` inside the running guest (mknod through
 *   nsenter: nspawn has no hotplug); a volume attached when the server boots is
 *   bind-mounted at that path by nspawn from the start, so systemd's fstab mounts find it
 *   (device units do not exist in a container, so nothing waits for it). It is a device
 *   node, not the udev symlink a real host has; the path is the same.
 * - shutdown and poweroff both stop the guest in order (systemd shutdown); the disk stays.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { NspawnMachine } from "../../../e2e/harness/nspawn.js";
import { ensureRootfs, restoreRootfs, type RootfsImage } from "../../../e2e/harness/rootfs.js";
import { claudeBinary } from "../../../e2e/harness/boot.js";
import { requireHarness } from "../../../e2e/harness/requirements.js";
import { run } from "../../../e2e/harness/run.js";
import { progress } from "../../../e2e/harness/log.js";
import type { TailscaleEmulator } from "../tailscale/index.js";
import type { BootRequest, ServerBackend } from "./backend.js";
import { EMULATOR_IMAGE_PACKAGES, installStandins, writeEmulatorConfig } from "./host-standins.js";

interface Guest {
  serverId: number;
  slot: number;
  machine: NspawnMachine;
  dir: string;
  rootDir: string;
  restored: boolean;
  running: boolean;
  instance: number;
  joinListener?: { url: string; close(): Promise<void> };
  /** Tailnet addresses routed to this guest. */
  tailnetIps: Set<string>;
  /** Volumes bind-mounted at this boot (hot-attached ones are mknod'ed instead). */
  bound: Set<number>;
}

interface Disk {
  id: number;
  file: string;
  loop: string;
  major: number;
  minor: number;
}

export class NspawnBackend implements ServerBackend {
  readonly kind = "nspawn" as const;
  private readonly guests = new Map<number, Guest>();
  private readonly disks = new Map<number, Disk>();
  private readonly attached = new Map<number, number>(); // volume -> server
  private nextSlot = 0;
  private readonly unhook: (() => void) | undefined;

  private constructor(
    private readonly image: RootfsImage,
    /** Every server's and volume's files live under here; removed by close(). */
    readonly workDir: string,
    private readonly tailscale: TailscaleEmulator | undefined,
  ) {
    this.unhook = tailscale?.onJoin(async (device, remote) => {
      const g = [...this.guests.values()].find((x) => x.machine.sshEndpoint().host === remote);
      if (!g) return;
      const v4 = device.addresses.find((a) => !a.includes(":"));
      if (!v4) return;
      g.tailnetIps.add(v4);
      await this.route(g, v4);
    });
  }

  static async create(opts: { tailscale?: TailscaleEmulator }): Promise<NspawnBackend> {
    requireHarness("nspawn");
    const image = await ensureRootfs(EMULATOR_IMAGE_PACKAGES);
    const workDir = mkdtempSync("/var/tmp/picortex-hz-");
    return new NspawnBackend(image, workDir, opts.tailscale);
  }

  allocateAddress(serverId: number): string {
    const slot = this.nextSlot++;
    if (slot > 61) throw new Error("the nspawn backend runs at most 62 servers per emulator");
    const machine = new NspawnMachine({ slot });
    const dir = join(this.workDir, `server-${serverId}`);
    this.guests.set(serverId, { serverId, slot, machine, dir, rootDir: join(dir, "rootfs"), restored: false, running: false, instance: 0, tailnetIps: new Set(), bound: new Set() });
    return machine.sshEndpoint().host;
  }

  private guest(id: number): Guest {
    const g = this.guests.get(id);
    if (!g) throw new Error(`no machine for server ${id}`);
    return g;
  }

  private async route(g: Guest, addr: string): Promise<void> {
    if (!g.running) return;
    await run(["ip", "route", "replace", `${addr}/32`, "via", g.machine.sshEndpoint().host, "dev", g.machine.hostLink]);
  }

  private async prepareDisk(g: Guest, req: BootRequest): Promise<void> {
    // Async: a whole root filesystem takes seconds to remove, and the API must keep answering.
    await rm(g.rootDir, { recursive: true, force: true });
    mkdirSync(g.dir, { recursive: true, mode: 0o700 });
    await restoreRootfs(this.image, g.rootDir);
    installStandins(g.rootDir);
    g.instance += 1;
    const seed = join(g.dir, "seed");
    mkdirSync(seed, { recursive: true, mode: 0o700 });
    // Hetzner hands user_data over as is; an empty one is an empty user-data file.
    writeFileSync(join(seed, "user-data"), req.userData);
    writeFileSync(join(seed, "meta-data"), `instance-id: hz-${req.id}-${g.instance}\nlocal-hostname: ${req.name}\n`);
    writeFileSync(join(seed, "network-config"), g.machine.network.networkConfig);
    g.restored = true;
  }

  async start(req: BootRequest): Promise<void> {
    const g = this.guest(req.id);
    if (g.running) return;
    if (!g.restored) await this.prepareDisk(g, req);
    writeEmulatorConfig(g.rootDir, null);
    // Volumes attached before the boot are there from its first instant (bind-mounted device
    // nodes), as on a real server: systemd mounts fstab entries before anything could mknod.
    const atBoot = [...this.attached].filter(([, sid]) => sid === req.id).map(([vol]) => vol);
    g.bound = new Set(atBoot);
    try {
      await g.machine.boot({
        rootDir: g.rootDir,
        seedDir: join(g.dir, "seed"),
        workDir: g.dir,
        provisions: [
          { source: process.execPath, target: "/usr/bin/node" },
          { source: claudeBinary(), target: "/usr/local/bin/claude" },
          ...atBoot.map((vol) => ({ source: this.disks.get(vol)!.loop, target: this.devicePath(vol) })),
        ],
      });
    } catch (err) {
      // nspawn may be running even though its veth never came up: stop it, then report.
      await g.machine.powerOff().catch(() => undefined);
      throw err;
    }
    g.running = true;
    try {
      if (this.tailscale) {
        g.joinListener = await this.tailscale.listenOn(g.machine.network.bindAddress);
        writeEmulatorConfig(g.rootDir, `${g.joinListener.url}/emulator/join`);
      }
      for (const addr of g.tailnetIps) await this.route(g, addr);
    } catch (err) {
      await this.stop(req.id).catch(() => undefined);
      throw err;
    }
    progress("hetzner", `server ${req.id} (${req.name}) booting at ${g.machine.sshEndpoint().host}`);
  }

  async stop(serverId: number): Promise<void> {
    const g = this.guests.get(serverId);
    if (!g || !g.running) return;
    await g.joinListener?.close();
    g.joinListener = undefined;
    try {
      await g.machine.powerOff();
    } finally {
      g.running = false;
    }
  }

  async destroy(serverId: number): Promise<void> {
    const g = this.guests.get(serverId);
    if (!g) return;
    await this.stop(serverId);
    const left = await g.machine.leftovers();
    if (left.length > 0) throw new Error(`server ${serverId} left ${left.join("; ")}`);
    await rm(g.dir, { recursive: true, force: true });
    this.guests.delete(serverId);
    for (const [vol, sid] of this.attached) if (sid === serverId) this.attached.delete(vol);
  }

  async rebuild(req: BootRequest, wasRunning: boolean): Promise<void> {
    const g = this.guest(req.id);
    await this.stop(req.id);
    g.tailnetIps.clear();
    await this.prepareDisk(g, req);
    if (wasRunning) await this.start(req);
  }

  async createVolume(v: { id: number; sizeGb: number; format: "ext4" | "xfs" | null }): Promise<void> {
    const dir = join(this.workDir, "volumes");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, `${v.id}.img`);
    await run(["truncate", "--size", `${v.sizeGb}G`, file]);
    if (v.format === "ext4") await run(["mkfs.ext4", "-q", "-F", "-L", `vol${v.id}`, file]);
    if (v.format === "xfs") await run(["mkfs.xfs", "-q", "-f", file]);
    const loop = (await run(["losetup", "--find", "--show", file])).trim();
    const [major, minor] = (await run(["stat", "--format", "%t %T", loop])).trim().split(" ").map((h) => parseInt(h, 16)) as [number, number];
    this.disks.set(v.id, { id: v.id, file, loop, major, minor });
  }

  private devicePath(volumeId: number): string {
    return `/dev/disk/by-id/scsi-0HC_Volume_${volumeId}`;
  }

  private async plugDisk(g: Guest, volumeId: number): Promise<void> {
    const d = this.disks.get(volumeId);
    if (!d) throw new Error(`volume ${volumeId} has no disk`);
    const console = g.machine.console;
    await console(["mkdir", "-p", "/dev/disk/by-id"]);
    await console(["rm", "-f", this.devicePath(volumeId)]);
    await console(["mknod", "-m", "0660", this.devicePath(volumeId), "b", String(d.major), String(d.minor)]);
  }

  async attachVolume(volumeId: number, serverId: number, running: boolean): Promise<void> {
    this.attached.set(volumeId, serverId);
    const g = this.guests.get(serverId);
    if (running && g?.running) await this.plugDisk(g, volumeId);
  }

  async detachVolume(volumeId: number, serverId: number, running: boolean): Promise<void> {
    this.attached.delete(volumeId);
    const g = this.guests.get(serverId);
    if (running && g?.running) {
      // A volume bound at boot is a mount point in the guest: unmount it before removing.
      if (g.bound.delete(volumeId)) await g.machine.console(["umount", this.devicePath(volumeId)]).catch(() => undefined);
      await g.machine.console(["rm", "-f", this.devicePath(volumeId)]);
    }
  }

  async deleteVolume(volumeId: number): Promise<void> {
    const d = this.disks.get(volumeId);
    if (!d) return;
    await run(["losetup", "--detach", d.loop]);
    await rm(d.file, { force: true });
    this.disks.delete(volumeId);
  }

  /** Where a guest path is on this machine (tests read cloud-init's results through it). */
  guestPath(serverId: number, path: string): string | undefined {
    return this.guests.get(serverId)?.machine.guestPath(path);
  }

  /** This machine's address on the guest's link: a service bound there is reachable from that guest only. */
  hostAddressForGuest(serverId: number): string {
    return this.guest(serverId).machine.network.hostAddressForGuest;
  }

  /** The running guest's root console (nsenter), for checks a test cannot make over the API. */
  console(serverId: number): (argv: readonly string[]) => Promise<string> {
    return this.guest(serverId).machine.console;
  }

  consoleTail(serverId: number, lines = 60): string {
    return this.guests.get(serverId)?.machine.consoleTail(lines) ?? "(no such server)";
  }

  async close(): Promise<string[]> {
    this.unhook?.();
    const left: string[] = [];
    for (const id of [...this.guests.keys()]) {
      try {
        await this.destroy(id);
      } catch (err) {
        left.push((err as Error).message);
      }
    }
    for (const id of [...this.disks.keys()]) {
      try {
        await this.deleteVolume(id);
      } catch (err) {
        left.push(`volume ${id}: ${(err as Error).message}`);
      }
    }
    if (left.length === 0) await rm(this.workDir, { recursive: true, force: true });
    else if (existsSync(this.workDir)) left.push(`kept ${this.workDir}`);
    return left;
  }
}
