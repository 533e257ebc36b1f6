import type { z } from "zod";

/**
 * A schema issue's message as a person should read it. zod reports a bad record key as
 * "Invalid key in record" and keeps the key schema's own message ("a Telegram chat id such
 * as …") inside; a failed union keeps each branch's reason inside too. Those inner messages
 * say what to write, so they are the ones shown.
 */
export function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_key") {
    const inner = issue.issues.find((i) => i.message && !/^Invalid/.test(i.message));
    return `${inner?.message ?? issue.message} (the key)`;
  }
  if (issue.code === "invalid_union") {
    const custom = issue.errors.flat().find((i) => i.code === "custom" || (i.message && !/^Invalid/.test(i.message) && !/^expected/.test(i.message)));
    if (custom) return custom.message;
  }
  return issue.message;
}
