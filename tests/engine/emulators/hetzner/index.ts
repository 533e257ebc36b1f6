/**
 * Hetzner Cloud API emulator (issue 22, item 4): the endpoints the picortex resources
 * use, with Hetzner's rules and response shapes.
 *
 * Shapes: hcloud-go v2.44 `hcloud/schema/*.go` (the provider's client version); error
 * bodies `{"error":{"code","message","details"}}` with Hetzner's codes. Rules:
 * - names unique per project per resource kind (server, ssh key, firewall, volume):
 *   409 `uniqueness_error`; SSH keys also unique by fingerprint (MD5 of the key blob);
 * - server type × location availability (CX only in fsn1/nbg1/hel1): 400
 *   `invalid_input` "unsupported location for server type";
 * - delete/rebuild protection: 403 `protected`; rebuild protection needs delete protection;
 * - asynchronous actions: `running`, then `success` after `actionDelayMs` and after the
 *   backend's work (a boot) is done; pollable at /v1/actions/{id}, /v1/actions?id=…, and
 *   /v1/{servers,volumes,firewalls}/actions/{id};
 * - labels: keys `[prefix/]name`, name and value ≤ 63 chars, alphanumeric at both ends,
 *   `hetzner.cloud/` reserved; user_data ≤ 32 KiB;
 * - a firewall applied to a server cannot be deleted (`resource_in_use`), an attached
 *   volume cannot be deleted (`conflict`); volumes attach only in their own location.
 * Every response carries `RateLimit-Limit/Remaining/Reset`; `rateLimit()` makes the next
 * calls answer 429 `rate_limit_exceeded` (with `Retry-After`).
 *
 * The `datacenter` property of servers is not returned: Hetzner removed it after
 * 1 July 2026 (hcloud-go "feat: remove datacenter property from server", #890).
 */
import { createHash, randomBytes } from "node:crypto";
import {
  EmulatorHttpError,
  FaultInjector,
  bearerOf,
  isoSeconds,
  readJson,
  secretEquals,
  serveJson,
  type FaultRule,
  type Handled,
  type LoopbackServer,
  type RecordedRequest,
} from "../http.js";
import { IMAGES, LOCATIONS, SERVER_TYPES, findImage, findLocation, findServerType, imageJson, serverTypeJson, type Location } from "./catalog.js";
import { NoBackend, type ServerBackend } from "./backend.js";
import type { TailscaleEmulator } from "../tailscale/index.js";

export const USER_DATA_LIMIT = 32 * 1024;

export interface HetznerEmulatorOptions {
  /** "none": API state only; "nspawn": every server boots a real host (root needed). */
  boot?: "none" | "nspawn";
  /** Given to the nspawn backend so booted hosts can join that tailnet. */
  tailscale?: TailscaleEmulator;
  /** Minimum time an action stays `running` (default 150 ms). */
  actionDelayMs?: number;
  /** Token to accept (default: 64 random alphanumerics, like a Hetzner API token). */
  token?: string;
  /** A prebuilt backend (tests); overrides `boot`. */
  backend?: ServerBackend;
}

export interface HetznerSnapshot {
  servers: Array<Record<string, unknown>>;
  sshKeys: Array<Record<string, unknown>>;
  firewalls: Array<Record<string, unknown>>;
  volumes: Array<Record<string, unknown>>;
  actions: Array<Record<string, unknown>>;
}

export interface HetznerEmulator {
  /** "http://127.0.0.1:<port>/v1": the provider's `hcloud:endpoint`. */
  endpoint: string;
  port: number;
  token: string;
  backend: ServerBackend;
  /** Every request seen (method, path, body, status). */
  requests: RecordedRequest[];
  snapshot(): HetznerSnapshot;
  /** The user_data a server was created (or last rebuilt) with. */
  userDataOf(serverId: number): string | undefined;
  /** Fault injection: fail the nth matching call (see FaultRule). Returns a remover. */
  fail(rule: Omit<FaultRule, "status" | "body"> & { status?: number; code?: string; message?: string }): () => void;
  /** The next `count` calls (any endpoint) answer 429 with Retry-After `retryAfterSeconds`. */
  rateLimit(count: number, retryAfterSeconds?: number): void;
  /**
   * The nth action with this command (e.g. "create_server", "start_server") from now on
   * ends in status `error` with this code and message, after its work ran (a half-made
   * resource, as a real failed action leaves it). Returns a remover.
   */
  failAction(command: string, opts?: { nth?: number; code?: string; message?: string }): () => void;
  /** Changes how long actions stay running (slow actions). */
  setActionDelay(ms: number): void;
  /** Resolves when every action has finished (success or error). */
  settle(): Promise<void>;
  /** Stops the server, every booted machine, and removes their files; returns leftovers. */
  close(): Promise<string[]>;
}

type Labels = Record<string, string>;

interface ActionRec {
  id: number;
  command: string;
  status: "running" | "success" | "error";
  progress: number;
  started: number;
  finished: number | null;
  error: { code: string; message: string } | null;
  resources: Array<{ id: number; type: string }>;
  done: Promise<void>;
}

interface SshKeyRec {
  id: number;
  name: string;
  fingerprint: string;
  public_key: string;
  labels: Labels;
  created: number;
}

interface FirewallRule {
  direction: "in" | "out";
  source_ips: string[];
  destination_ips: string[];
  protocol: string;
  port: string | null;
  description: string | null;
}

interface FirewallRec {
  id: number;
  name: string;
  labels: Labels;
  created: number;
  rules: FirewallRule[];
  /** Server ids the firewall is applied to directly. */
  servers: number[];
}

interface ServerRec {
  id: number;
  name: string;
  status: "initializing" | "starting" | "running" | "stopping" | "off" | "deleting" | "rebuilding";
  created: number;
  typeName: string;
  location: Location;
  imageName: string;
  ipv4: string | null;
  ipv4Id: number | null;
  ipv6: string | null;
  ipv6Id: number | null;
  labels: Labels;
  protection: { delete: boolean; rebuild: boolean };
  volumes: number[];
  userData: string;
  sshKeys: number[];
  locked: boolean;
}

interface VolumeRec {
  id: number;
  name: string;
  server: number | null;
  status: "creating" | "available";
  location: Location;
  size: number;
  format: "ext4" | "xfs" | null;
  protection: { delete: boolean };
  labels: Labels;
  created: number;
}

