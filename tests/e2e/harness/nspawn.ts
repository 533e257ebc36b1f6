import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { progress } from "./log.js";
import { run } from "./run.js";
import { mountsUnder, processesUnder } from "./leftovers.js";
import type { BootSpec, Machine, MachineNetwork } from "./machine.js";

/**
 * systemd-nspawn mode: the rootfs boots with systemd as PID 1 on this machine's kernel,
 * in its own network namespace. `--network-veth` gives it one link, `host0`; the host
 * end gets a private /30 that exists only on this machine, so ssh, the fake Messages
 * API and everything else stays local.
 */
export class NspawnMachine implements Machine {
  readonly mode = "nspawn" as const;
  readonly network: MachineNetwork;
  readonly name: string;
  private readonly hostIp: string;
  private readonly guestIp: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private consolePath = "";
  private rootDir = "";

  /**
   * `slot` lets one process run several machines at once (the Hetzner emulator boots one per
   * server): each slot gets its own name and /30 in 10.213.100-149.x, apart from the
   * single-machine e2e range (10.213.200-249.x).
   */
  constructor(opts: { slot?: number } = {}) {
    const slot = opts.slot;
    if (slot !== undefined && (!Number.isInteger(slot) || slot < 0 || slot > 61)) throw new Error(`nspawn slot must be 0..61, got ${slot}`);
    // Short name: the host link is `ve-<name>` and must fit in 15 characters.
    this.name = slot === undefined ? `pce2e${process.pid % 100000}` : `pchz${process.pid % 10000}s${slot}`;
    const subnet = slot === undefined ? 8 + (process.pid % 60) * 4 : 4 + slot * 4; // network address of a /30 (multiple of 4)
    const third = slot === undefined ? 200 + (process.pid % 50) : 100 + (process.pid % 50);
    this.hostIp = `10.213.${third}.${subnet + 1}`;
    this.guestIp = `10.213.${third}.${subnet + 2}`;
    this.network = {
      bindAddress: this.hostIp,
      hostAddressForGuest: this.hostIp,
      networkConfig: [
        "version: 2",
        "ethernets:",
        "  host0:",
        `    addresses: [${this.guestIp}/30]`,
        "",
      ].join("\n"),
    };
  }

  get hostLink(): string {
    return `ve-${this.name}`;
  }

  async boot(spec: BootSpec): Promise<void> {
    this.rootDir = spec.rootDir;
    const inUse = await run(["ip", "-o", "-4", "addr", "show"]);
    if (inUse.includes(` ${this.hostIp}/`)) throw new Error(`address ${this.hostIp} is already in use on this machine`);
    const args = [
      `--directory=${spec.rootDir}`,
      `--machine=${this.name}`,
      "--private-network",
      "--network-veth",
      "--register=no",
      "--keep-unit",
      "--console=pipe",
      `--bind-ro=${spec.seedDir}:/var/lib/cloud/seed/nocloud`,
    ];
    for (const p of spec.provisions) {
      // nspawn needs the mount point to exist in the tree.
      const target = join(spec.rootDir, p.target);
      mkdirSync(dirname(target), { recursive: true });
      if (!existsSync(target)) writeFileSync(target, "");
      args.push(`--bind-ro=${p.source}:${p.target}`);
    }
    args.push("--boot");
    this.consolePath = join(spec.workDir, "console.log");
    const fd = openSync(this.consolePath, "w");
    progress("nspawn", `systemd-nspawn ${args.join(" ")}`);
    const child = spawn("systemd-nspawn", args, { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    this.child = child;
    this.exited = new Promise((resolve) => child.on("exit", () => resolve()));
    // Bring up our end of the veth once nspawn has created it.
    const until = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`systemd-nspawn exited early (${child.exitCode}):\n${this.consoleTail(40)}`);
      try {
        await run(["ip", "link", "show", "dev", this.hostLink]);
        break;
      } catch {
        if (Date.now() > until) throw new Error(`veth ${this.hostLink} did not appear:\n${this.consoleTail(40)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await run(["ip", "addr", "add", `${this.hostIp}/30`, "dev", this.hostLink]);
    await run(["ip", "link", "set", "dev", this.hostLink, "up"]);
    progress("nspawn", `booting ${this.name}; guest ${this.guestIp} via ${this.hostLink} (${this.hostIp})`);
  }

  sshEndpoint(): { host: string; port: number } {
    return { host: this.guestIp, port: 22 };
  }

  async powerOff(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    // nspawn turns SIGTERM into SIGRTMIN+3 for a booted container: systemd shuts down in order.
    child.kill("SIGTERM");
    const timedOut = await Promise.race([
      this.exited!.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), 90_000)),
    ]);
    if (timedOut) {
      progress("nspawn", "orderly shutdown took over 90s; killing the container");
      child.kill("SIGKILL");
      await this.exited;
      throw new Error(`container ${this.name} did not power off within 90s:\n${this.consoleTail(40)}`);
    }
    progress("nspawn", `container exited (${child.exitCode ?? child.signalCode})`);
  }

  async leftovers(): Promise<string[]> {
    const found = [...processesUnder(this.rootDir), ...mountsUnder(this.rootDir).map(String)];
    try {
      await run(["ip", "link", "show", "dev", this.hostLink]);
      found.push(`link ${this.hostLink} still exists`);
    } catch {
      // gone with the namespace, as it should be
    }
    return found;
  }

  /** Runs argv as root inside the container's namespaces (nsenter into its PID 1). */
  readonly console = async (argv: readonly string[]): Promise<string> => {
    const leader = this.leaderPid();
    return run(["nsenter", `--target=${leader}`, "--mount", "--uts", "--ipc", "--net", "--pid", "--", "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", ...argv]);
  };

  /** The container's PID 1: the child of systemd-nspawn whose command is systemd. */
  private leaderPid(): number {
    const nspawn = this.child?.pid;
    if (!nspawn) throw new Error("container is not running");
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (ppid === nspawn) return Number(pid);
      } catch {
        // exited while we looked
      }
    }
    throw new Error(`no container leader under systemd-nspawn pid ${nspawn}`);
  }

  guestPath(path: string): string | undefined {
    if (!path.startsWith("/") || path.split("/").includes("..")) throw new Error(`not an absolute guest path: ${path}`);
    return join(this.rootDir, path);
  }

  consoleTail(lines = 30): string {
    if (!this.consolePath || !existsSync(this.consolePath)) return "(no console output)";
    return readFileSync(this.consolePath, "utf8").split("\n").slice(-lines).join("\n");
  }
}
