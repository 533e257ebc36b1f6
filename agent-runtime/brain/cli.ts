import type { Command } from "commander";
import { Option } from "commander";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadBrainClientConfig, type BrainClientConfig } from "../config/brain.js";
import { ConfigError, loadRuntimeConfig } from "../config/load.js";
import { fail as shellFail, out } from "../cli/shell.js";
import { openDatabase } from "../store/database.js";
import { writeFileAtomic } from "../store/atomic-file.js";
import { BrainError, SyncError } from "./shared/errors.js";
import { ENTRY_KINDS, splitList, type EntryKind, type RecordInput } from "./shared/entry.js";
import { formatEntry, formatListLine, formatRecall, formatStatus } from "./shared/format.js";
import { entryJson, recallJson } from "./shared/json-shapes.js";
import { openBrain, openSyncClient, type OpenBrain } from "./client/open.js";
import { BrainServerStore } from "./server/server-store.js";
import type { RecallOptions } from "./shared/service.js";
import { DEFAULT_RETRY } from "./client/sync-client.js";
import { registerBrainMcpInstall } from "../cli/brain-mcp.js";

/**
 * `picortex brain …`: the CLI entry. It is the only brain code that touches
 * process.env/cwd (through config/brain.ts) and the only place that prints.
 */
interface JsonFlag {
  json?: boolean;
  dataDir?: string;
}

/** The data dir flag every local-store brain command takes (the store rule: config/brain.ts). */
const DATA_DIR_HELP = "the runtime data dir whose brain.sqlite to use (default: $PICORTEX_DATA_DIR, else the nearest .picortex here or above, else ~/.picortex)";

/** What a CLI user does about a refused sync token (the server's message is for HTTP clients). */
const BRAIN_TOKEN_HINT =
  "This brain server does not know the token in $PICORTEX_BRAIN_TOKEN or ~/.picortex/brain-token (or it was revoked): on the runtime host run `picortex brain token create --workspace <id> --out FILE` and put the new token in ~/.picortex/brain-token (0600).";

/**
 * Exit codes (cli/shell.ts): 1 = operation failed (sync failed), 2 = bad input, unknown name or
 * configuration. A name that does not exist is the caller's input, as `chat show nope` (exit 2).
 */
function fail(err: unknown, json: boolean | undefined): never {
  return shellFail(err, { prefix: "picortex brain", json });
}

function withBrain<O extends JsonFlag>(fn: (brain: OpenBrain, config: BrainClientConfig, opts: O, args: string[]) => void | Promise<void>) {
  return async (...actionArgs: unknown[]) => {
    // commander passes positional args, then options, then the command.
    const opts = actionArgs[actionArgs.length - 2] as O;
    const positional = actionArgs.slice(0, -2).flat() as string[];
    let brain: OpenBrain | undefined;
    try {
      const config = loadBrainClientConfig(process.env, process.cwd(), { dataDir: opts.dataDir });
      brain = openBrain(config, (w) => process.stderr.write(`picortex brain: warning: ${w}\n`));
      await fn(brain, config, opts, positional);
    } catch (err) {
      brain?.close();
      fail(err, opts.json);
    }
    brain?.close();
  };
}

function parseKind(value: string | undefined): EntryKind | undefined {
  if (value === undefined) return undefined;
  if (!(ENTRY_KINDS as readonly string[]).includes(value)) throw new BrainError("invalid_input", `--kind must be one of ${ENTRY_KINDS.join(", ")} (got ${value}).`);
  return value as EntryKind;
}

function parseIntFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new BrainError("invalid_input", `${name} must be a whole number (got ${value}).`);
  return Number(value);
}

