import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, chmodSync } from "node:fs";
import { createConnection, createServer, type AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { progress } from "./log.js";
import { run } from "./run.js";
import { processesWithArg } from "./leftovers.js";
import type { BootSpec, Machine, MachineNetwork } from "./machine.js";

/**
 * qemu mode: the same tree booted with its own Debian kernel, as a cloud server would.
 * Root is a raw ext4 disk made with `mkfs.ext4 -d` (no loop mount) under a qcow2
 * overlay, the NoCloud seed is a `cidata` ISO, the network is user-mode with ssh
 * forwarded to 127.0.0.1 only, and power-off is a QMP `system_powerdown`.
 *
 * Acceleration: KVM when /dev/kvm can run a stock kernel; the paravirtual KVM on these
 * CI machines (kvm_pvm) cannot, so it falls back to TCG (environment-notes.md).
 */
export function chooseAccel(): { args: string[]; name: string } {
  const kvmUsable = existsSync("/dev/kvm") && !existsSync("/sys/module/kvm_pvm") && process.env.PICORTEX_E2E_QEMU_ACCEL !== "tcg";
  return kvmUsable
    ? { args: ["-accel", "kvm", "-cpu", "host"], name: "kvm" }
    : // `-cpu max`: the default qemu64 model lacks AVX2 and friends, and the Claude CLI
      // binary dies with SIGILL without them (found by this test); TCG emulates them since 7.2.
      { args: ["-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max"], name: "tcg" };
}

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** One QMP command on a fresh connection (capabilities negotiation first). */
async function qmp(socketPath: string, command: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = "";
    let stage = 0;
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      buf += d;
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.trim()) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc: string } };
        if (msg.error) {
          sock.destroy();
          reject(new Error(`QMP ${command}: ${msg.error.desc}`));
          return;
        }
        if (stage === 0 && msg.QMP) {
          stage = 1;
          sock.write(JSON.stringify({ execute: "qmp_capabilities" }) + "\n");
        } else if (stage === 1 && msg.return !== undefined) {
          stage = 2;
          sock.write(JSON.stringify({ execute: command }) + "\n");
        } else if (stage === 2 && msg.return !== undefined) {
          sock.end();
          resolve();
        }
      }
    });
    sock.on("error", reject);
  });
}

/**
 * One qemu-guest-agent request. The agent speaks line-delimited JSON on the chardev
 * socket; `guest-sync` first flushes anything a previous client left half-read.
 */
