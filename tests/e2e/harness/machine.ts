/**
 * One interface over the two ways the test boots a Debian host: systemd-nspawn (the
 * machine's own kernel, seconds) and qemu (a full kernel, about a minute under TCG).
 * The test body only sees this interface, so every check runs the same in both modes.
 */
export type MachineMode = "nspawn" | "qemu";

export interface MachineNetwork {
  /** NoCloud `network-config` for the guest's interface. */
  networkConfig: string;
  /** Where the test machine binds services the guest calls (the fake Messages API). */
  bindAddress: string;
  /** How the guest addresses the test machine (used in the rendered runtime config). */
  hostAddressForGuest: string;
}

export interface BootSpec {
  /** Extracted Debian tree (nspawn boots it directly; qemu builds its disk from it). */
  rootDir: string;
  /** Directory with user-data, meta-data and network-config. */
  seedDir: string;
  /** Scratch directory owned by this boot (logs, disk overlay, QMP socket). */
  workDir: string;
  /** Local files placed read-only on the guest (Node and the Claude CLI, which a real host downloads). */
  provisions: Array<{ source: string; target: string }>;
}

export interface Machine {
  readonly mode: MachineMode;
  readonly network: MachineNetwork;
  /** Boots; resolves once the guest's PID 1 runs (ssh may answer later). */
  boot(spec: BootSpec): Promise<void>;
  /** Where the test connects for ssh. */
  sshEndpoint(): { host: string; port: number };
  /** Orderly power-off (systemd shutdown in the guest); resolves when the machine is gone. */
  powerOff(): Promise<void>;
  /** After powerOff: anything the boot left on the test machine (processes, mounts, links). */
  leftovers(): Promise<string[]>;
  /**
   * Where a guest path can be read from the test machine while it runs, when the mode
   * allows it (nspawn boots a directory; qemu's disk is opaque): undefined otherwise.
   */
  guestPath(path: string): string | undefined;
  /**
   * Root on the guest without ssh: the stand-in for the break-glass access an operator
   * has on a real server (Hetzner console, Tailscale SSH). Used only for what the admin
   * account deliberately cannot do (issuing a brain token in the runtime's database).
   * undefined in modes that have no such channel.
   */
  readonly console?: (argv: readonly string[]) => Promise<string>;
  /** The guest console so far (for failure messages). */
  consoleTail(lines?: number): string;
}
