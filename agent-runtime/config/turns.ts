import { z } from "zod";
import { DEFAULT_CHATS_ROOT, DEFAULT_CLAUDE_PATH } from "../host/chat-identity.js";

export const turnsConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    chatsRoot: z.string().default(DEFAULT_CHATS_ROOT),
    claudePath: z.string().default(DEFAULT_CLAUDE_PATH),
    /** Turns running at once across chats; a CX23 has 2 vCPU / 4 GB. */
    maxParallel: z.number().int().min(1).max(64).default(2),
    turnTimeoutSeconds: z.number().int().min(5).max(24 * 3600).default(600),
    /** Upstream Messages API the gateway forwards to. */
    upstreamBaseUrl: z.string().url().default("https://api.anthropic.com"),
    /** File holding the real Anthropic key (root-readable only). Never a chat's env or files. */
    apiKeyFile: z.string().optional(),
  })
  .strict();

export type TurnsConfig = z.infer<typeof turnsConfigSchema>;
