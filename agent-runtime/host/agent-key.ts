/**
 * The portal agent's own key path through the gateway (issue 13 item 2): the host
 * contract between the root release helper (which makes the token), the agent unit
 * (which hands it to Claude Code) and the runtime's gateway (which accepts its hash as
 * the agent principal). A leaf module: the renderers and the runtime import it.
 *
 *   picortex-release activate (root)
 *     creates AGENT_TOKEN_PATH once (root 0600, `pca_` + 256 random bits) and writes only
 *     its SHA-256 hex to <state dir>/AGENT_TOKEN_HASH_FILE (the runtime's, 0600)
 *   picortex-agent.service
 *     LoadCredential=AGENT_TOKEN_CREDENTIAL:AGENT_TOKEN_PATH; claude runs with
 *     `--settings` naming an apiKeyHelper that cats $CREDENTIALS_DIRECTORY/…, and
 *     Environment=ANTHROPIC_BASE_URL= the gateway on 127.0.0.1:<turns.gatewayPort>
 *   gateway
 *     compares the presented token's hash with the file's in constant time; a match is
 *     the agent principal (own usage, budget, in-flight and failure-limit keys), never a chat
 *   brain (issue 16 item 8)
 *     the release helper also writes AGENT_BRAIN_HEADERS_PATH (root 0600): the header JSON
 *     carrying the same token, which the unit loads as a second credential and Claude Code's
 *     `headersHelper` cats for the brain's MCP endpoint on the gateway listener; a match
 *     there records and recalls as AGENT_BRAIN_AUTHOR in the host's brain workspace
 *
 * The token itself is never in argv, a unit, runtime.json, a log, or a file the runtime
 * user or a chat user can read.
 */
import { readFileSync } from "node:fs";
import { PicortexError } from "../errors.js";

/** The brain MCP server's request headers carrying the same token (root 0600; a second credential). */
export const AGENT_BRAIN_HEADERS_PATH = "/etc/picortex/credentials/agent-brain-headers";
/** That credential's name in the agent unit. */
export const AGENT_BRAIN_HEADERS_CREDENTIAL = "agent-brain-headers";
/** Where the brain's MCP tools are served on the gateway's loopback listener (brain/server/mcp-http.ts). */
export const BRAIN_MCP_PATH = "/brain/mcp";
/** The name the portal agent's brain entries carry (fixed by its token, as a chat's are). */
export const AGENT_BRAIN_AUTHOR = "portal-agent";
/** The token (root 0600; the agent unit loads it as a systemd credential). */
export const AGENT_TOKEN_PATH = "/etc/picortex/credentials/agent-token";
/** The credential's name in the agent unit ($CREDENTIALS_DIRECTORY/<name>). */
export const AGENT_TOKEN_CREDENTIAL = "agent-token";
/** Its SHA-256 hex, in the runtime's state dir (the only form the runtime ever holds). */
export const AGENT_TOKEN_HASH_FILE = "agent-token.sha256";
/** Agent tokens start with this (chat tokens with `pcc_`): a bad token counts against the principal it claims. */
export const AGENT_TOKEN_PREFIX = "pca_";
/** The agent principal's key in the gateway's ledger and usage table; never a chat id (chat ids start with a letter). */
export const AGENT_PRINCIPAL = "@agent";
/**
 * The key gateway's port on a host when runtime.json names none (turns/module.ts uses it;
 * HostVars.gatewayPort defaults to it, and runtime.json carries the port only when it differs).
 */
export const DEFAULT_HOST_GATEWAY_PORT = 7419;
/** The key gateway's path prefix (turns/http/gateway.ts GATEWAY_PREFIX; a test keeps them equal). */
const GATEWAY_PATH = "/gateway";

/** The gateway URL the agent's Claude Code uses. */
export function agentGatewayUrl(gatewayPort: number): string {
  if (!Number.isInteger(gatewayPort) || gatewayPort < 1 || gatewayPort > 65535) throw new Error(`the agent's gateway port must be 1-65535, not ${gatewayPort}`);
  return `http://127.0.0.1:${gatewayPort}${GATEWAY_PATH}`;
}

/**
 * The agent's command: Claude Code with settings naming its key path. The helper reads
 * the credential when the CLI needs a key (a fixed `cat`, so the token is in no argv or
 * environment); `$CREDENTIALS_DIRECTORY` is the agent unit's, inherited by tmux's panes
 * (as is ANTHROPIC_BASE_URL, agentGatewayEnvironment). The same argv runs in the unit
 * and in the portal's Restart (respawn-pane re-runs the pane's own start command).
 */
export function agentClaudeCommand(claudePath: string, gatewayPort: number): string[] {
  // The brain as an HTTP MCP server (the agent cannot open the runtime's store): its
  // headersHelper cats the header credential, so the token is in no argv here either.
  // `--mcp-config` takes several values, so `--settings` follows it and ends the list.
  const mcp = { mcpServers: { brain: { type: "http", url: agentBrainMcpUrl(gatewayPort), headersHelper: `cat $CREDENTIALS_DIRECTORY/${AGENT_BRAIN_HEADERS_CREDENTIAL}`, alwaysLoad: true } } };
  // The brain's tools are pre-approved (as for chats): they act only as portal-agent, in
  // the host's workspace, so a prompt for each would only train the operator to click yes.
  const settings = { apiKeyHelper: `cat $CREDENTIALS_DIRECTORY/${AGENT_TOKEN_CREDENTIAL}`, permissions: { allow: ["mcp__brain"] } };
  return [claudePath, "--mcp-config", JSON.stringify(mcp), "--settings", JSON.stringify(settings)];
}

/** The brain's MCP endpoint the agent's Claude Code uses (the gateway's listener). */
export function agentBrainMcpUrl(gatewayPort: number): string {
  return new URL(BRAIN_MCP_PATH, agentGatewayUrl(gatewayPort)).toString();
}

/** The agent unit's environment for the gateway (tmux hands it to every pane, the portal's Restart included). */
export function agentGatewayEnvironment(gatewayPort: number): string {
  return `ANTHROPIC_BASE_URL=${agentGatewayUrl(gatewayPort)}`;
}

export class AgentTokenHashError extends PicortexError {
  constructor(message: string) {
    super("config", "agent_token_hash", message);
  }
}

/**
 * The agent token's hash from the file the release helper writes: undefined when there is
 * none (local mode, or a host not activated since this existed); a typed error when the
 * file is there but is not one SHA-256 hex line.
 */
export function readAgentTokenHash(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new AgentTokenHashError(`cannot read the portal agent's token hash ${file}: ${(err as Error).message}; run \`sudo picortex-release activate <hash>\` to rewrite it.`);
  }
  const hash = text.trim();
  if (!/^[0-9a-f]{64}$/.test(hash)) {
    throw new AgentTokenHashError(`${file} is not a SHA-256 hex digest; the portal agent cannot use the gateway. Remove it and run \`sudo picortex-release activate <hash>\` to rewrite it.`);
  }
  return hash;
}
