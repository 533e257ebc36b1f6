import { z } from "zod";
import { portalConfigSchema } from "./portal.js";
import { turnsConfigSchema } from "./turns.js";
import { brainConfigSchema } from "./brain.js";
import { bridgesConfigSchema } from "./bridges.js";
import { DEFAULT_RUNTIME_PORT } from "../host/contract.js";

/**
 * The runtime's whole configuration. Parsed once, at the entry point; every module
 * receives its own section and never reads the environment itself.
 */
export const runtimeConfigSchema = z
  .object({
    /**
     * `host`: chats run as their own Linux users through the scoped sudoers drop-in.
     * `local`: chats run as the current user with their own HOME/config dir (weaker isolation).
     */
    mode: z.enum(["host", "local"]).default("local"),
    /** Where the database, tokens and chat archives live. */
    dataDir: z.string().min(1).default(".picortex"),
    server: z
      .object({
        /** Addresses to bind: loopback and the tailnet address; never 0.0.0.0 by default. */
        hosts: z.array(z.string().min(1)).min(1).default(["127.0.0.1"]),
        port: z.number().int().min(0).max(65535).default(DEFAULT_RUNTIME_PORT),
        /** Extra Origins allowed for browser requests (the portal's own origin is always allowed). */
        allowedOrigins: z.array(z.string().url()).default([]),
        /**
         * Extra names the runtime answers to in the Host header (DNS rebinding defence).
         * Loopback names, the bound addresses and the allowedOrigins' host names are always allowed.
         */
        allowedHosts: z.array(z.string().regex(/^[A-Za-z0-9.-]{1,253}$|^\[?[0-9A-Fa-f:.]+\]?$/, "a host name or address")).default([]),
      })
      .prefault({}),
    portal: portalConfigSchema.prefault({}),
    turns: turnsConfigSchema.prefault({}),
    brain: brainConfigSchema.prefault({}),
    /** Messaging bridges (Telegram, signed webhook); each is off unless configured. */
    bridges: bridgesConfigSchema.prefault({}),
  })
  .strict();

export type RuntimeConfig = z.infer<typeof runtimeConfigSchema>;
