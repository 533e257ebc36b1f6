import { z } from "zod";

export const brainConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Serve the sync endpoints (`/v1/brain/push|pull`) from this runtime. */
    syncServer: z.boolean().default(true),
  })
  .strict();

export type BrainConfig = z.infer<typeof brainConfigSchema>;
