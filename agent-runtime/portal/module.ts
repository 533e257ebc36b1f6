import type { ModuleFactory } from "../module.js";

// Placeholder until the portal module lands; mounts nothing.
export const mountPortal: ModuleFactory = () => ({ name: "portal", routes: [], close() {} });
