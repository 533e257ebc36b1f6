/**
 * Tailscale API emulator (issue 22, item 5): auth keys and devices of one tailnet, with
 * the control plane's rules, plus the join endpoint the stand-in `tailscale up` on a
 * booted host calls.
 *
 * Shapes: tailscale-client-go-v2 `keys.go` (Key) and `devices.go` (Device), the client the
 * terraform/pulumi tailscale provider uses. Rules:
 * - keys: `capabilities.devices.create.{reusable,ephemeral,preauthorized,tags}`,
 *   `expirySeconds` (default 90 days, max 90 days), `description` ≤ 50 characters; the
 *   secret `key` is returned only by the create call; a GET of an expired or spent key
 *   answers `invalid: true` (the provider keeps it in state with recreateIfInvalid never);
 *   DELETE revokes (then GET is 404);
 * - joining: an unknown, revoked, expired or spent (single-use, already used) key is
 *   refused; advertised tags must be a subset of the key's tags; a preauthorized key gives
 *   an authorized device; a hostname already taken by a registered device (online or
 *   not) gets `<name>-1`, `-2`, … as the real control plane names it, while the OS host
 *   name stays as sent;
 * - devices: GET /api/v2/tailnet/-/devices, GET/DELETE /api/v2/device/{id}.
 * Auth: `Authorization: Bearer <apiKey>` or HTTP basic with the key as user name, as the
 * client libraries send it; errors are `{"message": …}` with the HTTP status.
 *
 * Name resolution (MagicDNS stand-in): `resolve(name)` maps `<name>` or
 * `<name>.<tailnet>.ts.net` to the addresses of the device whose name is that, exactly as
 * MagicDNS would: after a replacement that became `picortex-1`, `picortex` still resolves
 * to the old device until it is deleted.
 */
import { randomBytes, randomInt } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { EmulatorHttpError, FaultInjector, bearerOf, isoSeconds, readJson, secretEquals, serveJson, type FaultRule, type Handled, type RecordedRequest } from "../http.js";

export const TAILNET_DNS_SUFFIX = "tail0e1a2b.ts.net";
const DEFAULT_EXPIRY_SECONDS = 90 * 24 * 3600;

export interface TailscaleKeyRecord {
  id: string;
  key: string;
  description: string;
  created: number;
  expires: number;
  revoked: number | null;
  reusable: boolean;
  ephemeral: boolean;
  preauthorized: boolean;
  tags: string[];
  /** Joins made with this key. */
  uses: number;
}

export interface TailscaleDeviceRecord {
  id: string;
  nodeId: string;
  /** Tailnet short name (`picortex`, `picortex-1`). */
  shortName: string;
  hostname: string;
  addresses: string[];
  /** Where the node is reachable from this machine (the booted host's veth address). */
  endpoint: string | null;
  tags: string[];
  authorized: boolean;
  ephemeral: boolean;
  sshEnabled: boolean;
  created: number;
  keyId: string;
  os: string;
}

export interface JoinRequest {
  authKey: string;
  hostname: string;
  tags?: string[];
  ssh?: boolean;
  os?: string;
}

export interface JoinHook {
  (device: TailscaleDeviceRecord, remoteAddress: string | undefined): Promise<void> | void;
}

export interface TailscaleEmulator {
  /** "http://127.0.0.1:<port>": the provider's `tailscale:baseUrl`. */
  baseUrl: string;
  port: number;
  apiKey: string;
  tailnetDnsSuffix: string;
  requests: RecordedRequest[];
  snapshot(): { keys: Array<Record<string, unknown>>; devices: Array<Record<string, unknown>> };
  /** Registers a device with a key, as a node's `tailscale up` does (throws TailscaleJoinError). */
  join(req: JoinRequest, remoteAddress?: string): Promise<TailscaleDeviceRecord>;
  /** MagicDNS stand-in: tailnet addresses of the device named `name` (short or FQDN). */
  resolve(name: string): string[] | undefined;
  /** Serves the API (and the join endpoint) on another local address, e.g. a booted host's veth end. */
  listenOn(host: string): Promise<{ url: string; close(): Promise<void> }>;
  /** Called after every successful join (the nspawn backend routes the tailnet address). */
  onJoin(hook: JoinHook): () => void;
  fail(rule: Omit<FaultRule, "status" | "body"> & { status?: number; message?: string }): () => void;
  rateLimit(count: number, retryAfterSeconds?: number): void;
  /** Moves the emulator's clock (key expiry) forward. */
  advanceClock(seconds: number): void;
  close(): Promise<void>;
}

