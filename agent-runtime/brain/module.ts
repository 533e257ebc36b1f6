import type { ModuleFactory } from "../module.js";
import { brainAdminRoutes, brainSyncRoutes } from "./server/http.js";
import { BrainServerStore } from "./server/server-store.js";

/** Mounts the brain sync server (`/v1/brain/push|pull`, token admin under `/v1/brain/tokens`) on the runtime's database. */
export const mountBrain: ModuleFactory = (ctx) => {
  if (!ctx.config.brain.syncServer) return { name: "brain", routes: [], close() {} };
  const store = new BrainServerStore(ctx.db);
  return { name: "brain", routes: [...brainSyncRoutes(store), ...brainAdminRoutes(store, ctx.apiAuth)], close() {} };
};
