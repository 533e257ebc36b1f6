import { join } from "node:path";
import { BrainServerStore } from "../../brain/server/server-store.js";
import { CHAT_BRAIN_MCP_PATH, ChatBrainStore, chatBrainMcpRoutes } from "../../brain/server/mcp-http.js";
import type { Route } from "../../http/router.js";
import type { ModuleContext } from "../../module.js";
import type { ChatBrainTokens } from "./chat-brain.js";
import type { TurnStore } from "../store.js";
import { AGENT_BRAIN_AUTHOR } from "../../host/agent-key.js";
import { hashToken, secretsEqual } from "../../http/auth.js";

/**
 * Host mode's brain for chats and the portal agent: per-chat tokens in the brain's token table (hashed, scoped to
 * `brain.workspaceId` and the chat, refused by push/pull) and the agent's gateway token, the MCP endpoint they open on the
 * gateway listener, and the store behind it (`<dataDir>/brain.sqlite`, as in local mode).
 */
export function hostChatBrain(
  ctx: ModuleContext,
  turns: TurnStore,
  gatewayPort: () => number | undefined,
  /** The portal agent's token hash when the gateway has an agent principal (host/agent-key.ts). */
  agentTokenHash: () => string | undefined,
): { tokens: ChatBrainTokens; routes: Route[]; store: ChatBrainStore } {
  const tokens = new BrainServerStore(ctx.db);
  const store = new ChatBrainStore(join(ctx.config.dataDir, "brain.sqlite"));
  const workspaceId = ctx.config.brain.workspaceId;
  return {
    store,
    tokens: {
      issue(chatId) {
        const port = gatewayPort();
        if (port === undefined) throw new Error("The key gateway is not listening yet.");
        return { url: `http://127.0.0.1:${port}${CHAT_BRAIN_MCP_PATH}`, token: tokens.createChatToken(workspaceId, chatId) };
      },
      revoke(chatId) {
        tokens.revokeChatTokens(chatId);
      },
    },
    routes: chatBrainMcpRoutes({
      authenticate: (token) => {
        // The agent's token (constant time against its hash) records as the portal agent,
        // in the same workspace as the chats; it never names a chat, so none can be posed as.
        const agentHash = agentTokenHash();
        if (agentHash && secretsEqual(hashToken(token), agentHash)) return { workspaceId, agent: AGENT_BRAIN_AUTHOR };
        const chat = tokens.authenticateChat(token);
        return chat && { workspaceId: chat.workspaceId, chatId: chat.chatId, agent: `chat-${chat.chatId}` };
      },
      chatLive: (chatId) => {
        const chat = turns.getChat(chatId);
        return chat !== undefined && chat.status !== "deleted";
      },
      store,
    }),
  };
}
