import { z } from "zod";

export const portalConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** tmux session the portal attaches to. */
    session: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "tmux session names use letters, digits, _ and -").default("picortex"),
    /** Command run in the tmux session when it is created. */
    command: z.array(z.string()).min(1).default(["claude"]),
    cwd: z.string().optional(),
  })
  .strict();

export type PortalConfig = z.infer<typeof portalConfigSchema>;
