/**
 * Keeping the provider doubles honest (issue 22 item 3): the engine's own gRPC debug log
 * (`PULUMI_DEBUG_GRPC=<file>`, one JSON object per call: method, request, response,
 * errors; requests and responses in protobuf JSON) of a scenario run against the REAL
 * providers is normalised and committed under tests/engine/recordings/; the same
 * scenario run against the doubles is normalised the same way and compared with it,
 * answer by answer and field by field.
 *
 * Only the engine -> resource provider calls that decide what the engine does are kept:
 * Check (checked inputs, failures), Diff (changes, replaces, diffs, detailedDiff,
 * deleteBeforeReplace), Create, Read, Update (properties, id, inputs), Delete and
 * Invoke (errors). Calls are keyed by method, URN (or function token), preview flag and
 * their ordinal for that key, because the engine runs independent resources in parallel
 * and the interleaving differs from run to run; the order per key does not.
 *
 * Normalisation (so a recording holds no run-specific value and no secret):
 *  - the values of secrets (`{4dabf…: 1b47…, value}`) become "<secret>", the wrapper stays
 *    (whether an output is secret is compared);
 *  - every value the caller names (API token, API key, endpoints with their ports, the
 *    operator's key) becomes its placeholder;
 *  - ids and id references (fields named id, serverId, volumeId, firewallIds, sshKeys, …),
 *    addresses (ipv4Address, ipv6Address, ipv6Network), timestamps, MD5 fingerprints,
 *    SHA-1/SHA-256 hex digests, Tailscale auth keys, SSH public keys, 127.0.0.1 ports
 *    and the lane's temporary folder become typed placeholders ("<id>", "<time>", …);
 *  - a text of 64+ characters the answer echoes from the call's request (cloud-config,
 *    command scripts: the program's, not the provider's) becomes "<echoed from the request>";
 *  - the engine's unknown sentinel becomes "<unknown>", auto-names' random suffix
 *    "-<random>", base64 SHA-1 digests (hcloud's userData) "<sha1-base64>".
 */
import { readFileSync } from "node:fs";

export const SIG = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
/** The engine's "unknown during preview" sentinel: kept apart from any value. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export const RECORDED_METHODS = ["Configure", "Check", "Diff", "Create", "Read", "Update", "Delete", "Invoke"] as const;

export interface RecordedCall {
  /** `<Method> <urn or token>[ (preview)] #<n>` */
  key: string;
  provider: string;
  method: string;
  /** The answer (normalised); absent when the call failed. */
  response?: unknown;
  /** The error messages the engine got (normalised). */
  errors?: string[];
}

interface LogEntry {
  method?: string;
  request?: Record<string, unknown>;
  response?: Record<string, unknown>;
  errors?: string[];
  /** "request_started" (the request alone) or "response_completed" (both). */
  progress?: string;
  /** The plugin the call went to ({name: "hcloud", kind: "resource", mode: "client"}). */
  metadata?: { name?: string };
}

const ID_FIELDS = new Set(["id", "ipv4", "ipv6", "serverId", "volumeId", "firewallId", "firewallIds", "sshKeys", "keyId", "nodeId", "deviceId"]);
const ADDRESS_FIELDS = new Set(["ipv4Address", "ipv6Address", "ipv6Network", "ip"]);

export interface NormaliseOptions {
  /** Exact run-specific values -> placeholder (longest first). */
  values?: Record<string, string>;
  /** Long texts the engine sent in this call's request (program-derived: cloud-config, scripts). */
  echoed?: Set<string>;
}

/** Strings of 64+ characters anywhere in a request (secret or not). */
function longStrings(v: unknown, out = new Set<string>()): Set<string> {
  if (typeof v === "string" && v.length >= 64) out.add(v);
  else if (Array.isArray(v)) v.forEach((x) => longStrings(x, out));
  else if (v && typeof v === "object") Object.values(v).forEach((x) => longStrings(x, out));
  return out;
}