export class TailscaleJoinError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "TailscaleJoinError";
  }
}

const tsError = (status: number, message: string) => new EmulatorHttpError(status, { message });

const TAG = /^tag:[a-zA-Z][-a-zA-Z0-9]*$/;

export async function startTailscaleEmulator(opts: { apiKey?: string } = {}): Promise<TailscaleEmulator> {
  const apiKey = opts.apiKey ?? `tskey-api-k${hex(8)}CNTRL-${hex(16)}`;
  const keys = new Map<string, TailscaleKeyRecord>();
  const devices = new Map<string, TailscaleDeviceRecord>();
  const hooks = new Set<JoinHook>();
  const faults = new FaultInjector();
  const log: RecordedRequest[] = [];
  let rateLimited = 0;
  let retryAfter = 1;
  let clockOffsetMs = 0;
  // A random start, so two emulators on one machine (other sessions' runs) never route the same address.
  let nextIp = 1 + randomInt(0, 1 << 20);
  const now = () => Date.now() + clockOffsetMs;

  const keyJson = (k: TailscaleKeyRecord, withSecret: boolean, expirySeconds?: number) => ({
    id: k.id,
    keyType: "auth",
    ...(withSecret ? { key: k.key } : {}),
    description: k.description,
    ...(expirySeconds !== undefined ? { expirySeconds } : {}),
    created: isoSeconds(k.created, "Z"),
    updated: isoSeconds(k.created, "Z"),
    expires: isoSeconds(k.expires, "Z"),
    ...(k.revoked !== null ? { revoked: isoSeconds(k.revoked, "Z") } : {}),
    invalid: keyProblem(k) !== null,
    capabilities: { devices: { create: { reusable: k.reusable, ephemeral: k.ephemeral, preauthorized: k.preauthorized, tags: [...k.tags] } } },
    tags: [...k.tags],
    userId: "uEMULATOR11CNTRL",
  });

  function keyProblem(k: TailscaleKeyRecord): string | null {
    if (k.revoked !== null) return "revoked";
    if (now() >= k.expires) return "expired";
    if (!k.reusable && k.uses > 0) return "already used";
    return null;
  }

  const deviceJson = (d: TailscaleDeviceRecord) => ({
    addresses: [...d.addresses],
    id: d.id,
    nodeId: d.nodeId,
    user: d.tags.length > 0 ? "tagged-devices" : "emulator@example.com",
    name: `${d.shortName}.${TAILNET_DNS_SUFFIX}`,
    hostname: d.hostname,
    clientVersion: "1.102.5-emulator",
    updateAvailable: false,
    os: d.os,
    created: isoSeconds(d.created, "Z"),
    lastSeen: isoSeconds(now(), "Z"),
    keyExpiryDisabled: d.tags.length > 0,
    expires: d.tags.length > 0 ? "0001-01-01T00:00:00Z" : isoSeconds(d.created + 180 * 24 * 3600 * 1000, "Z"),
    authorized: d.authorized,
    isExternal: false,
    machineKey: `mkey:${d.nodeId.padEnd(64, "0").slice(0, 64)}`,
    nodeKey: `nodekey:${d.id.padEnd(64, "0").slice(0, 64)}`,
    blocksIncomingConnections: false,
    enabledRoutes: [],
    advertisedRoutes: [],
    clientConnectivity: null,
    tags: [...d.tags],
    tailnetLockError: "",
    tailnetLockKey: "",
    isEphemeral: d.ephemeral,
    connectedToControl: true,
    sshEnabled: d.sshEnabled,
  });

  function createKey(body: unknown): Handled {
    if (typeof body !== "object" || body === null) throw tsError(400, "request body must be a JSON object");
    const b = body as Record<string, unknown>;
    const create = ((b.capabilities as Record<string, unknown> | undefined)?.devices as Record<string, unknown> | undefined)?.create as Record<string, unknown> | undefined;
    if (!create || typeof create !== "object") throw tsError(400, "capabilities.devices.create is required");
    const tags = create.tags === undefined || create.tags === null ? [] : create.tags;
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string" || !TAG.test(t))) throw tsError(400, `invalid tags: ${JSON.stringify(tags)}; tags look like tag:name`);
    const expirySeconds = b.expirySeconds === undefined || b.expirySeconds === 0 ? DEFAULT_EXPIRY_SECONDS : b.expirySeconds;
    if (typeof expirySeconds !== "number" || !Number.isInteger(expirySeconds) || expirySeconds < 1 || expirySeconds > DEFAULT_EXPIRY_SECONDS) {
      throw tsError(400, `expirySeconds must be an integer from 1 to ${DEFAULT_EXPIRY_SECONDS}`);
    }
    const description = b.description === undefined ? "" : b.description;
    if (typeof description !== "string" || description.length > 50 || !/^[\x20-\x7e]*$/.test(description)) {
      throw tsError(400, "description must be at most 50 printable ASCII characters");
    }
    const flag = (v: unknown) => v === true;
    const id = `k${hex(6).toUpperCase()}CNTRL`;
    const created = now();
    const rec: TailscaleKeyRecord = {
      id,
      key: `tskey-auth-${id}-${hex(16)}`,
      description,
      created,
      expires: created + expirySeconds * 1000,
      revoked: null,
      reusable: flag(create.reusable),
      ephemeral: flag(create.ephemeral),
      preauthorized: flag(create.preauthorized),
      tags: [...(tags as string[])],
      uses: 0,
    };
    keys.set(id, rec);
    return { status: 200, body: keyJson(rec, true, expirySeconds) };
  }

  function uniqueShortName(hostname: string): string {
    const base = hostname.toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/^-+|-+$/g, "").slice(0, 63) || "device";
    const taken = new Set([...devices.values()].map((d) => d.shortName));
    if (!taken.has(base)) return base;
    for (let i = 1; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
  }

  async function join(req: JoinRequest, remoteAddress?: string): Promise<TailscaleDeviceRecord> {
    if (typeof req.authKey !== "string" || typeof req.hostname !== "string" || req.hostname.length === 0) {
      throw new TailscaleJoinError(400, "authKey and hostname are required");
    }
    const presented = req.authKey.trim();
    const k = [...keys.values()].find((x) => secretEquals(presented, x.key));
    if (!k) throw new TailscaleJoinError(401, "invalid key: unable to validate API key");
    const problem = keyProblem(k);
    if (problem) throw new TailscaleJoinError(401, `invalid key: ${problem}`);
    const tags = req.tags ?? [];
    const notAllowed = tags.filter((t) => !k.tags.includes(t));
    if (notAllowed.length > 0) throw new TailscaleJoinError(403, `requested tags [${notAllowed.join(" ")}] are invalid or not permitted`);
    k.uses += 1;
    let n = nextIp++;
    if (n % 256 === 0) n = nextIp++;
    const id = String(1_000_000_000_000 + Math.floor(Math.random() * 1e12));
    const device: TailscaleDeviceRecord = {
      id,
      nodeId: `n${hex(6).toUpperCase()}CNTRL`,
      shortName: uniqueShortName(req.hostname),
      hostname: req.hostname,
      addresses: [`100.${64 + Math.floor(n / 65536)}.${Math.floor(n / 256) % 256}.${n % 256}`, `fd7a:115c:a1e0::${n.toString(16)}`],
      endpoint: remoteAddress ?? null,
      tags: tags.length > 0 ? [...tags] : [...k.tags],
      authorized: k.preauthorized,
      ephemeral: k.ephemeral,
      sshEnabled: req.ssh === true,
      created: now(),
      keyId: k.id,
      os: req.os ?? "linux",
    };
    devices.set(id, device);
    for (const h of hooks) await h(device, remoteAddress);
    return device;
  }

  const route = async (method: string, path: string, body: unknown, req: IncomingMessage): Promise<Handled> => {
    let m: RegExpExecArray | null;
    // Any tailnet name is this one tailnet ("-" is the API key's own, as the providers default).
    path = path.replace(/^\/api\/v2\/tailnet\/[^/]+\//, "/api/v2/tailnet/-/");
    if (method === "POST" && path === "/api/v2/tailnet/-/keys") return createKey(body);
    if (method === "GET" && path === "/api/v2/tailnet/-/keys") {
      return { status: 200, body: { keys: [...keys.values()].filter((k) => k.revoked === null).map((k) => ({ id: k.id, description: k.description })) } };
    }
    if ((m = /^\/api\/v2\/tailnet\/-\/keys\/([A-Za-z0-9]+)$/.exec(path))) {
      const k = keys.get(m[1]!);
      if (!k || k.revoked !== null) throw tsError(404, "key not found");
      if (method === "GET") return { status: 200, body: keyJson(k, false) };
      if (method === "DELETE") {
        k.revoked = now();
        return { status: 200 };
      }
    }
    if (method === "GET" && path === "/api/v2/tailnet/-/devices") return { status: 200, body: { devices: [...devices.values()].map(deviceJson) } };
    if ((m = /^\/api\/v2\/device\/([A-Za-z0-9]+)$/.exec(path))) {
      const d = devices.get(m[1]!) ?? [...devices.values()].find((x) => x.nodeId === m![1]);
      if (!d) throw tsError(404, "device not found");
      if (method === "GET") return { status: 200, body: deviceJson(d) };
      if (method === "DELETE") {
        devices.delete(d.id);
        return { status: 200 };
      }
    }
    // Not part of the public API: the stand-in `tailscale up` on a booted host.
    if (method === "POST" && path === "/emulator/join") {
      try {
        const d = await join(body as JoinRequest, req.socket.remoteAddress?.replace(/^::ffff:/, ""));
        return { status: 200, body: { device: deviceJson(d), shortName: d.shortName, dnsName: `${d.shortName}.${TAILNET_DNS_SUFFIX}.` } };
      } catch (err) {
        if (err instanceof TailscaleJoinError) throw tsError(err.status, err.message);
        throw err;
      }
    }
    throw tsError(404, `no route for ${method} ${path}`);
  };

  const server = await serveJson({
    log,
    readBody: (req) => readJson(req, (msg) => tsError(400, msg)),
    internalError: (err) => tsError(500, `emulator error: ${err.message}`),
    handle: ({ req, method, path, body }) => {
      // The join endpoint is authenticated by the auth key in its body, as a node's join is.
      if (path !== "/emulator/join") {
        const presented = bearerOf(req) ?? basicUser(req);
        if (presented === undefined || !secretEquals(presented, apiKey)) throw tsError(401, "API token invalid");
      }
      if (rateLimited > 0) {
        rateLimited -= 1;
        throw new EmulatorHttpError(429, { message: "rate limit exceeded" }, { "retry-after": String(retryAfter) });
      }
      const injected = faults.check(method, path);
      if (injected) throw injected;
      return route(method, path, body, req);
    },
  });

  return {
    baseUrl: `http://127.0.0.1:${server.port}`,
    port: server.port,
    apiKey,
    tailnetDnsSuffix: TAILNET_DNS_SUFFIX,
    requests: log,
    snapshot: () => ({
      keys: [...keys.values()].filter((k) => k.revoked === null).map((k) => keyJson(k, false)),
      devices: [...devices.values()].map(deviceJson),
    }),
    join,
    resolve: (name) => {
      const short = name.replace(/\.$/, "").replace(new RegExp(`\\.${TAILNET_DNS_SUFFIX.replace(/\./g, "\\.")}$`), "");
      const d = [...devices.values()].find((x) => x.shortName === short);
      return d ? [...d.addresses] : undefined;
    },
    listenOn: async (host) => {
      const l = await server.listenAlso(host);
      return { url: `http://${host}:${l.port}`, close: l.close };
    },
    onJoin: (hook) => {
      hooks.add(hook);
      return () => hooks.delete(hook);
    },
    fail: (rule) => faults.add({ ...rule, status: rule.status ?? 500, body: { message: rule.message ?? "injected fault" } }),
    rateLimit: (count, retryAfterSeconds = 1) => {
      rateLimited = count;
      retryAfter = retryAfterSeconds;
    },
    advanceClock: (seconds) => {
      clockOffsetMs += seconds * 1000;
    },
    close: () => server.close(),
  };
}

function basicUser(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  const m = h ? /^Basic (.+)$/i.exec(h) : null;
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  return decoded.split(":")[0];
}

function hex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}
