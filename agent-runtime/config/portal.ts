import { z } from "zod";
import { LINUX_NAME_PATTERN } from "../host/contract.js";

/**
 * The portal: a browser terminal into one long-lived tmux session. Every key has a
 * default that is safe for a host on a tailnet; see docs/portal.md for the reasoning.
 */
export const portalConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** tmux session the portal attaches to (created on the first connect if missing). */
    session: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "tmux session names use letters, digits, _ and - (1-64)").default("picortex"),
    /** Command run in the tmux session when it is created (argv, never a shell string). */
    command: z.array(z.string().min(1)).min(1).default(["claude"]),
    /** Working directory of the session's command; default: the runtime's cwd. */
    cwd: z.string().min(1).optional(),
    /**
     * tmux server socket path (`tmux -S`). Unset: the runtime user's default server.
     * Tests and side-by-side setups use a private socket so they never touch a user's tmux.
     */
    tmuxSocket: z.string().min(1).optional(),
    /**
     * Run the tmux server and every client as this account (`sudo -n -u <runAs> -- tmux -S
     * <tmuxSocket> …`), never as the runtime user. On a host: `picortex-agent`, whose
     * session picortex-agent.service starts. Needs tmuxSocket.
     */
    runAs: z
      .string()
      .regex(LINUX_NAME_PATTERN, "runAs must be a Linux user name")
      .optional(),
    /** tmux config file (`tmux -f`); unset: tmux's default lookup. */
    tmuxConfig: z.string().min(1).optional(),
    /**
     * tmux `window-size` for the portal's session. `latest` (default): the window fits the
     * device used last (typed on, or whose terminal got focus), exactly; another device
     * attached beside it shows part of the window until it is used, then the window fits it.
     * `largest` keeps a phone from shrinking a laptop's view (smaller clients see the part
     * around the cursor, cropped); `smallest` fits every client and pads the larger ones.
     */
    windowSize: z.enum(["largest", "latest", "smallest"]).default("latest"),
    /** Lines of tmux history replayed into the browser's scrollback on (re)connect. */
    scrollbackLines: z.number().int().min(0).max(50_000).default(2000),
    /** Create and accept a second, read-only credential for viewers. */
    readOnlyToken: z.boolean().default(false),
    /** Browser connections at once; more are refused with 503. */
    maxClients: z.number().int().min(1).max(256).default(32),
    /** A connection with no input or resize for this long is closed (0 = never). */
    idleTimeoutSeconds: z.number().int().min(0).max(7 * 24 * 3600).default(24 * 3600),
    /** WebSocket ping interval; a peer that misses one pong is dropped. */
    heartbeatSeconds: z.number().int().min(1).max(300).default(20),
    /**
     * A client paused by flow control that shows no sign of reading (no ACK, pong or socket
     * drain) for this long is dropped, releasing its tmux client; at maxClients, a new tab
     * replaces the client stalled longest once it has been stalled a quarter of this.
     */
    stalledTimeoutSeconds: z.number().int().min(1).max(300).default(10),
    /** Failed auth attempts allowed per client address per window before 429. */
    authFailureLimit: z.number().int().min(1).max(1000).default(10),
    authFailureWindowSeconds: z.number().int().min(1).max(86_400).default(300),
    /** Lifetime of the session cookie the token is exchanged for. */
    cookieMaxAgeSeconds: z.number().int().min(60).max(400 * 86_400).default(30 * 86_400),
    /** `auto`: mark the cookie Secure when the request came over HTTPS (directly or via a loopback proxy). */
    secureCookie: z.enum(["auto", "always", "never"]).default("auto"),
    /** Unacknowledged bytes per client before that client's pty is paused, and the level it resumes at. */
    highWatermarkBytes: z.number().int().min(16 * 1024).max(64 * 1024 * 1024).default(512 * 1024),
    lowWatermarkBytes: z.number().int().min(1024).max(32 * 1024 * 1024).default(128 * 1024),
    /** Prebuilt page assets (from `buildPortalAssets`); unset: look beside the bundle, else build at startup. */
    assetsDir: z.string().min(1).optional(),
  })
  .strict()
  .refine((c) => c.lowWatermarkBytes < c.highWatermarkBytes, {
    message: "portal.lowWatermarkBytes must be below portal.highWatermarkBytes",
    path: ["lowWatermarkBytes"],
  })
  .refine((c) => !c.runAs || c.tmuxSocket !== undefined, {
    message: "portal.runAs needs portal.tmuxSocket (the sudo rule for the agent account names the socket)",
    path: ["tmuxSocket"],
  });

export type PortalConfig = z.infer<typeof portalConfigSchema>;