// ---------------------------------------------------------------- errors

type Field = { name: string; messages: string[] };

function hzError(status: number, code: string, message: string, details: unknown = null): EmulatorHttpError {
  return new EmulatorHttpError(status, { error: { code, message, details } });
}
const invalidInput = (message: string, fields: Field[] = []) =>
  hzError(400, "invalid_input", message, fields.length > 0 ? { fields } : {});
const notFound = (kind: string, id: string | number) => hzError(404, "not_found", `${kind} with ID '${id}' not found`);
const uniqueness = (field: string, message: string) => hzError(409, "uniqueness_error", message, { fields: [{ name: field }] });

// ---------------------------------------------------------------- validation

const LABEL_NAME = /^(?:[a-zA-Z0-9](?:[-_.a-zA-Z0-9]*[a-zA-Z0-9])?)$/;
const LABEL_PREFIX = /^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

/** Hetzner's label rules (docs: "Labels"); returns the problems found. */
export function labelProblems(labels: unknown): string[] {
  if (labels === undefined || labels === null) return [];
  if (typeof labels !== "object" || Array.isArray(labels)) return ["labels must be an object of strings"];
  const problems: string[] = [];
  for (const [key, value] of Object.entries(labels as Record<string, unknown>)) {
    const slash = key.lastIndexOf("/");
    const prefix = slash >= 0 ? key.slice(0, slash) : null;
    const name = slash >= 0 ? key.slice(slash + 1) : key;
    if (prefix !== null && (prefix.length > 253 || !LABEL_PREFIX.test(prefix))) problems.push(`label key '${key}' has an invalid prefix`);
    if (prefix !== null && (prefix === "hetzner.cloud" || prefix.endsWith(".hetzner.cloud"))) problems.push(`label key '${key}' uses the reserved prefix hetzner.cloud/`);
    if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) problems.push(`label key '${key}' is invalid`);
    if (typeof value !== "string") problems.push(`label '${key}' value must be a string`);
    else if (value.length > 63 || (value.length > 0 && !LABEL_NAME.test(value))) problems.push(`label '${key}' value '${value}' is invalid`);
  }
  return problems;
}

function checkLabels(labels: unknown): Labels {
  const problems = labelProblems(labels);
  if (problems.length > 0) throw invalidInput("invalid input in field 'labels'", [{ name: "labels", messages: problems }]);
  return { ...((labels as Labels | undefined) ?? {}) };
}

