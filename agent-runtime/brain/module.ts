import type { ModuleFactory } from "../module.js";

// Placeholder until the brain module lands; mounts nothing.
export const mountBrain: ModuleFactory = () => ({ name: "brain", routes: [], close() {} });
