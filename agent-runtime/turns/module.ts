import type { ModuleFactory } from "../module.js";

// Placeholder until the turns module lands; mounts nothing.
export const mountTurns: ModuleFactory = () => ({ name: "turns", routes: [], close() {} });