/** `--since 7d`, `12h`, `30m` or an ISO date. */
export function parseSince(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const rel = /^(\d+)([mhdw])$/.exec(value);
  if (rel) return now - Number(rel[1]) * { m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[rel[2] as "m" | "h" | "d" | "w"];
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new BrainError("invalid_input", `--since must be like 7d, 12h, 30m or an ISO date (got ${value}).`);
  return t;
}

interface FilterFlags extends JsonFlag {
  org?: boolean;
  agent?: string;
  kind?: string;
  tags?: string;
  since?: string;
  limit?: string;
  all?: boolean;
}

function filterOptions(o: FilterFlags): RecallOptions {
  return {
    org: o.org,
    agent: o.agent,
    kind: parseKind(o.kind),
    tags: o.tags ? splitList(o.tags) : undefined,
    since: parseSince(o.since),
    all: o.all,
    limit: parseIntFlag("--limit", o.limit),
  };
}

interface RecordFlags extends JsonFlag {
  title?: string;
  summary?: string;
  conclusion?: string;
  kind?: string;
  agent?: string;
  tags?: string;
  refs?: string;
  confidence?: string;
}

function recordInput(o: RecordFlags): RecordInput {
  if (!o.title) throw new BrainError("invalid_input", "--title is required.");
  let confidence: number | null = null;
  if (o.confidence !== undefined) {
    confidence = Number(o.confidence);
    if (!Number.isFinite(confidence)) throw new BrainError("invalid_input", `--confidence must be a number from 0 to 1 (got ${o.confidence}).`);
  }
  return {
    title: o.title,
    summary: o.summary ?? "",
    conclusion: o.conclusion ?? "",
    kind: parseKind(o.kind) ?? "note",
    ...(o.agent ? { agent: o.agent } : {}),
    tags: splitList(o.tags),
    refs: splitList(o.refs),
    confidence,
  };
}

const addRecordFlags = (cmd: Command, titleRequired: boolean) =>
  cmd
    .option("--title <text>", titleRequired ? "short title (required)" : "title of the replacement entry to record")
    .option("--summary <text>", "what was done")
    .option("--conclusion <text>", "what was learned: the part later agents need")
    .addOption(new Option("--kind <kind>", "entry kind").choices([...ENTRY_KINDS]))
    .option("--agent <name>", "who recorded it (default: $PICORTEX_AGENT or config)")
    .option("--tags <a,b>", "comma-separated tags")
    .option("--refs <x,y>", "comma-separated references (issues, commits, URLs)")
    .option("--confidence <0..1>", "how sure the conclusion is");

const addFilterFlags = (cmd: Command) =>
  cmd
    .option("--org", "the whole workspace instead of this repo")
    .option("--agent <name>", "only entries by this agent")
    .addOption(new Option("--kind <kind>", "only this kind").choices([...ENTRY_KINDS]))
    .option("--tags <a,b>", "only entries with all of these tags")
    .option("--since <when>", "only entries updated since (7d, 12h, 30m or an ISO date)")
    .option("--all", "include superseded entries");

export function registerBrainCommands(program: Command): void {
  const brain = program
    .command("brain")
    .description("Shared, compounding knowledge: record what agents learn, recall it before planning, sync it through the runtime.")
    .addHelpText(
      "after",
      "\nLocal store: $PICORTEX_BRAIN_DB, else <data dir>/brain.sqlite by the data dir rule of every client (--data-dir, $PICORTEX_DATA_DIR, the nearest .picortex: the store the chats use), else ~/.picortex/brain.sqlite.\nScope: workspace id per org; project id per repo (git origin), or the chats' (picortex-chats) in a runtime's store.\nSync: $PICORTEX_BRAIN_URL + token in $PICORTEX_BRAIN_TOKEN or ~/.picortex/brain-token (0600).",
    );

  addRecordFlags(brain.command("record").description("Record an experiment, decision, insight or note."), true)
    .option("--json", "print {entry} as JSON")
    .action(
      withBrain<RecordFlags>((b, _c, o) => {
        const entry = b.service.record(recordInput(o));
        out(o.json ? JSON.stringify({ entry: entryJson(entry) }) : `Recorded ${entry.entryId}: ${entry.title}`);
      }),
    );

  addFilterFlags(brain.command("recall").description("Search the brain (BM25-ranked, conclusion first). Defaults to this repo.").argument("[query...]", "words to search for"))
    .option("--limit <n>", "how many results (default 10)")
    .option("--json", "print {query, matched, scope, results[]} as JSON")
    .action(
      withBrain<FilterFlags>((b, c, o, args) => {
        const query = args.join(" ");
        const result = b.service.recall(query, filterOptions(o));
        const scope = o.org ? `workspace ${c.workspaceId}` : `project ${c.projectId}`;
        if (o.json) out(JSON.stringify({ ...recallJson(query, result), scope: { workspaceId: c.workspaceId, projectId: o.org ? null : c.projectId } }));
        else out(formatRecall(query, result, scope));
      }),
    );

  addFilterFlags(brain.command("list").description("List recent entries, newest first."))
    .option("--limit <n>", "how many entries (default 20)")
    .option("--json", "print {entries[]} as JSON")
    .action(
      withBrain<FilterFlags>((b, _c, o) => {
        const entries = b.service.list(filterOptions(o));
        if (o.json) out(JSON.stringify({ entries: entries.map(entryJson) }));
        else out(entries.length ? entries.map(formatListLine).join("\n") : "No entries.");
      }),
    );

  brain
    .command("show")
    .description("Show one entry by its exact id.")
    .argument("<id>", "entry id")
    .option("--json", "print {entry} as JSON")
    .action(
      withBrain<JsonFlag>((b, _c, o, [id]) => {
        const entry = b.service.show(id!);
        out(o.json ? JSON.stringify({ entry: entryJson(entry) }) : formatEntry(entry));
      }),
    );

  addRecordFlags(
    brain
      .command("supersede")
      .description("Mark an entry superseded: by an existing entry (--by) or by a new one recorded now (--title …).")
      .argument("<id>", "entry to supersede")
      .option("--by <id>", "existing entry that replaces it"),
    false,
  )
    .option("--json", "print {superseded, replacement} as JSON")
    .action(
      withBrain<RecordFlags & { by?: string }>((b, _c, o, [id]) => {
        if (o.by && o.title) throw new BrainError("invalid_input", "Give either --by <id> or --title for a new entry, not both.");
        if (!o.by && !o.title) throw new BrainError("invalid_input", "Give --by <id> (an existing entry) or --title … to record the replacement.");
        const r = b.service.supersede(id!, o.by ? { entryId: o.by } : { record: recordInput(o) });
        if (o.json) out(JSON.stringify({ superseded: entryJson(r.superseded), replacement: entryJson(r.replacement) }));
        else out(`${r.superseded.entryId} is now superseded by ${r.replacement.entryId} (${r.replacement.title})`);
      }),
    );

  brain
    .command("delete")
    .description("Delete an entry (a tombstone that syncs, so it disappears on every machine).")
    .argument("<id>", "entry id")
    .option("--json", "print {entry} (the tombstone) as JSON")
    .action(
      withBrain<JsonFlag>((b, _c, o, [id]) => {
        const entry = b.service.remove(id!);
        out(o.json ? JSON.stringify({ entry: entryJson(entry) }) : `Deleted ${entry.entryId}`);
      }),
    );

  brain
    .command("sync")
    .description("Push local entries to the runtime and pull everyone else's. Exits 1 if the server cannot be reached.")
    .option("--push", "only push")
    .option("--pull", "only pull")
    .option("--retries <n>", "attempts per request on network or server errors", String(DEFAULT_RETRY.attempts))
    .option("--json", "print {ok, pushed, pulled, …} or {ok:false, error} as JSON")
    .action(
      withBrain<JsonFlag & { push?: boolean; pull?: boolean; retries?: string }>(async (b, c, o) => {
        if (o.push && o.pull) throw new BrainError("invalid_input", "Give --push or --pull, or neither for both.");
        const attempts = Math.max(1, parseIntFlag("--retries", o.retries) ?? DEFAULT_RETRY.attempts);
        const client = openSyncClient(
          b,
          c,
          { ...DEFAULT_RETRY, attempts },
          (err, delay) => process.stderr.write(`picortex brain: ${err.message} retrying in ${delay} ms\n`),
          // Progress goes to stderr so --json output on stdout stays one object.
          (p) => process.stderr.write(`picortex brain: ${p.phase === "push" ? "pushed" : "pulled"} ${p.done} entries so far${p.cursor === undefined ? "" : ` (cursor ${p.cursor})`}\n`),
          (message) => process.stderr.write(`picortex brain: warning: ${message}\n`),
        );
        const direction = o.push ? "push" : o.pull ? "pull" : "both";
        try {
          const r = await client.sync(direction);
          if (r.clockSkewMs) {
            const min = Math.round(Math.abs(r.clockSkewMs) / 60_000);
            process.stderr.write(
              `picortex brain: this machine's clock is ${min} min ${r.clockSkewMs < 0 ? "behind" : "ahead of"} the brain server's; pushed entries were given the server's time. Fix the clock (e.g. \`timedatectl set-ntp true\`).\n`,
            );
          }
          if (o.json) out(JSON.stringify({ ok: true, direction, ...r }));
          else
            out(
              `Synced with ${c.serverUrl}: pushed ${r.pushed} (${r.pushIgnored} already there${r.restamped ? `, ${r.restamped} re-stamped and pushed again` : ""}${r.superseded ? `, ${r.superseded} lost to newer edits` : ""}), pulled ${r.pulled}; ${r.pending} pending.`,
            );
        } catch (err) {
          if (!(err instanceof SyncError)) throw err;
          const pending = b.repo.pendingCount(c.workspaceId);
          if (err.kind === "unauthorized") err.message = `${err.message}. ${BRAIN_TOKEN_HINT}`;
          if (o.json) out(JSON.stringify({ ok: false, direction, error: { kind: err.kind, message: err.message }, pending }));
          else process.stderr.write(`picortex brain: sync failed: ${err.message}\n  local brain is intact; ${pending} entries stay pending.\n`);
          b.close();
          process.exit(1);
        }
      }),
    );

  brain
    .command("status")
    .description("Show the local store, scope, pending pushes and last sync.")
    .option("--json", "print the status as JSON")
    .action(
      withBrain<JsonFlag>((b, c, o) => {
        const s = {
          dbPath: c.dbPath,
          workspaceId: c.workspaceId,
          projectId: c.projectId,
          projectSource: c.projectSource,
          agent: c.agent,
          nodeId: b.nodeId,
          serverUrl: c.serverUrl ?? null,
          entries: b.repo.countEntries(c.workspaceId),
          ...statusOf(b, c),
        };
        out(o.json ? JSON.stringify(s) : formatStatus(s));
      }),
    );

  const mcp = brain
    .command("mcp")
    .description("Serve record/recall as MCP tools over stdio (for Claude Code, Codex, OpenCode, Hermes).")
    .option("--data-dir <dir>", DATA_DIR_HELP)
    .action(async (o: { dataDir?: string }) => {
      let config: BrainClientConfig;
      try {
        config = loadBrainClientConfig(process.env, process.cwd(), { dataDir: o.dataDir });
      } catch (err) {
        fail(err, false);
      }
      const { runBrainMcpServer } = await import("./shared/mcp.js");
      const b = openBrain(config, (w) => process.stderr.write(`picortex brain mcp: warning: ${w}\n`));
      await runBrainMcpServer(b.service);
      b.close();
    });
  registerBrainMcpInstall(mcp); // `brain mcp install`: cli/brain-mcp.ts (issue 16 item 8)
  for (const sub of brain.commands) {
    if (sub.name() === "token" || sub.name() === "mcp") continue;
    sub.option("--data-dir <dir>", DATA_DIR_HELP);
  }

  registerTokenCommands(brain);
}

function statusOf(b: OpenBrain, c: BrainClientConfig) {
  const pending = b.repo.pendingCount(c.workspaceId);
  const cursor = Number(b.repo.getMeta(`pull_cursor:${c.workspaceId}`) ?? "0");
  const last = b.repo.getMeta(`last_sync_at:${c.workspaceId}`);
  return {
    pending,
    cursor,
    lastSyncAt: last ? Number(last) : null,
    lastError: b.repo.getMeta(`last_error:${c.workspaceId}`) || null,
  };
}

interface ServerFlags extends JsonFlag {
  config?: string;
  dataDir?: string;
}

/** Token management runs on the runtime host, against the runtime's database. */
function withServerStore<O extends ServerFlags>(fn: (store: BrainServerStore, opts: O, args: string[]) => void) {
  return (...actionArgs: unknown[]) => {
    const opts = actionArgs[actionArgs.length - 2] as O;
    const positional = actionArgs.slice(0, -2).flat() as string[];
    try {
      const config = loadRuntimeConfig({ file: opts.config, overrides: { dataDir: opts.dataDir } });
      // The runtime's own database only: never start an empty one in some other folder.
      // Nor one beside a lost one (0 bytes): that would hide the loss (see store/data-dir.ts).
      if (!existsSync(join(config.dataDir, "runtime.sqlite")) || statSync(join(config.dataDir, "runtime.sqlite")).size === 0) {
        throw new ConfigError(
          `No runtime database at ${join(config.dataDir, "runtime.sqlite")}: run this on the runtime host, in the folder where the runtime runs (or above it), or pass --data-dir DIR (or PICORTEX_DATA_DIR).`,
        );
      }
      const db = openDatabase(join(config.dataDir, "runtime.sqlite"));
      try {
        fn(new BrainServerStore(db), opts, positional);
      } finally {
        db.close();
      }
    } catch (err) {
      fail(err, opts.json);
    }
  };
}

function registerTokenCommands(brain: Command): void {
  const token = brain.command("token").description("Issue, list and revoke sync tokens (run on the runtime host; each token grants one workspace).");
  const serverFlags = (cmd: Command) =>
    cmd.option("-c, --config <file>", "runtime JSON config (default: $PICORTEX_CONFIG)").option("--data-dir <dir>", "runtime data directory");

  serverFlags(token.command("create").description("Create a token for one workspace; it is shown once (or written to --out, mode 0600)."))
    .requiredOption("--workspace <id>", "workspace the token may read and write")
    .option("--label <text>", "what the token is for (e.g. the machine)", "")
    .option("--out <file>", "write the token to this file (0600) instead of printing it")
    .option("--json", "print {tokenId, workspaceId, token|tokenFile} as JSON")
    .action(
      withServerStore<ServerFlags & { workspace: string; label: string; out?: string }>((store, o) => {
        const parsed = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/.test(o.workspace);
        if (!parsed) throw new BrainError("invalid_input", `--workspace ${JSON.stringify(o.workspace)} is not a valid workspace id.`);
        const { token: secret, info } = store.createToken(o.workspace, o.label);
        if (o.out) writeFileAtomic(o.out, secret + "\n", 0o600);
        if (o.json) out(JSON.stringify({ tokenId: info.tokenId, workspaceId: info.workspaceId, ...(o.out ? { tokenFile: o.out } : { token: secret }) }));
        else if (o.out) out(`Token ${info.tokenId} for workspace ${info.workspaceId} written to ${o.out} (0600).`);
        else out(`Token ${info.tokenId} for workspace ${info.workspaceId} (shown once; store it 0600 in ~/.picortex/brain-token):\n${secret}`);
      }),
    );

  serverFlags(token.command("list").description("List tokens (never their secrets)."))
    .option("--json", "print {tokens[]} as JSON")
    .action(
      withServerStore<ServerFlags>((store, o) => {
        const tokens = store.listTokens();
        if (o.json) out(JSON.stringify({ tokens }));
        else
          out(
            tokens.length
              ? tokens.map((t) => `${t.tokenId}  ${t.workspaceId}  ${t.revokedAt ? "revoked" : "active "}  ${t.label}`).join("\n")
              : "No brain tokens.",
          );
      }),
    );

  serverFlags(token.command("revoke").description("Revoke a token by its id.").argument("<tokenId>", "token id from `token list`"))
    .option("--json", "print {revoked} as JSON")
    .action(
      withServerStore<ServerFlags>((store, o, [id]) => {
        const revoked = store.revokeToken(id!);
        if (!revoked) throw new BrainError("not_found", `No active token with id ${id}.`);
        out(o.json ? JSON.stringify({ revoked: id }) : `Revoked ${id}.`);
      }),
    );
}
