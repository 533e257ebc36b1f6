import type { Db } from "../../agent-runtime/store/database.js";
import type { ChatHost } from "../../agent-runtime/turns/host/chat-host.js";
import { ChatService } from "../../agent-runtime/turns/chat-service.js";
import type { Chat } from "../../agent-runtime/turns/domain.js";
import { TurnEvents } from "../../agent-runtime/turns/events.js";
import type { Provisioner } from "../../agent-runtime/turns/engine/provisioner.js";
import { TurnStore } from "../../agent-runtime/turns/store.js";

/**
 * The turns module as the bridges see it (its ChatService and events) over a real store,
 * without a chat host or engine: provisioning a chat makes it ready at once ("ready"), or
 * never finishes ("never").
 */
export function turnsDouble(db: Db, provisioning: "ready" | "never" = "ready") {
  const turnStore = new TurnStore(db);
  const events = new TurnEvents();
  const provisioner = {
    provision: (id: string): Promise<Chat> => {
      if (provisioning === "never") return new Promise<Chat>(() => {});
      turnStore.setChatStatus(id, "ready");
      return Promise.resolve(turnStore.getChat(id)!);
    },
    pending: () => undefined,
  } as unknown as Provisioner;
  const chats = new ChatService({
    store: turnStore,
    kick: () => {},
    provisioner,
    events,
    host: { mode: "local" } as unknown as ChatHost,
    warm: undefined,
    dataDir: "/nonexistent",
    onDelete: "remove",
    defaultBudgetTokens: undefined,
  });
  return { turnStore, turns: { chats, events } };
}
