/**
 * What stands behind a server of the Hetzner emulator. `none` keeps only API state (fast,
 * for tests of the API rules); `nspawn` (./nspawn-backend.ts) boots a real Debian host per
 * server with the request's user_data as its NoCloud seed.
 */
export interface BootRequest {
  id: number;
  name: string;
  userData: string;
  /** Volumes attached at boot. */
  volumes: number[];
}

export interface ServerBackend {
  readonly kind: "none" | "nspawn";
  /** The public IPv4 the server will have (known at create time, as on Hetzner). */
  allocateAddress(serverId: number): string;
  /** First boot (create with start_after_create) and every poweron. */
  start(req: BootRequest): Promise<void>;
  /** Stops the machine, keeping its disk (shutdown and poweroff). */
  stop(serverId: number): Promise<void>;
  /** Stops and removes the machine and its disk. */
  destroy(serverId: number): Promise<void>;
  /** Fresh disk from the image with new user_data; boots again if it was running. */
  rebuild(req: BootRequest, wasRunning: boolean): Promise<void>;
  createVolume(v: { id: number; sizeGb: number; format: "ext4" | "xfs" | null }): Promise<void>;
  /** Makes the volume visible to a server (running or not). */
  attachVolume(volumeId: number, serverId: number, running: boolean): Promise<void>;
  detachVolume(volumeId: number, serverId: number, running: boolean): Promise<void>;
  deleteVolume(volumeId: number): Promise<void>;
  close(): Promise<string[]>;
}

/** API state only: addresses from TEST-NET-3 (203.0.113.0/24, RFC 5737), nothing runs. */
export class NoBackend implements ServerBackend {
  readonly kind = "none" as const;
  allocateAddress(serverId: number): string {
    return `203.0.113.${(serverId % 250) + 1}`;
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async destroy(): Promise<void> {}
  async rebuild(): Promise<void> {}
  async createVolume(): Promise<void> {}
  async attachVolume(): Promise<void> {}
  async detachVolume(): Promise<void> {}
  async deleteVolume(): Promise<void> {}
  async close(): Promise<string[]> {
    return [];
  }
}
