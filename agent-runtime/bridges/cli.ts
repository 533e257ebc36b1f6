import type { Command } from "commander";
import { apiRequest, type ClientOptions } from "../cli/api-request.js";
import { fail, out } from "../cli/shell.js";
import { terminalJson, terminalLine } from "../cli/terminal-text.js";
import { PicortexError } from "../errors.js";

/** What `GET /v1/bridges` answers (bridges/module.ts). */
export interface BridgesStatus {
  telegram: { state: string; message?: string; username?: string; privacyMode?: boolean } | null;
  webhook: { enabled: boolean; callback: boolean } | null;
  links: Array<{ platform: string; platformChatId: string; chatId: string; title: string | null; mode: string; paused: boolean; approvers?: Array<{ id: string; name: string }> }>;
  toolsWithoutApproval?: string[];
  approvals?: { pending: number; active?: boolean };
  outbox: { pending: number; failed: number };
}

/**
 * Every field of the status is printed through `terminalLine` (cli/terminal-text.ts): group
 * titles, names, usernames, platform chat ids and messages are other people's text, and
 * none of it reaches the terminal as control, direction or invisible characters.
 */
const t = (s: string | null | undefined) => terminalLine(String(s ?? ""));
/** At most `max` characters (code points, never half a surrogate pair). */
const cut = (s: string, max: number) => Array.from(s).slice(0, max).join("");

/** The human summary of a bridges status (pure, for the tests). */
export function formatBridgesStatus(s: BridgesStatus): string[] {
  const lines: string[] = [];
  if (s.telegram) {
    const who = s.telegram.username ? ` as @${t(s.telegram.username)}` : "";
    lines.push(`telegram  ${t(s.telegram.state)}${who}${s.telegram.privacyMode ? " (privacy mode on: it sees only mentions, replies and commands)" : ""}`);
    if (s.telegram.message) lines.push(`          ${t(s.telegram.message)}`);
  } else lines.push("telegram  off");
  lines.push(s.webhook ? `webhook   on${s.webhook.callback ? ", replies POSTed to the callback" : ", replies kept in the chat history (no callbackUrl)"}` : "webhook   off");
  lines.push(`outbox    ${s.outbox.pending} pending, ${s.outbox.failed} failed${s.approvals ? `; ${s.approvals.pending} approval${s.approvals.pending === 1 ? "" : "s"} waiting` : ""}`);
  if (s.links.length === 0) lines.push("no linked groups yet (a group is linked on its first message to the bot)");
  else {
    lines.push("");
    lines.push(`${"platform".padEnd(9)} ${"group".padEnd(16)} ${"chat".padEnd(24)} ${"mode".padEnd(10)} title`);
    for (const l of s.links) {
      const title = cut(t(l.title), 40);
      lines.push(`${t(l.platform).padEnd(9)} ${t(l.platformChatId).padEnd(16)} ${t(l.chatId).padEnd(24)} ${(l.paused ? "paused" : t(l.mode)).padEnd(10)} ${title}`);
      if (l.approvers?.length) lines.push(`          approvers: ${l.approvers.map((a) => `${cut(t(a.name), 40)} (${t(a.id)})`).join(", ")}`);
    }
  }
  if (s.links.some((l) => l.approvers?.length) && s.approvals?.active === false) lines.push("approvals are OFF: turns.permissionMode is not dontAsk, so no one is asked");
  else if (s.links.some((l) => l.approvers?.length) && s.toolsWithoutApproval) lines.push(`run without approval: ${s.toolsWithoutApproval.map(t).join(", ") || "(none)"}`);
  return lines;
}

/** `--json`: the API's document, with C1 controls and direction/invisible characters escaped (cli/terminal-text.ts). */
export const bridgesStatusJson = (s: BridgesStatus): string => terminalJson(s);

export function registerBridgesCommands(program: Command): void {
  program
    .command("bridges")
    .description("Show the messaging bridges of a running runtime: Telegram's polling state, the webhook, linked groups with their approvers, what waits in the outbox and for approval.")
    .option("--url <url>", "runtime URL, for a runtime elsewhere (default: $PICORTEX_URL, else the running runtime's endpoint record in the data dir)")
    .option("--data-dir <dir>", "runtime data dir holding api-token and endpoint.json (default: $PICORTEX_DATA_DIR, else the nearest .picortex here or above)")
    .option("--json", "print the status as JSON (the API's shape)")
    .action(async (_opts: unknown, command: Command) => {
      const opts = command.optsWithGlobals() as ClientOptions;
      try {
        let status: BridgesStatus;
        try {
          status = (await (await apiRequest(opts, "GET", "/v1/bridges")).json()) as BridgesStatus;
        } catch (err) {
          if (err instanceof PicortexError && err.code === "http_404" || (err instanceof PicortexError && err.code === "not_found"))
            throw new PicortexError(
              "invalid_input",
              "no_bridges",
              "No bridge is on in this runtime. Turn one on with bridges.telegram.enabled + tokenFile (or bridges.webhook.enabled + secretFile) in its config; on a host, set picortex:telegramBotToken (or picortex:webhookSecret) and run `pulumi up`. See docs/bridges.md.",
            );
          throw err;
        }
        if (opts.json) return void out(bridgesStatusJson(status));
        for (const line of formatBridgesStatus(status)) out(line);
      } catch (err) {
        fail(err, { prefix: "picortex bridges", json: opts.json });
      }
    });
}