function normaliseString(s: string, o: NormaliseOptions): string {
  let out = s;
  const vals = Object.entries(o.values ?? {})
    .filter(([v]) => v.length >= 4)
    .sort((a, b) => b[0].length - a[0].length);
  for (const [v, ph] of vals) out = out.split(v).join(ph);
  return out
    .replace(/tskey-[a-z]+-[A-Za-z0-9-]+/g, "<tskey>")
    .replace(/ssh-(ed25519|rsa) AAAA[A-Za-z0-9+/=]+( [^\s"]+)?/g, "<ssh-public-key>")
    .replace(/\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?/g, "<time>")
    .replace(/\b([0-9a-f]{2}:){15}[0-9a-f]{2}\b/g, "<fingerprint>")
    .replace(/\b[0-9a-f]{64}\b/g, "<sha256>")
    .replace(/\b[0-9a-f]{40}\b/g, "<sha1>")
    .replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:<port>")
    .replace(/\/tmp\/picortex-engine-[A-Za-z0-9]+/g, "<lane>");
}

export function normaliseValue(v: unknown, o: NormaliseOptions, field?: string): unknown {
  if (v === UNKNOWN) return "<unknown>";
  // A long text the provider echoes from the request (the program's cloud-config or
  // command scripts): compared as "echoed", so a template change needs no re-recording.
  if (typeof v === "string" && o.echoed?.has(v)) return "<echoed from the request>";
  // Auto-names end in a random 7-hex suffix drawn from the engine's seed (differs per run).
  if (field === "name" && typeof v === "string" && /^.+-[0-9a-f]{7}$/.test(v)) return `${v.slice(0, -8)}-<random>`;
  // The TailnetKey's description ends in a per-stack random suffix (12 hex).
  if (field === "description" && typeof v === "string" && /^.+ [0-9a-f]{12}$/.test(v)) return `${v.slice(0, -12)}<hex12>`;
  // hcloud keeps userData as base64(SHA-1) of the cloud-config, which holds a fresh key.
  if (typeof v === "string" && /^[A-Za-z0-9+/]{27}=$/.test(v)) return "<sha1-base64>";
  if (v && typeof v === "object" && !Array.isArray(v) && (v as Record<string, unknown>)[SIG] === SECRET_SIG) {
    return { [SIG]: SECRET_SIG, value: "<secret>" };
  }
  if (field && ID_FIELDS.has(field) && (typeof v === "number" || (typeof v === "string" && v !== ""))) return typeof v === "number" ? "<id:number>" : "<id>";
  if (field && ADDRESS_FIELDS.has(field) && typeof v === "string" && v !== "") return "<address>";
  if (Array.isArray(v)) return v.map((x) => normaliseValue(x, o, field));
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, normaliseValue((v as Record<string, unknown>)[k], o, k)]),
    );
  }
  if (typeof v === "string") return normaliseString(v, o);
  return v;
}

function providerOf(urnOrTok: string): string {
  // urn:pulumi:<stack>::<project>::<parent$>type::name ; tokens are pkg:module:Name
  const type = urnOrTok.startsWith("urn:") ? (urnOrTok.split("::")[2] ?? "").split("$").pop() ?? "" : urnOrTok;
  return type.split(":")[0] ?? "";
}

/** The parts of an answer the engine acts on, per method. */
function answer(method: string, res: Record<string, unknown> | undefined): unknown {
  if (!res) return undefined;
  const pick = (...ks: string[]) => Object.fromEntries(ks.filter((k) => res[k] !== undefined).map((k) => [k, res[k]]));
  switch (method) {
    case "Configure":
      return pick("acceptSecrets", "acceptResources", "acceptOutputs", "supportsPreview", "supportsAutonamingConfiguration");
    case "Check":
      return pick("inputs", "failures");
    case "Diff":
      return pick("changes", "replaces", "diffs", "detailedDiff", "deleteBeforeReplace", "stables", "hasDetailedDiff");
    case "Create":
      return pick("id", "properties");
    case "Read":
      return pick("id", "properties", "inputs");
    case "Update":
      return pick("properties");
    case "Invoke":
      return pick("return", "failures");
    default:
      return {};
  }
}

