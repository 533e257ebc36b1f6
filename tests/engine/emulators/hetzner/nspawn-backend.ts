import type { ServerBackend } from "./backend.js";
import type { TailscaleEmulator } from "../tailscale/index.js";
export class NspawnBackend {
  static async create(_opts: { tailscale?: TailscaleEmulator }): Promise<ServerBackend> {
    throw new Error("not yet");
  }
}
