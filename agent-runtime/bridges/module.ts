import type { ModuleContext, RuntimeModule } from "../module.js";
import type { TurnsModule } from "../turns/module.js";
import { BridgeCore } from "./core.js";
import { BridgeApprovals } from "./approvals.js";
import { approverIds } from "../config/bridges.js";
import { BridgeStore } from "./store.js";
import { TelegramBridge, readBotToken } from "./telegram.js";
import { WebhookBridge, readWebhookSecret } from "./webhook.js";

export interface BridgesModule extends RuntimeModule {
  core: BridgeCore;
  telegram: TelegramBridge | undefined;
  webhook: WebhookBridge | undefined;
}

/** Messaging bridges on top of the turns module (which must be mounted before). */
export function mountBridges(ctx: ModuleContext, turns: TurnsModule | undefined): BridgesModule {
  const cfg = ctx.config.bridges;
  if (!turns) throw new Error("bridges need the turns module: set turns.enabled to true (or turn the bridges off).");
  const log = ctx.log.child("bridges");
  const store = new BridgeStore(ctx.db);
  const core = new BridgeCore(store, turns, log, {
    budgetTokens: cfg.budgetTokens,
    memberBudgetTokens: cfg.memberBudgetTokens,
    maxAttempts: cfg.maxAttempts,
    minIntervalMs: (p) => (p === "telegram" ? cfg.telegram.minIntervalMs : 0),
    portalUrl: cfg.portalUrl,
  });
  const approvals = new BridgeApprovals(
    store,
    turns,
    log.child("approvals"),
    {
      timeoutMs: cfg.approvalTimeoutSeconds * 1000,
      approversOf: (platform, platformChatId) =>
        platform === "telegram"
          ? cfg.telegram.enabled
            ? approverIds(cfg.telegram.approvers, [platformChatId, ...store.formerIds(platform, platformChatId)], "tg:")
            : []
          : cfg.webhook.enabled
            ? approverIds(cfg.webhook.approvers, [platformChatId, ...store.formerIds(platform, platformChatId)], "wh:")
            : [],
      maxMessage: (platform) => core.maxMessage(platform),
      maxCaption: (platform) => core.maxCaption(platform),
      allowedTools: cfg.toolsWithoutApproval,
    },
    () => core.wake(),
  );
  core.approvals = approvals;
  const anyApprovers = [cfg.telegram.enabled && Object.values(cfg.telegram.approvers).some((l) => l.length), cfg.webhook.enabled && Object.values(cfg.webhook.approvers).some((l) => l.length)].some(Boolean);
  if (anyApprovers && ctx.config.turns.permissionMode !== "dontAsk")
    log.warn(`approvers are set but turns.permissionMode is ${ctx.config.turns.permissionMode}: that mode asks no one, so approvals are off (set turns.permissionMode to dontAsk to have tools asked for).`);
  else if (anyApprovers && cfg.toolsWithoutApproval === undefined)
    log.warn(
      "approvers are set but bridges.toolsWithoutApproval is not: the turns.allowedTools run without asking (by default Bash, Write and Edit among them), so approvers are asked only for other tools. Set bridges.toolsWithoutApproval, e.g. [\"Read\", \"Glob\", \"Grep\"].",
      { allowedTools: ctx.config.turns.allowedTools },
    );
  turns.setApprovals(approvals);
  const telegram = cfg.telegram.enabled ? new TelegramBridge(cfg.telegram, readBotToken(cfg.telegram.tokenFile!), core, log.child("telegram")) : undefined;
  const webhook = cfg.webhook.enabled ? new WebhookBridge(cfg.webhook, readWebhookSecret(cfg.webhook.secretFile!), core, log.child("webhook")) : undefined;
  return {
    name: "bridges",
    core,
    telegram,
    webhook,
    routes: [
      ...(webhook?.routes() ?? []),
      {
        method: "GET",
        path: "/v1/bridges",
        handler: (rc) => {
          ctx.apiAuth.check(rc.req);
          return {
            telegram: telegram ? telegram.status : null,
            webhook: webhook ? { enabled: true, callback: !!cfg.webhook.callbackUrl } : null,
            links: store.listLinks().map((l) => ({
              platform: l.platform,
              platformChatId: l.platform_chat_id,
              chatId: l.chat_id,
              title: l.title,
              mode: l.mode,
              paused: l.paused === 1,
              approvers: approvals.approversOf(l),
            })),
            toolsWithoutApproval: cfg.toolsWithoutApproval ?? ctx.config.turns.allowedTools,
            approvals: { pending: store.pendingApprovals().length, active: ctx.config.turns.permissionMode === "dontAsk" },
            outbox: {
              pending: store.outbox().filter((r) => r.status === "pending").length,
              failed: store.outbox().filter((r) => r.status === "failed").length,
            },
          };
        },
      },
    ],
    start() {
      approvals.start();
      core.start();
      telegram?.start();
    },
    async close() {
      // The core stops first, so a send the abort below cuts short is not counted as a failed attempt.
      approvals.close();
      const stopping = core.close();
      await telegram?.close();
      await stopping;
    },
  };
}
