import { apiRequest as request, type ClientOptions } from "../cli/api-request.js";
import { fail, out } from "../cli/shell.js";
import { PicortexError } from "../errors.js";
import { TurnPrinter, chatWarnings, formatChatHistory, type TurnView } from "../cli/turn-output.js";
import { terminalJson as json, terminalLine as line } from "../cli/terminal-text.js";
import { randomUUID } from "node:crypto";
import { sseEvents } from "../http/sse-reader.js";
import type { Command } from "commander";
import { CHAT_ID_PATTERN } from "../host/contract.js";

/**
 * `picortex chat …`: a thin client of the runtime's turns API. The API token comes
 * from $PICORTEX_API_TOKEN or <data dir>/api-token, never from argv (visible in ps).
 * What the runtime answers is printed through cli/terminal-text.ts (`line` for a field,
 * `json` for --json): chats carry other people's text, which must not drive the terminal.
 */
const CHAT_ID_HELP = "chat id: 2-24 lowercase letters, digits and single hyphens, starting with a letter (e.g. team-alpha)";

/** The chat-id grammar, checked before any request, so the message is about the argument, not an HTTP body. */
function checkChatId(id: string): string {
  if (!CHAT_ID_PATTERN.test(id)) {
    throw new PicortexError("invalid_input", "bad_request", `${JSON.stringify(id)} is not a chat id: use 2-24 lowercase letters, digits and single hyphens, starting with a letter (e.g. team-alpha).`);
  }
  return id;
}

/** How long `chat send` keeps following its turn through runtime restarts before giving up. */
const FOLLOW_TIMEOUT_MS = Number(process.env.PICORTEX_FOLLOW_TIMEOUT_MS ?? 15 * 60_000);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries a request the runtime never answered (it is restarting); safe for idempotent ones only. */
async function retryWhileRestarting(send: () => Promise<Response>): Promise<Response> {
  const deadline = Date.now() + FOLLOW_TIMEOUT_MS;
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    try {
      return await send();
    } catch (err) {
      const code = err instanceof PicortexError ? err.code : "";
      const restarting = code === "unreachable" || /^http_50[234]$/.test(code);
      if (!restarting || Date.now() + delay > deadline) throw err;
      if (!process.env.PICORTEX_QUIET_RETRY) process.stderr.write(`picortex chat: ${(err as Error).message}; retrying in ${delay} ms\n`);
      await pause(delay);
    }
  }
}

/**
 * Follows a turn's event stream to its final state. When the stream breaks (the runtime
 * restarted), it reconnects and keeps following: the turn is durable and is run again
 * after a restart, so the final result arrives later instead of "terminated".
 * `onEvent` returns the final turn; `onReconnect` is told whether text was shown before.
 */
async function followTurn(
  opts: ClientOptions,
  eventsPath: string,
  onEvent: (event: string, data: any) => TurnView | undefined,
  onReconnect: (sawText: boolean) => void,
): Promise<TurnView | undefined> {
  let sawText = false;
  let warned = false;
  const deadline = Date.now() + FOLLOW_TIMEOUT_MS;
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    try {
      const events = await request(opts, "GET", eventsPath, undefined, "text/event-stream");
      if (warned) onReconnect(sawText);
      for await (const { event, data } of readSse(events)) {
        if (event === "text") sawText = true;
        const final = onEvent(event, data);
        if (final) return final;
      }
    } catch (err) {
      // The runtime was up a moment ago: while it restarts it is unreachable, or (between a
      // clean stop and the next start) has no endpoint record; both pass.
      if (err instanceof PicortexError && err.code !== "unreachable" && err.code !== "not_running" && !err.code.startsWith("http_5")) throw err;
    }
    if (Date.now() + delay > deadline) throw new PicortexError("unavailable", "unreachable", `Lost the runtime while following the turn (${eventsPath}) and it did not come back within ${Math.round(FOLLOW_TIMEOUT_MS / 1000)} s; check it with \`picortex chat show\`.`);
    if (!warned && !process.env.PICORTEX_QUIET_RETRY) process.stderr.write(`\npicortex chat: the connection to the runtime broke; following the turn until it finishes\n`);
    warned = true;
    await pause(delay);
  }
}