const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9](?:[-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*$/;

function requireName(body: Record<string, unknown>, hostname: boolean): string {
  const name = body.name;
  if (typeof name !== "string" || name.length === 0) throw invalidInput("invalid input in field 'name'", [{ name: "name", messages: ["Missing data for required field."] }]);
  if (name.length > 128) throw invalidInput("invalid input in field 'name'", [{ name: "name", messages: ["name is too long"] }]);
  if (hostname && !HOSTNAME.test(name)) throw invalidInput("invalid input in field 'name'", [{ name: "name", messages: ["server name must be a valid hostname"] }]);
  return name;
}

/** Hetzner's SSH key fingerprint: MD5 of the decoded key blob, colon-separated hex. */
export function sshFingerprint(publicKey: string): string | undefined {
  const parts = publicKey.trim().split(/\s+/);
  if (parts.length < 2) return undefined;
  const [type, blob] = parts as [string, string];
  if (!/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)$/.test(type)) return undefined;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return undefined;
  const raw = Buffer.from(blob, "base64");
  // The blob starts with the key type as an SSH string: it must match the text type.
  if (raw.length < 4) return undefined;
  const len = raw.readUInt32BE(0);
  if (raw.subarray(4, 4 + len).toString("latin1") !== type) return undefined;
  return createHash("md5").update(raw).digest("hex").match(/../g)!.join(":");
}

function asObject(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw hzError(400, "json_error", "request body must be a JSON object");
  return body as Record<string, unknown>;
}

function idParam(raw: string, kind: string): number {
  if (!/^\d+$/.test(raw)) throw invalidInput(`invalid ${kind} id '${raw}'`, [{ name: "id", messages: ["not a valid integer"] }]);
  return Number(raw);
}

// ---------------------------------------------------------------- the emulator

export async function startHetznerEmulator(opts: HetznerEmulatorOptions = {}): Promise<HetznerEmulator> {
  const token = opts.token ?? randomAlnum(64);
  let actionDelayMs = opts.actionDelayMs ?? 150;
  let backend: ServerBackend;
  if (opts.backend) backend = opts.backend;
  else if (opts.boot === "nspawn") {
    const { NspawnBackend } = await import("./nspawn-backend.js");
    backend = await NspawnBackend.create({ tailscale: opts.tailscale });
  } else backend = new NoBackend();

  const faults = new FaultInjector();
  let rateLimited = 0;
  let retryAfter = 1;
  const RATE_LIMIT = 3600;
  let remaining = RATE_LIMIT;
  const log: RecordedRequest[] = [];

  let nextId = { action: 4_000_000, ssh_key: 9_000_000, firewall: 1_900_000, server: 60_000_000, volume: 100_000_000, primary_ip: 70_000_000 };
  const take = (k: keyof typeof nextId) => ++nextId[k];
  const actions = new Map<number, ActionRec>();
  const sshKeys = new Map<number, SshKeyRec>();
  const firewalls = new Map<number, FirewallRec>();
  const servers = new Map<number, ServerRec>();
  const volumes = new Map<number, VolumeRec>();
  const timers = new Set<NodeJS.Timeout>();
  let closing = false;
  let actionFaults: Array<{ command: string; nth: number; seen: number; code: string; message: string }> = [];

  // ----- actions

  const delay = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  /**
   * Starts an action that succeeds once `work` has finished and the action delay passed;
   * a rejected `work` ends it in `error` (its message as Hetzner's action error).
   */
  function runAction(command: string, resources: Array<{ id: number; type: string }>, work: () => Promise<void> = async () => {}): ActionRec {
    const rec: ActionRec = {
      id: take("action"),
      command,
      status: "running",
      progress: 0,
      started: Date.now(),
      finished: null,
      error: null,
      resources,
      done: Promise.resolve(),
    };
    const fault = actionFaults.find((f) => f.command === command && ++f.seen === f.nth);
    rec.done = (async () => {
      const results = await Promise.allSettled([delay(actionDelayMs), work()]);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      rec.finished = Date.now();
      if (fault) {
        rec.status = "error";
        rec.error = { code: fault.code, message: fault.message };
      } else if (failed) {
        rec.status = "error";
        rec.error = { code: "action_failed", message: String((failed.reason as Error)?.message ?? failed.reason).slice(0, 2000) };
      } else {
        rec.status = "success";
        rec.progress = 100;
      }
    })();
    actions.set(rec.id, rec);
    return rec;
  }

  const actionJson = (a: ActionRec) => ({
    id: a.id,
    command: a.command,
    status: a.status,
    progress: a.progress,
    started: isoSeconds(a.started, "+00:00"),
    finished: a.finished === null ? null : isoSeconds(a.finished, "+00:00"),
    resources: a.resources,
    error: a.error,
  });

  // ----- serializers (every field hcloud-go's schema has)

  const sshKeyJson = (k: SshKeyRec) => ({ id: k.id, name: k.name, fingerprint: k.fingerprint, public_key: k.public_key, labels: k.labels, created: isoSeconds(k.created, "+00:00") });

  const firewallJson = (f: FirewallRec) => ({
    id: f.id,
    name: f.name,
    labels: f.labels,
    created: isoSeconds(f.created, "+00:00"),
    rules: f.rules,
    applied_to: f.servers.map((id) => ({ type: "server", server: { id } })),
  });

  const serverJson = (s: ServerRec) => {
    const type = findServerType(s.typeName)!;
    const image = findImage(s.imageName)!;
    return {
      id: s.id,
      name: s.name,
      status: s.status,
      created: isoSeconds(s.created, "+00:00"),
      public_net: {
        ipv4: s.ipv4 === null ? null : { id: s.ipv4Id, ip: s.ipv4, blocked: false, dns_ptr: `static.${s.ipv4.split(".").reverse().join(".")}.clients.your-server.de` },
        ipv6: s.ipv6 === null ? null : { id: s.ipv6Id, ip: s.ipv6, blocked: false, dns_ptr: [] },
        floating_ips: [],
        firewalls: [...firewalls.values()].filter((f) => f.servers.includes(s.id)).map((f) => ({ id: f.id, status: "applied" })),
      },
      private_net: [],
      server_type: serverTypeJson(type),
      included_traffic: 21990232555520,
      outgoing_traffic: 0,
      ingoing_traffic: 0,
      backup_window: null,
      rescue_enabled: false,
      iso: null,
      locked: s.locked,
      location: s.location,
      image: imageJson(image),
      protection: { ...s.protection },
      labels: s.labels,
      volumes: [...s.volumes],
      primary_disk_size: type.disk,
      placement_group: null,
      load_balancers: [],
    };
  };

  const volumeJson = (v: VolumeRec) => ({
    id: v.id,
    name: v.name,
    server: v.server,
    status: v.status,
    location: v.location,
    size: v.size,
    format: v.format,
    protection: { ...v.protection },
    labels: v.labels,
    linux_device: `/dev/disk/by-id/scsi-0HC_Volume_${v.id}`,
    created: isoSeconds(v.created, "+00:00"),
  });

  // ----- list helpers: ?name=, ?label_selector=, pagination

  function matchesSelector(labels: Labels, selector: string | null): boolean {
    if (!selector) return true;
    return selector.split(",").every((raw) => {
      const term = raw.trim();
      if (term.startsWith("!")) return !(term.slice(1) in labels);
      const neq = /^([^!=]+)!=(.*)$/.exec(term);
      if (neq) return labels[neq[1]!.trim()] !== neq[2]!.trim();
      const eq = /^([^=]+)==?(.*)$/.exec(term);
      if (eq) return labels[eq[1]!.trim()] === eq[2]!.trim();
      return term in labels;
    });
  }

  function list<T extends { name: string; labels: Labels }>(key: string, items: Iterable<T>, query: URLSearchParams, toJson: (t: T) => unknown): Handled {
    const name = query.get("name");
    const selector = query.get("label_selector");
    const all = [...items].filter((i) => (name === null || i.name === name) && matchesSelector(i.labels, selector));
    return { status: 200, body: { [key]: page(all, query).map(toJson), meta: { pagination: pagination(all.length, query) } } };
  }

  function page<T>(all: T[], query: URLSearchParams): T[] {
    const perPage = Math.min(Math.max(Number(query.get("per_page") ?? 25) || 25, 1), 50);
    const p = Math.max(Number(query.get("page") ?? 1) || 1, 1);
    return all.slice((p - 1) * perPage, p * perPage);
  }

  function pagination(total: number, query: URLSearchParams) {
    const perPage = Math.min(Math.max(Number(query.get("per_page") ?? 25) || 25, 1), 50);
    const p = Math.max(Number(query.get("page") ?? 1) || 1, 1);
    const last = Math.max(Math.ceil(total / perPage), 1);
    return { page: p, per_page: perPage, previous_page: p > 1 ? p - 1 : null, next_page: p < last ? p + 1 : null, last_page: last, total_entries: total };
  }

  function nameTaken<T extends { id: number; name: string }>(items: Map<number, T>, name: string, except?: number): boolean {
    for (const i of items.values()) if (i.name === name && i.id !== except) return true;
    return false;
  }

  const getServer = (id: number) => {
    const s = servers.get(id);
    if (!s) throw notFound("server", id);
    return s;
  };

  // ----- resources

  function createSshKey(body: Record<string, unknown>): Handled {
    const name = requireName(body, false);
    const publicKey = body.public_key;
    if (typeof publicKey !== "string") throw invalidInput("invalid input in field 'public_key'", [{ name: "public_key", messages: ["Missing data for required field."] }]);
    const fingerprint = sshFingerprint(publicKey);
    if (!fingerprint) throw invalidInput("invalid input in field 'public_key'", [{ name: "public_key", messages: ["invalid public key"] }]);
    const labels = checkLabels(body.labels);
    if (nameTaken(sshKeys, name)) throw uniqueness("name", "SSH key with the same name already exists");
    if ([...sshKeys.values()].some((k) => k.fingerprint === fingerprint)) throw uniqueness("public_key", "SSH key with the same fingerprint already exists");
    const rec: SshKeyRec = { id: take("ssh_key"), name, fingerprint, public_key: publicKey.trim(), labels, created: Date.now() };
    sshKeys.set(rec.id, rec);
    return { status: 201, body: { ssh_key: sshKeyJson(rec) } };
  }

  function parseRules(raw: unknown): FirewallRule[] {
    if (raw === undefined) return [];
    if (!Array.isArray(raw)) throw invalidInput("invalid input in field 'rules'", [{ name: "rules", messages: ["must be a list"] }]);
    return raw.map((r, i) => {
      const rule = asObject(r);
      const field = (m: string) => invalidInput(`invalid input in field 'rules'`, [{ name: `rules[${i}]`, messages: [m] }]);
      if (rule.direction !== "in" && rule.direction !== "out") throw field("direction must be in or out");
      if (!["tcp", "udp", "icmp", "esp", "gre"].includes(String(rule.protocol))) throw field("protocol must be tcp, udp, icmp, esp or gre");
      const port = rule.port === undefined || rule.port === null ? null : String(rule.port);
      if ((rule.protocol === "tcp" || rule.protocol === "udp") && port === null) throw field("port is required for tcp and udp");
      if (port !== null && !/^(any|\d{1,5}(-\d{1,5})?)$/.test(port)) throw field(`invalid port '${port}'`);
      const ips = (k: string) => {
        const v = rule[k];
        if (v === undefined || v === null) return [];
        if (!Array.isArray(v) || v.some((x) => typeof x !== "string" || !/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(x))) throw field(`${k} must be a list of CIDRs`);
        return v as string[];
      };
      const source_ips = ips("source_ips");
      const destination_ips = ips("destination_ips");
      if (rule.direction === "in" && source_ips.length === 0) throw field("source_ips is required for direction in");
      if (rule.direction === "out" && destination_ips.length === 0) throw field("destination_ips is required for direction out");
      const description = rule.description === undefined || rule.description === null ? null : String(rule.description);
      return { direction: rule.direction, source_ips, destination_ips, protocol: String(rule.protocol), port, description };
    });
  }

  function applyTo(fw: FirewallRec, raw: unknown, remove: boolean): ActionRec[] {
    if (!Array.isArray(raw)) throw invalidInput(`invalid input in field '${remove ? "remove_from" : "apply_to"}'`);
    const out: ActionRec[] = [];
    for (const r of raw) {
      const res = asObject(r);
      if (res.type !== "server") throw invalidInput("only resources of type server are supported by this emulator", [{ name: "type", messages: [`unsupported type ${String(res.type)}`] }]);
      const sid = Number(asObject(res.server).id);
      getServer(sid);
      if (remove) {
        if (!fw.servers.includes(sid)) throw hzError(422, "firewall_resource_not_found", `firewall ${fw.id} is not applied to server ${sid}`);
        fw.servers = fw.servers.filter((x) => x !== sid);
        out.push(runAction("remove_firewall", [{ id: fw.id, type: "firewall" }, { id: sid, type: "server" }]));
      } else {
        if (fw.servers.includes(sid)) throw hzError(422, "firewall_already_applied", `firewall ${fw.id} is already applied to server ${sid}`);
        fw.servers.push(sid);
        out.push(runAction("apply_firewall", [{ id: fw.id, type: "firewall" }, { id: sid, type: "server" }]));
      }
    }
    return out;
  }

  function createFirewall(body: Record<string, unknown>): Handled {
    const name = requireName(body, false);
    const labels = checkLabels(body.labels);
    const rules = parseRules(body.rules);
    if (nameTaken(firewalls, name)) throw uniqueness("name", "firewall with the same name already exists");
    const rec: FirewallRec = { id: take("firewall"), name, labels, created: Date.now(), rules, servers: [] };
    firewalls.set(rec.id, rec);
    const acts = body.apply_to === undefined ? [] : applyTo(rec, body.apply_to, false);
    return { status: 201, body: { firewall: firewallJson(rec), actions: acts.map(actionJson) } };
  }

  function createServer(body: Record<string, unknown>): Handled {
    const name = requireName(body, true);
    const type = findServerType(body.server_type);
    if (!type) throw invalidInput(`server type ${String(body.server_type)} not found`, [{ name: "server_type", messages: ["server type not found"] }]);
    const image = findImage(body.image);
    if (!image) throw invalidInput(`image ${String(body.image)} not found`, [{ name: "image", messages: ["image not found"] }]);
    if (body.datacenter !== undefined) throw invalidInput("the datacenter property was removed; use location", [{ name: "datacenter", messages: ["removed"] }]);
    const location = body.location === undefined ? findLocation("fsn1")! : findLocation(body.location);
    if (!location) throw invalidInput(`location ${String(body.location)} not found`, [{ name: "location", messages: ["location not found"] }]);
    // The real API answers exactly this (invalid_input, empty details) for e.g. cx23 in ash.
    if (!type.locations.includes(location.name)) throw hzError(400, "invalid_input", "unsupported location for server type", {});
    const labels = checkLabels(body.labels);
    const userData = body.user_data === undefined ? "" : body.user_data;
    if (typeof userData !== "string") throw invalidInput("invalid input in field 'user_data'", [{ name: "user_data", messages: ["must be a string"] }]);
    if (Buffer.byteLength(userData) > USER_DATA_LIMIT) throw invalidInput("invalid input in field 'user_data'", [{ name: "user_data", messages: [`user_data must not be longer than ${USER_DATA_LIMIT} bytes`] }]);
    const keyRefs = body.ssh_keys === undefined ? [] : body.ssh_keys;
    if (!Array.isArray(keyRefs)) throw invalidInput("invalid input in field 'ssh_keys'");
    const keyIds = keyRefs.map((ref) => {
      const k = [...sshKeys.values()].find((x) => x.id === Number(ref) || x.name === ref);
      if (!k) throw invalidInput(`SSH key ${String(ref)} not found`, [{ name: "ssh_keys", messages: ["ssh key not found"] }]);
      return k.id;
    });
    const fwRefs = body.firewalls === undefined ? [] : body.firewalls;
    if (!Array.isArray(fwRefs)) throw invalidInput("invalid input in field 'firewalls'");
    const fws = fwRefs.map((r) => {
      const f = firewalls.get(Number(asObject(r).firewall));
      if (!f) throw invalidInput(`firewall ${String(asObject(r).firewall)} not found`, [{ name: "firewalls", messages: ["firewall not found"] }]);
      return f;
    });
    const volRefs = body.volumes === undefined ? [] : body.volumes;
    if (!Array.isArray(volRefs)) throw invalidInput("invalid input in field 'volumes'");
    const vols = volRefs.map((r) => {
      const v = volumes.get(Number(r));
      if (!v) throw invalidInput(`volume ${String(r)} not found`, [{ name: "volumes", messages: ["volume not found"] }]);
      if (v.server !== null) throw hzError(409, "conflict", `volume ${v.id} is already attached to a server`);
      if (v.location.id !== location.id) throw invalidInput(`volume ${v.id} is in ${v.location.name}, not ${location.name}`);
      return v;
    });
    const pn = body.public_net === undefined ? { enable_ipv4: true, enable_ipv6: true } : asObject(body.public_net);
    if (nameTaken(servers, name)) throw uniqueness("name", "server name is already used");
    const start = body.start_after_create !== false;

    const id = take("server");
    const s: ServerRec = {
      id,
      name,
      status: "initializing",
      created: Date.now(),
      typeName: type.name,
      location,
      imageName: image.name,
      ipv4: pn.enable_ipv4 === false ? null : backend.allocateAddress(id),
      ipv4Id: pn.enable_ipv4 === false ? null : take("primary_ip"),
      // The server's /64, as Hetzner answers `public_net.ipv6.ip` ("2001:db8::/64" in the
      // API reference): hcloud-go parses it with net.ParseCIDR, and the provider sets
      // ipv6_address to its first address ("…::1"). A bare address fails the parse, and the
      // real provider then reports an empty ipv6Address (measured, recordings/).
      ipv6: pn.enable_ipv6 === false ? null : `2001:db8:${(id % 0xffff).toString(16)}::/64`,
      ipv6Id: pn.enable_ipv6 === false ? null : take("primary_ip"),
      labels,
      protection: { delete: false, rebuild: false },
      volumes: vols.map((v) => v.id),
      userData,
      sshKeys: keyIds,
      locked: false,
    };
    servers.set(id, s);
    for (const v of vols) v.server = id;
    for (const f of fws) f.servers.push(id);

    const ref = [{ id, type: "server" }];
    const create = runAction("create_server", ref, async () => {
      if (!start) return;
      await backend.start({ id, name, userData, volumes: s.volumes });
    });
    void create.done.then(() => {
      if (servers.get(id) !== s || s.status !== "initializing") return;
      s.status = create.status === "success" && start ? "running" : "off";
      // A failed create leaves the server off (its machine, if one booted, is stopped).
      if (create.status === "error") pending.add(backend.stop(id).catch(() => undefined));
    });
    const next: ActionRec[] = [];
    if (start) next.push(runAction("start_server", ref, () => create.done));
    for (const f of fws) next.push(runAction("apply_firewall", [{ id: f.id, type: "firewall" }, ...ref], () => create.done));
    for (const v of vols) next.push(runAction("attach_volume", [{ id: v.id, type: "volume" }, ...ref], () => create.done));
    return { status: 201, body: { server: serverJson(s), action: actionJson(create), next_actions: next.map(actionJson), root_password: keyIds.length > 0 ? null : randomAlnum(20) } };
  }

  function deleteServer(s: ServerRec): Handled {
    if (s.protection.delete) throw hzError(403, "protected", "server is delete protected");
    servers.delete(s.id);
    s.status = "deleting";
    for (const f of firewalls.values()) f.servers = f.servers.filter((x) => x !== s.id);
    for (const v of volumes.values()) if (v.server === s.id) v.server = null;
    const a = runAction("delete_server", [{ id: s.id, type: "server" }], () => backend.destroy(s.id));
    return { status: 200, body: { action: actionJson(a) } };
  }

  function serverAction(s: ServerRec, verb: string, body: Record<string, unknown>): Handled {
    const ref = [{ id: s.id, type: "server" }];
    const one = (a: ActionRec, extra: Record<string, unknown> = {}): Handled => ({ status: 201, body: { action: actionJson(a), ...extra } });
    const boot = () => ({ id: s.id, name: s.name, userData: s.userData, volumes: [...s.volumes] });
    switch (verb) {
      case "poweron": {
        if (s.status === "running") return one(runAction("start_server", ref));
        s.status = "starting";
        const a = runAction("start_server", ref, () => backend.start(boot()));
        void a.done.then(() => {
          if (servers.get(s.id) === s) s.status = a.status === "success" ? "running" : "off";
        });
        return one(a);
      }
      case "shutdown":
      case "poweroff": {
        if (s.status === "off") return one(runAction(verb === "shutdown" ? "shutdown_server" : "stop_server", ref));
        s.status = "stopping";
        const a = runAction(verb === "shutdown" ? "shutdown_server" : "stop_server", ref, () => backend.stop(s.id));
        void a.done.then(() => {
          if (servers.get(s.id) === s) s.status = "off";
        });
        return one(a);
      }
      case "reboot":
      case "reset": {
        const a = runAction(verb === "reboot" ? "reboot_server" : "reset_server", ref, async () => {
          await backend.stop(s.id);
          await backend.start(boot());
        });
        return one(a);
      }
      case "change_protection": {
        const del = body.delete === undefined ? s.protection.delete : body.delete;
        const reb = body.rebuild === undefined ? s.protection.rebuild : body.rebuild;
        if (typeof del !== "boolean" || typeof reb !== "boolean") throw invalidInput("delete and rebuild must be booleans");
        if (reb && !del) throw invalidInput("rebuild protection can only be enabled together with delete protection", [{ name: "rebuild", messages: ["requires delete protection"] }]);
        s.protection = { delete: del, rebuild: reb };
        return one(runAction("change_protection", ref));
      }
      case "rebuild": {
        if (s.protection.rebuild) throw hzError(403, "protected", "server is rebuild protected");
        const image = findImage(body.image);
        if (!image) throw invalidInput(`image ${String(body.image)} not found`, [{ name: "image", messages: ["image not found"] }]);
        if (body.user_data !== undefined) {
          if (typeof body.user_data !== "string" || Buffer.byteLength(body.user_data) > USER_DATA_LIMIT) throw invalidInput("invalid input in field 'user_data'");
          s.userData = body.user_data;
        }
        s.imageName = image.name;
        const wasRunning = s.status === "running";
        s.status = "rebuilding";
        const a = runAction("rebuild_server", ref, () => backend.rebuild(boot(), wasRunning));
        void a.done.then(() => {
          if (servers.get(s.id) === s) s.status = wasRunning ? "running" : "off";
        });
        return one(a, { root_password: null });
      }
      case "change_type": {
        const type = findServerType(body.server_type);
        if (!type) throw invalidInput(`server type ${String(body.server_type)} not found`);
        if (s.status !== "off") throw hzError(403, "server_not_stopped", "server must be stopped before changing its type");
        if (!type.locations.includes(s.location.name)) throw hzError(400, "invalid_input", "unsupported location for server type", {});
        s.typeName = type.name;
        return one(runAction("change_server_type", ref));
      }
      default:
        throw hzError(404, "not_found", `server action '${verb}' is not supported by this emulator`);
    }
  }

  function createVolume(body: Record<string, unknown>): Handled {
    const name = requireName(body, false);
    const size = body.size;
    if (typeof size !== "number" || !Number.isInteger(size) || size < 10 || size > 10240) throw invalidInput("invalid input in field 'size'", [{ name: "size", messages: ["size must be an integer from 10 to 10240 (GB)"] }]);
    const labels = checkLabels(body.labels);
    const format = body.format === undefined || body.format === null ? null : body.format;
    if (format !== null && format !== "ext4" && format !== "xfs") throw invalidInput("invalid input in field 'format'", [{ name: "format", messages: ["format must be ext4 or xfs"] }]);
    let server: ServerRec | undefined;
    let location: Location | undefined;
    if (body.server !== undefined && body.server !== null) {
      server = getServer(Number(body.server));
      location = server.location;
    } else {
      location = findLocation(body.location);
      if (!location) throw invalidInput("invalid input in field 'location'", [{ name: "location", messages: ["location or server is required"] }]);
    }
    if (nameTaken(volumes, name)) throw uniqueness("name", "volume name is already used");
    const v: VolumeRec = { id: take("volume"), name, server: null, status: "creating", location, size, format, protection: { delete: false }, labels, created: Date.now() };
    volumes.set(v.id, v);
    const ref = [{ id: v.id, type: "volume" }];
    const a = runAction("create_volume", ref, () => backend.createVolume({ id: v.id, sizeGb: size, format }));
    void a.done.then(() => {
      v.status = "available";
    });
    const next: ActionRec[] = [];
    if (server) {
      const s = server;
      v.server = s.id;
      s.volumes.push(v.id);
      next.push(runAction("attach_volume", [...ref, { id: s.id, type: "server" }], async () => {
        await a.done;
        await backend.attachVolume(v.id, s.id, s.status === "running" || s.status === "initializing");
      }));
    }
    return { status: 201, body: { volume: volumeJson(v), action: actionJson(a), next_actions: next.map(actionJson) } };
  }

  function volumeAction(v: VolumeRec, verb: string, body: Record<string, unknown>): Handled {
    const ref = [{ id: v.id, type: "volume" }];
    const one = (a: ActionRec): Handled => ({ status: 201, body: { action: actionJson(a) } });
    switch (verb) {
      case "attach": {
        const s = getServer(Number(body.server));
        if (v.server !== null) throw hzError(409, "conflict", `volume ${v.id} is already attached to server ${v.server}`);
        if (s.location.id !== v.location.id) throw invalidInput(`volume ${v.id} is in ${v.location.name} and server ${s.id} in ${s.location.name}`, [{ name: "server", messages: ["server and volume must be in the same location"] }]);
        v.server = s.id;
        s.volumes.push(v.id);
        return one(runAction("attach_volume", [...ref, { id: s.id, type: "server" }], () => backend.attachVolume(v.id, s.id, s.status === "running")));
      }
      case "detach": {
        if (v.server === null) return one(runAction("detach_volume", ref));
        const s = servers.get(v.server);
        v.server = null;
        if (s) s.volumes = s.volumes.filter((x) => x !== v.id);
        return one(runAction("detach_volume", s ? [...ref, { id: s.id, type: "server" }] : ref, () => (s ? backend.detachVolume(v.id, s.id, s.status === "running") : Promise.resolve())));
      }
      case "resize": {
        const size = body.size;
        if (typeof size !== "number" || !Number.isInteger(size) || size < v.size || size > 10240) throw invalidInput("invalid input in field 'size'", [{ name: "size", messages: ["a volume can only grow, up to 10240 GB"] }]);
        v.size = size;
        return one(runAction("resize_volume", ref));
      }
      case "change_protection": {
        if (typeof body.delete !== "boolean") throw invalidInput("delete must be a boolean");
        v.protection = { delete: body.delete };
        return one(runAction("change_protection", ref));
      }
      default:
        throw hzError(404, "not_found", `volume action '${verb}' is not supported by this emulator`);
    }
  }

  // ----- router

  const routes: Array<[string, RegExp, (m: RegExpExecArray, body: Record<string, unknown>, q: URLSearchParams) => Handled]> = [
    ["GET", /^\/v1\/locations$/, (_m, _b, q) => ({ status: 200, body: { locations: LOCATIONS.filter((l) => !q.get("name") || l.name === q.get("name")), meta: { pagination: pagination(LOCATIONS.length, q) } } })],
    ["GET", /^\/v1\/locations\/(\d+)$/, (m) => {
      const l = findLocation(Number(m[1]));
      if (!l) throw notFound("location", m[1]!);
      return { status: 200, body: { location: l } };
    }],
    ["GET", /^\/v1\/server_types$/, (_m, _b, q) => {
      const all = SERVER_TYPES.filter((t) => !q.get("name") || t.name === q.get("name"));
      return { status: 200, body: { server_types: all.map(serverTypeJson), meta: { pagination: pagination(all.length, q) } } };
    }],
    ["GET", /^\/v1\/server_types\/(\d+)$/, (m) => {
      const t = findServerType(Number(m[1]));
      if (!t) throw notFound("server_type", m[1]!);
      return { status: 200, body: { server_type: serverTypeJson(t) } };
    }],
    ["GET", /^\/v1\/images$/, (_m, _b, q) => {
      const all = IMAGES.filter((i) => !q.get("name") || i.name === q.get("name"));
      return { status: 200, body: { images: all.map(imageJson), meta: { pagination: pagination(all.length, q) } } };
    }],
    ["GET", /^\/v1\/images\/(\d+)$/, (m) => {
      const i = findImage(Number(m[1]));
      if (!i) throw notFound("image", m[1]!);
      return { status: 200, body: { image: imageJson(i) } };
    }],
    // actions
    ["GET", /^\/v1\/actions$/, (_m, _b, q) => {
      const ids = q.getAll("id").map(Number);
      const all = [...actions.values()].filter((a) => ids.length === 0 || ids.includes(a.id));
      return { status: 200, body: { actions: page(all, q).map(actionJson), meta: { pagination: pagination(all.length, q) } } };
    }],
    ["GET", /^\/v1\/(?:(?:servers|volumes|firewalls)\/)?actions\/(\d+)$/, (m) => {
      const a = actions.get(Number(m[1]));
      if (!a) throw notFound("action", m[1]!);
      return { status: 200, body: { action: actionJson(a) } };
    }],
    ["GET", /^\/v1\/(servers|volumes|firewalls)\/(\d+)\/actions$/, (m, _b, q) => {
      const type = m[1]!.slice(0, -1);
      const all = [...actions.values()].filter((a) => a.resources.some((r) => r.type === type && r.id === Number(m[2])));
      return { status: 200, body: { actions: page(all, q).map(actionJson), meta: { pagination: pagination(all.length, q) } } };
    }],
    // ssh keys
    ["GET", /^\/v1\/ssh_keys$/, (_m, _b, q) => {
      const fp = q.get("fingerprint");
      return list("ssh_keys", [...sshKeys.values()].filter((k) => fp === null || k.fingerprint === fp), q, sshKeyJson);
    }],
    ["POST", /^\/v1\/ssh_keys$/, (_m, b) => createSshKey(b)],
    ["GET", /^\/v1\/ssh_keys\/(\w+)$/, (m) => {
      const k = sshKeys.get(idParam(m[1]!, "ssh_key"));
      if (!k) throw notFound("ssh_key", m[1]!);
      return { status: 200, body: { ssh_key: sshKeyJson(k) } };
    }],
    ["PUT", /^\/v1\/ssh_keys\/(\w+)$/, (m, b) => {
      const k = sshKeys.get(idParam(m[1]!, "ssh_key"));
      if (!k) throw notFound("ssh_key", m[1]!);
      if (b.name !== undefined) {
        const name = requireName(b, false);
        if (nameTaken(sshKeys, name, k.id)) throw uniqueness("name", "SSH key with the same name already exists");
        k.name = name;
      }
      if (b.labels !== undefined) k.labels = checkLabels(b.labels);
      return { status: 200, body: { ssh_key: sshKeyJson(k) } };
    }],
    ["DELETE", /^\/v1\/ssh_keys\/(\w+)$/, (m) => {
      const id = idParam(m[1]!, "ssh_key");
      if (!sshKeys.delete(id)) throw notFound("ssh_key", id);
      return { status: 204 };
    }],
    // firewalls
    ["GET", /^\/v1\/firewalls$/, (_m, _b, q) => list("firewalls", firewalls.values(), q, firewallJson)],
    ["POST", /^\/v1\/firewalls$/, (_m, b) => createFirewall(b)],
    ["GET", /^\/v1\/firewalls\/(\w+)$/, (m) => {
      const f = firewalls.get(idParam(m[1]!, "firewall"));
      if (!f) throw notFound("firewall", m[1]!);
      return { status: 200, body: { firewall: firewallJson(f) } };
    }],
    ["PUT", /^\/v1\/firewalls\/(\w+)$/, (m, b) => {
      const f = firewalls.get(idParam(m[1]!, "firewall"));
      if (!f) throw notFound("firewall", m[1]!);
      if (b.name !== undefined) {
        const name = requireName(b, false);
        if (nameTaken(firewalls, name, f.id)) throw uniqueness("name", "firewall with the same name already exists");
        f.name = name;
      }
      if (b.labels !== undefined) f.labels = checkLabels(b.labels);
      return { status: 200, body: { firewall: firewallJson(f) } };
    }],
    ["DELETE", /^\/v1\/firewalls\/(\w+)$/, (m) => {
      const id = idParam(m[1]!, "firewall");
      const f = firewalls.get(id);
      if (!f) throw notFound("firewall", id);
      if (f.servers.length > 0) throw hzError(422, "resource_in_use", `firewall with ID '${id}' is still in use`);
      firewalls.delete(id);
      return { status: 204 };
    }],
    ["POST", /^\/v1\/firewalls\/(\w+)\/actions\/(set_rules|apply_to_resources|remove_from_resources)$/, (m, b) => {
      const f = firewalls.get(idParam(m[1]!, "firewall"));
      if (!f) throw notFound("firewall", m[1]!);
      if (m[2] === "set_rules") {
        f.rules = parseRules(b.rules ?? []);
        const acts = [runAction("set_firewall_rules", [{ id: f.id, type: "firewall" }]), ...f.servers.map((sid) => runAction("apply_firewall", [{ id: f.id, type: "firewall" }, { id: sid, type: "server" }]))];
        return { status: 201, body: { actions: acts.map(actionJson) } };
      }
      const acts = applyTo(f, m[2] === "apply_to_resources" ? b.apply_to : b.remove_from, m[2] === "remove_from_resources");
      return { status: 201, body: { actions: acts.map(actionJson) } };
    }],
    // servers
    ["GET", /^\/v1\/servers$/, (_m, _b, q) => {
      const status = q.getAll("status");
      return list("servers", [...servers.values()].filter((s) => status.length === 0 || status.includes(s.status)), q, serverJson);
    }],
    ["POST", /^\/v1\/servers$/, (_m, b) => createServer(b)],
    ["GET", /^\/v1\/servers\/(\w+)$/, (m) => ({ status: 200, body: { server: serverJson(getServer(idParam(m[1]!, "server"))) } })],
    ["PUT", /^\/v1\/servers\/(\w+)$/, (m, b) => {
      const s = getServer(idParam(m[1]!, "server"));
      if (b.name !== undefined) {
        const name = requireName(b, true);
        if (nameTaken(servers, name, s.id)) throw uniqueness("name", "server name is already used");
        s.name = name;
      }
      if (b.labels !== undefined) s.labels = checkLabels(b.labels);
      return { status: 200, body: { server: serverJson(s) } };
    }],
    ["DELETE", /^\/v1\/servers\/(\w+)$/, (m) => deleteServer(getServer(idParam(m[1]!, "server")))],
    ["POST", /^\/v1\/servers\/(\w+)\/actions\/([a-z_]+)$/, (m, b) => serverAction(getServer(idParam(m[1]!, "server")), m[2]!, b)],
    // volumes
    ["GET", /^\/v1\/volumes$/, (_m, _b, q) => list("volumes", volumes.values(), q, volumeJson)],
    ["POST", /^\/v1\/volumes$/, (_m, b) => createVolume(b)],
    ["GET", /^\/v1\/volumes\/(\w+)$/, (m) => {
      const v = volumes.get(idParam(m[1]!, "volume"));
      if (!v) throw notFound("volume", m[1]!);
      return { status: 200, body: { volume: volumeJson(v) } };
    }],
    ["PUT", /^\/v1\/volumes\/(\w+)$/, (m, b) => {
      const v = volumes.get(idParam(m[1]!, "volume"));
      if (!v) throw notFound("volume", m[1]!);
      if (b.name !== undefined) {
        const name = requireName(b, false);
        if (nameTaken(volumes, name, v.id)) throw uniqueness("name", "volume name is already used");
        v.name = name;
      }
      if (b.labels !== undefined) v.labels = checkLabels(b.labels);
      return { status: 200, body: { volume: volumeJson(v) } };
    }],
    ["DELETE", /^\/v1\/volumes\/(\w+)$/, (m) => {
      const id = idParam(m[1]!, "volume");
      const v = volumes.get(id);
      if (!v) throw notFound("volume", id);
      if (v.protection.delete) throw hzError(403, "protected", "volume is delete protected");
      if (v.server !== null) throw hzError(409, "conflict", `volume with ID '${id}' is attached to server ${v.server}; detach it first`);
      volumes.delete(id);
      pending.add(backend.deleteVolume(id).catch(() => undefined));
      return { status: 204 };
    }],
    ["POST", /^\/v1\/volumes\/(\w+)\/actions\/([a-z_]+)$/, (m, b) => {
      const v = volumes.get(idParam(m[1]!, "volume"));
      if (!v) throw notFound("volume", m[1]!);
      return volumeAction(v, m[2]!, b);
    }],
  ];
  const pending = new Set<Promise<unknown>>();

  const server: LoopbackServer = await serveJson({
    log,
    readBody: (req) => readJson(req, (msg) => hzError(400, "json_error", msg)),
    internalError: (err) => hzError(500, "server_error", `emulator error: ${err.message}`),
    headers: () => ({
      "ratelimit-limit": String(RATE_LIMIT),
      "ratelimit-remaining": String(remaining),
      "ratelimit-reset": String(Math.floor(Date.now() / 1000) + 3600),
    }),
    handle: ({ req, method, path, query, body }) => {
      if (closing) throw hzError(503, "unavailable", "emulator is shutting down");
      const presented = bearerOf(req);
      if (presented === undefined || !secretEquals(presented, token)) throw hzError(401, "unauthorized", "unable to authenticate");
      if (rateLimited > 0) {
        rateLimited -= 1;
        remaining = 0;
        throw new EmulatorHttpError(
          429,
          { error: { code: "rate_limit_exceeded", message: "limit of 3600 requests per hour reached", details: {} } },
          { "retry-after": String(retryAfter), "ratelimit-remaining": "0" },
        );
      }
      remaining = Math.max(remaining - 1, 0);
      const injected = faults.check(method, path);
      if (injected) throw injected;
      for (const [m, re, fn] of routes) {
        if (m !== method) continue;
        const match = re.exec(path);
        if (match) return fn(match, asObject(body), query);
      }
      throw hzError(404, "not_found", `no route for ${method} ${path}`);
    },
  });

  const snapshot = (): HetznerSnapshot => ({
    servers: [...servers.values()].map(serverJson),
    sshKeys: [...sshKeys.values()].map(sshKeyJson),
    firewalls: [...firewalls.values()].map(firewallJson),
    volumes: [...volumes.values()].map(volumeJson),
    actions: [...actions.values()].map(actionJson),
  });

  return {
    endpoint: `http://127.0.0.1:${server.port}/v1`,
    port: server.port,
    token,
    backend,
    requests: log,
    snapshot,
    userDataOf: (id) => servers.get(id)?.userData,
    fail: (rule) =>
      faults.add({
        ...rule,
        status: rule.status ?? 500,
        body: { error: { code: rule.code ?? "server_error", message: rule.message ?? "injected fault", details: {} } },
      }),
    rateLimit: (count, retryAfterSeconds = 1) => {
      rateLimited = count;
      retryAfter = retryAfterSeconds;
    },
    failAction: (command, o = {}) => {
      const f = { command, nth: o.nth ?? 1, seen: 0, code: o.code ?? "action_failed", message: o.message ?? "injected action failure" };
      actionFaults.push(f);
      return () => {
        actionFaults = actionFaults.filter((x) => x !== f);
      };
    },
    setActionDelay: (ms) => {
      actionDelayMs = ms;
    },
    settle: async () => {
      for (;;) {
        const running = [...actions.values()].filter((a) => a.status === "running");
        if (running.length === 0 && pending.size === 0) return;
        await Promise.allSettled([...running.map((a) => a.done), ...pending]);
        pending.clear();
      }
    },
    close: async () => {
      closing = true;
      await server.close();
      // Let running actions (boots, deletes) finish so nothing is half made, then tear down.
      await Promise.allSettled([...actions.values()].map((a) => a.done));
      await Promise.allSettled([...pending]);
      for (const t of timers) clearTimeout(t);
      return backend.close();
    },
  };
}

function randomAlnum(n: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = randomBytes(n);
  let out = "";
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}
