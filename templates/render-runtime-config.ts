/**
 * /etc/picortex/runtime.json: the runtime's config on a host, validated with the
 * runtime's own schema so a renderer change can never ship a config the runtime rejects.
 */
import { runtimeConfigSchema } from "../agent-runtime/config/schema.js";
import { AGENT_SESSION, AGENT_TMUX_SOCKET, AGENT_USER, STATE_DIR } from "../agent-runtime/host/contract.js";
import { DEFAULT_HOST_GATEWAY_PORT } from "../agent-runtime/host/agent-key.js";

export interface RuntimeConfigVars {
  runtimePort: number;
  /** The key gateway's loopback port (chats and the portal agent). */
  gatewayPort: number;
  chatsRoot: string;
  claudePath: string;
  /** The host's tailnet (MagicDNS) name: browsers on the tailnet open the portal by it. */
  hostname: string;
}

export function renderRuntimeConfig(vars: RuntimeConfigVars): string {
  const config = {
    mode: "host",
    dataDir: STATE_DIR,
    // Loopback here; the unit adds the tailnet address at start (listen-address unit).
    // The portal checks Origin exactly; `http://<hostname>:<port>` is the stack's runtimeUrl
    // output. Addresses the runtime binds are allowed already; a full MagicDNS name
    // (<host>.<tailnet>.ts.net) or `tailscale serve` origin goes in server.allowedOrigins.
    server: { hosts: ["127.0.0.1"], port: vars.runtimePort, allowedOrigins: [`http://${vars.hostname}:${vars.runtimePort}`] },
    // The gateway port the agent unit also names: left out at the runtime's own host default.
    turns: { chatsRoot: vars.chatsRoot, claudePath: vars.claudePath, ...(vars.gatewayPort !== DEFAULT_HOST_GATEWAY_PORT ? { gatewayPort: vars.gatewayPort } : {}) },
    // The portal attaches to the agent's session (picortex-agent.service) as the agent
    // account, through sudo: the runtime never runs a tmux server or client as itself.
    // Its Restart re-runs the unit's own pane command (tmux.ts respawnArgs).
    portal: { session: AGENT_SESSION, runAs: AGENT_USER, tmuxSocket: AGENT_TMUX_SOCKET },
  };
  const parsed = runtimeConfigSchema.safeParse(config);
  if (!parsed.success) {
    throw new Error(`runtime.json would be rejected by the runtime: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  return JSON.stringify(config, null, 2) + "\n";
}