/** The provider calls of one PULUMI_DEBUG_GRPC log (text), normalised and keyed. */
export function providerCalls(logText: string, o: NormaliseOptions = {}): RecordedCall[] {
  const counts = new Map<string, number>();
  const out: RecordedCall[] = [];
  for (const line of logText.split("\n")) {
    if (!line.trim()) continue;
    let e: LogEntry;
    try {
      e = JSON.parse(line) as LogEntry;
    } catch {
      continue; // a line cut by a killed process
    }
    const m = /^\/pulumirpc\.ResourceProvider\/(\w+)$/.exec(e.method ?? "");
    if (!m || !(RECORDED_METHODS as readonly string[]).includes(m[1]!)) continue;
    // Each unary call is logged twice: when it starts, and with its answer.
    if (e.progress === "request_started") continue;
    const method = m[1]!;
    const req = e.request ?? {};
    // Configure has no URN: it is keyed by the plugin's name (whether it accepts secrets decides what the engine sends).
    const subject = String(method === "Invoke" ? req.tok ?? "" : method === "Configure" ? `${e.metadata?.name ?? "?"}:config` : req.urn ?? "");
    const preview = req.preview === true ? " (preview)" : "";
    const base = `${method} ${normaliseString(subject, o)}${preview}`;
    const n = (counts.get(base) ?? 0) + 1;
    counts.set(base, n);
    const call: RecordedCall = { key: `${base} #${n}`, provider: providerOf(subject), method };
    if (e.errors && e.errors.length > 0) call.errors = e.errors.map((x) => normaliseString(x, o));
    else call.response = normaliseValue(answer(method, e.response), { ...o, echoed: longStrings(req) });
    out.push(call);
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export function readCalls(file: string, o: NormaliseOptions = {}): RecordedCall[] {
  return providerCalls(readFileSync(file, "utf8"), o);
}

/**
 * The lane's gRPC log without the `excluded` byte ranges ([from, to) marks of
 * grpcLogMark): a non-deterministic step (a kill -9 mid-up) is left out of both the
 * recording and the comparison. The ordinals are counted on what is kept, so both sides
 * count alike.
 */
export function keptLog(buf: Buffer, excluded: Array<[number, number]> = []): string {
  const parts: Buffer[] = [];
  let at = 0;
  for (const [from, to] of [...excluded].sort((a, b) => a[0] - b[0])) {
    if (from < at || to < from) throw new Error(`bad excluded range [${from}, ${to})`);
    parts.push(buf.subarray(at, from));
    at = to;
  }
  parts.push(buf.subarray(at));
  // A range boundary is always between two whole operations (no call in flight), so each part ends a line.
  return parts.map((b) => b.toString("utf8")).join("\n");
}

/** A recording: the normalised calls, one JSON object per line (diffable in review). */
export function formatRecording(calls: RecordedCall[]): string {
  return calls.map((c) => JSON.stringify(c)).join("\n") + "\n";
}
export function parseRecording(text: string): RecordedCall[] {
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as RecordedCall);
}

export interface Difference {
  key: string;
  /** JSON path inside the answer ("" for a missing or extra call). */
  path: string;
  recorded: unknown;
  actual: unknown;
}

/** A difference the doubles are allowed to keep, with the reason written down. */
export interface KnownDifference {
  key: RegExp;
  path: RegExp;
  why: string;
  /**
   * When set, the difference is tolerated only when this says the two values are the
   * same in every part the provider decides (e.g. the same output once the number of
   * progress dots a timing-dependent wait printed is left out). It is checked at the
   * node `path` names (a whole list or text), before the walk goes into it; without it,
   * any value at a matching leaf is tolerated.
   */
  equivalent?: (recorded: unknown, actual: unknown) => boolean;
  /**
   * The real provider itself answers differently from run to run here (timing, a Go map's
   * order): the tolerance applies to a real provider compared with its own recording
   * too. Without it, a real provider is compared with no tolerance.
   */
  inherent?: boolean;
}

type Tolerate = (key: string, path: string, a: unknown, b: unknown) => KnownDifference | undefined;

function walkDiff(key: string, path: string, a: unknown, b: unknown, out: Difference[], tolerated: Array<Difference & { why: string }>, atNode: Tolerate): void {
  if (JSON.stringify(a) === JSON.stringify(b)) return;
  const kd = atNode(key, path, a, b);
  if (kd) {
    tolerated.push({ key, path, recorded: a, actual: b, why: kd.why });
    return;
  }
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of [...keys].sort()) walkDiff(key, `${path}.${k}`, (a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], out, tolerated, atNode);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((x, i) => walkDiff(key, `${path}[${i}]`, x, b[i], out, tolerated, atNode));
    return;
  }
  out.push({ key, path, recorded: a, actual: b });
}

/**
 * Field-by-field comparison of the recorded (real provider) calls with the actual
 * (double) calls of the same scenario, restricted to `providers`. A missing or extra
 * call is a difference too. A provider named in `realProviders` ran for real: only the
 * `inherent` known differences apply to its calls.
 */
export function compareCalls(
  recorded: RecordedCall[],
  actual: RecordedCall[],
  opts: { providers?: string[]; known?: KnownDifference[]; realProviders?: string[] } = {},
): { differences: Difference[]; tolerated: Array<Difference & { why: string }> } {
  const keep = (c: RecordedCall) => !opts.providers || opts.providers.includes(c.provider);
  const rec = new Map(recorded.filter(keep).map((c) => [c.key, c]));
  const act = new Map(actual.filter(keep).map((c) => [c.key, c]));
  const all: Difference[] = [];
  const tolerated: Array<Difference & { why: string }> = [];
  const provider = new Map<string, string>();
  const applies = (kd: KnownDifference, key: string) => kd.inherent === true || !(opts.realProviders ?? []).includes(provider.get(key) ?? "");
  const atNode: Tolerate = (key, path, a, b) => (opts.known ?? []).find((x) => x.equivalent && applies(x, key) && x.key.test(key) && x.path.test(path) && x.equivalent(a, b));
  for (const k of [...new Set([...rec.keys(), ...act.keys()])].sort()) {
    const r = rec.get(k);
    const a = act.get(k);
    provider.set(k, (r ?? a)!.provider);
    if (!r || !a) {
      all.push({ key: k, path: "", recorded: r ? "call" : "no call", actual: a ? "call" : "no call" });
      continue;
    }
    walkDiff(k, "errors", r.errors, a.errors, all, tolerated, atNode);
    walkDiff(k, "response", r.response, a.response, all, tolerated, atNode);
  }
  const differences: Difference[] = [];
  for (const d of all) {
    const kd = (opts.known ?? []).find((x) => !x.equivalent && applies(x, d.key) && x.key.test(d.key) && x.path.test(d.path));
    if (kd) tolerated.push({ ...d, why: kd.why });
    else differences.push(d);
  }
  return { differences, tolerated };
}

export function formatDifferences(ds: Difference[]): string {
  return ds.map((d) => `${d.key} ${d.path || "(call)"}: real ${JSON.stringify(d.recorded)} | double ${JSON.stringify(d.actual)}`).join("\n");
}
