import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { progress } from "./log.js";
import { run } from "./run.js";
import { ensureRootfs, restoreRootfs } from "./rootfs.js";
import { writeSeed } from "./seed.js";
import { HostSession } from "./ssh.js";
import { Timings } from "./timings.js";
import { NspawnMachine } from "./nspawn.js";
import type { Machine, MachineMode } from "./machine.js";

/**
 * Boots a fresh Debian host with a given cloud-config and hands back an ssh session
 * as the admin: the part of the e2e run that a user's "test your workspace locally"
 * run shares with CI.
 */
export interface BootedHost {
  mode: MachineMode;
  machine: Machine;
  session: HostSession;
  workDir: string;
  adminUser: string;
  privateKeyPath: string;
  timings: Timings;
  /** Power off and remove the scratch directory; returns anything left behind. */
  teardown(): Promise<string[]>;
}

export interface BootInput {
  mode: MachineMode;
  /** Renders the cloud-config once the admin's ssh key and the guest's network are known. */
  render(ctx: { adminSshPublicKey: string; hostAddressForGuest: string }): { cloudConfig: string; adminUser: string };
}

/** The Claude Code CLI's native binary from this checkout's node_modules (a real host gets it from npm). */
export function claudeBinary(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve("@anthropic-ai/claude-code/package.json");
  return join(pkg, "..", "bin", "claude.exe");
}

export async function createMachine(mode: MachineMode): Promise<Machine> {
  if (mode === "nspawn") return new NspawnMachine();
  const { QemuMachine } = await import("./qemu.js");
  return new QemuMachine();
}

export async function bootHost(input: BootInput): Promise<BootedHost> {
  const timings = new Timings();
  const workDir = mkdtempSync("/var/tmp/picortex-e2e-");
  const keyPath = join(workDir, "admin_ed25519");
  await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "picortex-e2e", "-f", keyPath]);
  const publicKey = readFileSync(`${keyPath}.pub`, "utf8").trim();

  const rootDir = join(workDir, "rootfs");
  let machine: Machine;
  let rendered: { cloudConfig: string; adminUser: string };
  let seedDir: string;
  try {
    const image = await ensureRootfs();
    timings.record(image.built ? "image build (cold cache)" : "image cache lookup", image.seconds);
    timings.record("image restore", await restoreRootfs(image, rootDir));
    machine = await createMachine(input.mode);
    rendered = input.render({ adminSshPublicKey: publicKey, hostAddressForGuest: machine.network.hostAddressForGuest });
    seedDir = writeSeed(join(workDir, "seed"), {
      userData: rendered.cloudConfig,
      instanceId: `picortex-e2e-${process.pid}-${Date.now()}`,
      hostname: "picortex-e2e",
      networkConfig: machine.network.networkConfig,
    });
  } catch (err) {
    // Nothing booted yet: the scratch directory is all there is to clean up.
    rmSync(workDir, { recursive: true, force: true });
    throw err;
  }

  let session: HostSession | undefined;
  const teardown = async (): Promise<string[]> => {
    session?.dispose();
    await timings.time("power off", () => machine.powerOff());
    const left = await machine.leftovers();
    if (left.length === 0) rmSync(workDir, { recursive: true, force: true });
    else progress("teardown", `kept ${workDir} because of leftovers: ${left.join("; ")}`);
    return left;
  };
  try {
    const t0 = Date.now();
    await machine.boot({
      rootDir,
      seedDir,
      workDir,
      provisions: [
        // What production installs from NodeSource and npm, from this machine instead.
        { source: process.execPath, target: "/usr/bin/node" },
        { source: claudeBinary(), target: "/usr/local/bin/claude" },
      ],
    });
    const endpoint = machine.sshEndpoint();
    session = await HostSession.connect(
      { ...endpoint, username: rendered.adminUser, privateKey: readFileSync(keyPath, "utf8") },
      input.mode === "qemu" ? 600_000 : 120_000,
    );
    timings.record("boot to ssh", (Date.now() - t0) / 1000);
    const ci = await session.exec(["cloud-init", "status", "--wait"], { timeoutMs: 900_000 });
    timings.record("boot to cloud-init done", (Date.now() - t0) / 1000);
    progress("boot", `cloud-init: ${ci.stdout.trim()} (exit ${ci.code})`);
    return { mode: input.mode, machine, session, workDir, adminUser: rendered.adminUser, privateKeyPath: keyPath, timings, teardown };
  } catch (err) {
    const tail = machine.consoleTail(60);
    await teardown().catch(() => undefined);
    throw new Error(`${(err as Error).message}\n--- guest console (tail) ---\n${tail}`);
  }
}