/** Yields `{event, data}` from the runtime's SSE streams, whose data is always JSON. */
async function* readSse(res: Response): AsyncGenerator<{ event: string; data: any }> {
  for await (const { event, data } of sseEvents(res.body as unknown as AsyncIterable<Uint8Array>)) {
    yield { event, data: JSON.parse(data) };
  }
}

function action<A extends unknown[]>(fn: (opts: ClientOptions, ...args: A) => Promise<void>) {
  return async (...actionArgs: unknown[]) => {
    const command = actionArgs[actionArgs.length - 1] as Command;
    const opts = command.optsWithGlobals() as ClientOptions;
    try {
      await fn(opts, ...(actionArgs.slice(0, -2) as A));
    } catch (err) {
      fail(err, { prefix: "picortex chat", json: opts.json });
    }
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

export function registerTurnsCommands(program: Command): void {
  const chat = program
    .command("chat")
    .description("Manage chats and send turns through a running runtime (each chat: its own user, workspace and Claude session).")
    .option("--url <url>", "runtime URL, for a runtime elsewhere (default: $PICORTEX_URL, else the running runtime's endpoint record in the data dir)")
    .option("--data-dir <dir>", "runtime data dir holding api-token and endpoint.json (default: $PICORTEX_DATA_DIR, else the nearest .picortex here or above)")
    .option("--json", "machine-readable output (one JSON document)");

  chat
    .command("create")
    .description("Create a chat: provisions its user, home and Claude settings, showing progress.")
    .argument("<id>", CHAT_ID_HELP)
    .option("--budget <tokens>", "token budget (input + output) for this chat")
    .action(
      action(async (opts, id: string) => {
        checkChatId(id);
        const budget = (chat.commands.find((c) => c.name() === "create")!.opts() as { budget?: string }).budget;
        const body = { id, ...(budget ? { budgetTokens: Number(budget) } : {}) };
        const res = await request(opts, "POST", "/v1/chats", body, "text/event-stream");
        for await (const { event, data } of readSse(res)) {
          if (event === "progress" && !opts.json) process.stderr.write(`  [${line(String(data.step))} ${Math.round(data.progress * 100)}%] ${line(String(data.message))}\n`);
          if (event === "ready" || event === "failed") {
            if (opts.json) out(json(data));
            else out(line(event === "ready" ? `chat ${data.id} ready (${data.isolation})` : `chat ${data.id} failed: ${data.error}`));
            if (!opts.json) for (const w of chatWarnings(data)) process.stderr.write(`picortex chat: warning: ${w}\n`);
            if (event === "failed") process.exit(1);
          }
        }
      }),
    );

  chat
    .command("list")
    .description("List chats.")
    .option("--all", "include deleted chats (their history is kept)")
    .action(
      action(async (opts) => {
        const all = (chat.commands.find((c) => c.name() === "list")!.opts() as { all?: boolean }).all;
        const data = (await (await request(opts, "GET", `/v1/chats${all ? "?all=1" : ""}`)).json()) as { chats: any[] };
        if (opts.json) return void out(json(data));
        if (data.chats.length === 0) return void out("no chats (create one with `picortex chat create <id>`)");
        for (const c of data.chats) {
          out(line(`${String(c.id).padEnd(24)} ${String(c.status).padEnd(12)} ${c.warm ? "warm" : "cold"}  tokens ${c.usage.inputTokens + c.usage.outputTokens}${c.budgetTokens ? `/${c.budgetTokens}` : ""}`));
        }
      }),
    );

  chat
    .command("show")
    .description("Show a chat and its recent messages.")
    .argument("<id>", CHAT_ID_HELP)
    .action(
      action(async (opts, id: string) => {
        checkChatId(id);
        const c = (await (await request(opts, "GET", `/v1/chats/${encodeURIComponent(id)}`)).json()) as any;
        const m = (await (await request(opts, "GET", `/v1/chats/${encodeURIComponent(id)}/messages`)).json()) as { messages: any[] };
        const t = (await (await request(opts, "GET", `/v1/chats/${encodeURIComponent(id)}/turns`)).json()) as { turns: TurnView[] };
        if (opts.json) return void out(json({ chat: c, messages: m.messages, turns: t.turns }));
        out(line(`${c.id}: ${c.status}, ${c.isolation}, tokens ${c.usage.inputTokens}+${c.usage.outputTokens}${c.budgetTokens ? ` of ${c.budgetTokens}` : ""}`));
        if (c.notice) out(`notice: ${line(String(c.notice))}`);
        for (const line of formatChatHistory(m.messages, t.turns)) out(line);
      }),
    );

  chat
    .command("send")
    .description("Send a turn and print the reply as it streams (text from the arguments, or stdin with `-`).")
    .argument("<id>", CHAT_ID_HELP)
    .argument("<text...>", "the message; `-` reads it from stdin")
    .option("--sender <name>", "who wrote it (shown in the history)")
    .option("--no-wait", "only queue the turn and print its id")
    .action(
      action(async (opts, id: string, words: string[]) => {
        checkChatId(id);
        const sub = chat.commands.find((c) => c.name() === "send")!.opts() as { sender?: string; wait: boolean };
        const text = words.length === 1 && words[0] === "-" ? await readStdin() : words.join(" ");
        const body = { text, ...(sub.sender ? { sender: sub.sender } : {}) };
        // One key per `send`: a resend after a lost answer (runtime restart) gets the same turn back.
        const key = { "idempotency-key": randomUUID() };
        const res = await retryWhileRestarting(() => request(opts, "POST", `/v1/chats/${encodeURIComponent(id)}/turns`, body, "application/json", key));
        const turn = (await res.json()) as { id: string; eventsPath: string };
        if (!sub.wait) return void out(opts.json ? json(turn) : line(String(turn.id)));
        // Output and progress: cli/turn-output.ts (never an empty reply; a status line on a TTY only).
        const newPrinter = () =>
          new TurnPrinter({
            stdout: (t) => process.stdout.write(t),
            stderr: (t) => process.stderr.write(t),
            progress: Boolean(process.stderr.isTTY),
            json: Boolean(opts.json),
          });
        let printer = newPrinter();
        let final: TurnView | undefined;
        try {
          // Follows the turn across runtime restarts (issue 18): after a reconnect a fresh
          // printer prints the final reply whole, since the turn may be answered again.
          final = await followTurn(opts, turn.eventsPath, (event, data) => printer.handle(event, data), (sawText) => {
            printer.stop();
            if (sawText && !opts.json) process.stdout.write("\n");
            printer = newPrinter();
          });
        } finally {
          printer.stop();
        }
        if (!final) throw new PicortexError("failed", "stream_closed", `The runtime closed the event stream of turn ${turn.id} before it finished; see \`picortex chat show ${id}\`.`);
        if (final.status !== "done") process.exit(1);
      }),
    );

  chat
    .command("budget")
    .description("Set (or with `none`, remove) a chat's token budget.")
    .argument("<id>", CHAT_ID_HELP)
    .argument("<tokens>", "a positive integer, or `none`")
    .action(
      action(async (opts, id: string, tokens: string) => {
        checkChatId(id);
        const budgetTokens = tokens === "none" ? null : Number(tokens);
        if (budgetTokens !== null && !(Number.isInteger(budgetTokens) && budgetTokens > 0)) throw new PicortexError("invalid_input", "invalid_input", "tokens must be a positive integer or `none`");
        const c = (await (await request(opts, "PUT", `/v1/chats/${encodeURIComponent(id)}/budget`, { budgetTokens })).json()) as any;
        out(opts.json ? json(c) : line(`chat ${c.id}: budget ${c.budgetTokens ?? "none"}`));
      }),
    );

  chat
    .command("delete")
    .description("Delete a chat: removes its user; archives or removes the workspace (turns.onDelete); keeps history unless --purge.")
    .argument("<id>", CHAT_ID_HELP)
    .option("--purge", "also delete the message history")
    .action(
      action(async (opts, id: string) => {
        checkChatId(id);
        const purge = (chat.commands.find((c) => c.name() === "delete")!.opts() as { purge?: boolean }).purge;
        const r = (await (await request(opts, "DELETE", `/v1/chats/${encodeURIComponent(id)}${purge ? "?purge=1" : ""}`)).json()) as any;
        out(opts.json ? json(r) : line(`chat ${r.id} deleted${r.archivePath ? `; workspace archived to ${r.archivePath}` : ""}${r.purged ? "; history purged" : ""}`));
      }),
    );
}
