import { receipt } from "../../agent-runtime/bridges/core.js";

/** The receipt the bridge closes a reply with, from the turn as the API shows it. */
export const receiptOf = (t: any): string =>
  receipt({
    inputTokens: t.usage?.inputTokens ?? null,
    outputTokens: t.usage?.outputTokens ?? null,
    startedAt: Date.parse(t.startedAt),
    finishedAt: Date.parse(t.finishedAt),
    activity: t.activity,
  });