async function guestAgent(socketPath: string, request: { execute: string; arguments?: unknown }): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    const syncId = Math.floor(Math.random() * 1e9);
    let buf = "";
    let synced = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`qemu-guest-agent did not answer ${request.execute} (is the agent running in the guest?)`));
    }, 60_000);
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write(JSON.stringify({ execute: "guest-sync", arguments: { id: syncId } }) + "\n"));
    sock.on("data", (d: string) => {
      buf += d;
      let idx: number;
      while ((idx = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, idx).replace(/^\xff/, "").trim();
        buf = buf.slice(idx + 1);
        if (!line) continue;
        let msg: { return?: unknown; error?: { desc: string } };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          continue;
        }
        if (!synced) {
          if (msg.return === syncId) {
            synced = true;
            sock.write(JSON.stringify(request) + "\n");
          }
          continue;
        }
        clearTimeout(timer);
        sock.end();
        if (msg.error) reject(new Error(`qemu-guest-agent ${request.execute}: ${msg.error.desc}`));
        else resolve(msg.return);
        return;
      }
    });
    sock.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export class QemuMachine implements Machine {
  readonly mode = "qemu" as const;
  readonly network: MachineNetwork = {
    // slirp maps 10.0.2.2 to the test machine's loopback: services bind 127.0.0.1 only.
    bindAddress: "127.0.0.1",
    hostAddressForGuest: "10.0.2.2",
    // net.ifnames=0 on the kernel command line makes the one NIC eth0.
    networkConfig: ["version: 2", "ethernets:", "  eth0:", "    dhcp4: true", ""].join("\n"),
  };
  private sshPort = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private workDir = "";
  private consolePath = "";
  private qmpPath = "";
  private qgaPath = "";

  /** Runs argv as root in the guest through qemu-guest-agent's guest-exec. */
  readonly console = async (argv: readonly string[]): Promise<string> => {
    const [path, ...arg] = argv;
    if (!path) throw new Error("console: empty argv");
    const started = (await guestAgent(this.qgaPath, { execute: "guest-exec", arguments: { path, arg, "capture-output": true } })) as { pid: number };
    const until = Date.now() + 600_000;
    for (;;) {
      const st = (await guestAgent(this.qgaPath, { execute: "guest-exec-status", arguments: { pid: started.pid } })) as {
        exited: boolean;
        exitcode?: number;
        "out-data"?: string;
        "err-data"?: string;
      };
      if (st.exited) {
        const out = Buffer.from(st["out-data"] ?? "", "base64").toString();
        const err = Buffer.from(st["err-data"] ?? "", "base64").toString();
        if (st.exitcode !== 0) throw new Error(`guest command failed (exit ${st.exitcode}): ${argv.join(" ")}\n${err}`);
        return out;
      }
      if (Date.now() > until) throw new Error(`guest command did not finish: ${argv.join(" ")}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  };

  async boot(spec: BootSpec): Promise<void> {
    this.workDir = spec.workDir;
    this.consolePath = join(spec.workDir, "console.log");
    this.qmpPath = join(spec.workDir, "qmp.sock");
    this.qgaPath = join(spec.workDir, "qga.sock");
    // A real host downloads these; here they are copied into the tree before the disk is made.
    for (const p of spec.provisions) {
      const target = join(spec.rootDir, p.target);
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(p.source, target);
      chmodSync(target, 0o755);
    }
    const bootDir = join(spec.rootDir, "boot");
    const kernel = readdirSync(bootDir).find((f) => f.startsWith("vmlinuz-"));
    const initrd = readdirSync(bootDir).find((f) => f.startsWith("initrd.img-"));
    if (!kernel || !initrd) throw new Error(`no kernel/initrd in ${bootDir}: the image needs linux-image-amd64`);

    const raw = join(spec.workDir, "root.raw");
    const overlay = join(spec.workDir, "root.qcow2");
    const iso = join(spec.workDir, "seed.iso");
    progress("qemu", "making the root disk with mkfs.ext4 -d");
    await run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", spec.rootDir, raw, "6G"], { step: "qemu" });
    await run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", raw, overlay]);
    await run(
      ["genisoimage", "-quiet", "-output", iso, "-volid", "cidata", "-joliet", "-rock", ...["user-data", "meta-data", "network-config"].map((f) => join(spec.seedDir, f))],
      { step: "qemu" },
    );
    this.sshPort = await freeLoopbackPort();
    const accel = chooseAccel();
    const args = [
      "-machine", "q35",
      "-nodefaults",
      "-m", "1024",
      "-smp", "2",
      ...accel.args,
      "-kernel", join(bootDir, kernel),
      "-initrd", join(bootDir, initrd),
      "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.show_status=0",
      "-drive", `file=${overlay},if=virtio,format=qcow2`,
      "-drive", `file=${iso},if=virtio,format=raw,readonly=on`,
      "-netdev", `user,id=n0,hostfwd=tcp:127.0.0.1:${this.sshPort}-:22`,
      "-device", "virtio-net-pci,netdev=n0",
      "-device", "virtio-rng-pci",
      "-serial", `file:${this.consolePath}`,
      "-display", "none",
      "-qmp", `unix:${this.qmpPath},server=on,wait=off`,
      "-chardev", `socket,path=${this.qgaPath},server=on,wait=off,id=qga0`,
      "-device", "virtio-serial",
      "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
    ];
    progress("qemu", `qemu-system-x86_64 (${accel.name}) ssh on 127.0.0.1:${this.sshPort}`);
    const log = openSync(join(spec.workDir, "qemu.log"), "w");
    const child = spawn("qemu-system-x86_64", args, { stdio: ["ignore", log, log] });
    closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.on("exit", () => resolve()));
    await new Promise((r) => setTimeout(r, 1000));
    if (child.exitCode !== null) {
      throw new Error(`qemu exited at once (${child.exitCode}): ${readFileSync(join(spec.workDir, "qemu.log"), "utf8")}`);
    }
  }

  sshEndpoint(): { host: string; port: number } {
    return { host: "127.0.0.1", port: this.sshPort };
  }

  async powerOff(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await qmp(this.qmpPath, "system_powerdown").catch((err: Error) => progress("qemu", `QMP powerdown failed: ${err.message}`));
    const timedOut = await Promise.race([
      this.exited!.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), 180_000)),
    ]);
    if (timedOut) {
      child.kill("SIGKILL");
      await this.exited;
      throw new Error(`guest did not power off within 180s after QMP system_powerdown:\n${this.consoleTail(40)}`);
    }
    progress("qemu", `guest powered off (qemu exit ${child.exitCode ?? child.signalCode})`);
  }

  async leftovers(): Promise<string[]> {
    return this.workDir ? processesWithArg(this.workDir) : [];
  }

  guestPath(): string | undefined {
    return undefined;
  }

  consoleTail(lines = 30): string {
    if (!this.consolePath || !existsSync(this.consolePath)) return "(no console output)";
    return readFileSync(this.consolePath, "utf8").split("\n").slice(-lines).join("\n");
  }
}
