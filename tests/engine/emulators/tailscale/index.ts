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
 * OAuth client (https://tailscale.com/kb/1215/oauth-clients; the shapes below are the
 * ones users report from api.tailscale.com, cited per rule):
 * - one client per emulator: id `k…CNTRL`, secret `tskey-client-<id>-<hex>`, scopes
 *   `auth_keys` and `devices:core` (write; they imply their `:read`), owning `tag:picortex`
 *   (all three configurable);
 * - O1 `POST /api/v2/oauth/token`, client credentials grant, form-encoded body: the client
 *   id and secret as HTTP Basic (RFC 6749 2.3.1, form-url-encoded then base64; what
 *   golang.org/x/oauth2/clientcredentials tries first, `curl -u id:secret` in
 *   tailscale/tailscale#8403) or as `client_id`/`client_secret` form fields (the KB's curl
 *   example, components/tailnet-device.ts). `grant_type` may be omitted (the KB's curl
 *   sends none) and is otherwise `client_credentials`. Credentials in the query string
 *   are refused (a secret never travels in a URL). Optional `scope` (space- or
 *   comma-separated) narrows the token to those of the client's scopes; one the client
 *   lacks is refused;
 * - O2 answer: `{"access_token":"tskey-api-…","token_type":"Bearer","expires_in":3600,
 *   "scope":"<space-separated>"}` (tailscale/tailscale#15456, freeformz/ansible#3);
 * - O3 a wrong client id or secret: 401 `{"message":"API token invalid"}` (the body
 *   oauth2 printed in tailscale/gitops-acl-action#33); compared in constant time;
 * - O4 an access token authenticates like an API key (Bearer, or Basic as user name) until
 *   it expires (`expires_in`, on the emulator's clock: advanceClock), then 401;
 * - O5 its requests are limited to its scopes: keys endpoints need `auth_keys` (reads
 *   also `auth_keys:read`), device endpoints `devices:core` (reads also
 *   `devices:core:read`), `all`/`all:read` cover everything; otherwise 403
 *   `{"message":"calling actor does not have enough permissions to perform this
 *   function"}` (tailscale/tailscale#15969);
 * - O6 a key it creates is tailnet-owned, so it must carry tags, all owned by the client:
 *   no tags is 400 "tailnet-owned auth key must have tags set", a tag the client does not
 *   own is 400 "requested tags [tag:a tag:b] are invalid or not permitted" (both as the
 *   API answers them, quoted in terraform-provider-tailscale#247/#437 and users' notes).
 *   Reported but not emulated: the API also refuses a strict subset of a client's tags
 *   (terraform-provider-tailscale#437); picortex's client owns exactly the host's tags;
 * - O7 the request log never holds the client secret or an access token: the token
 *   request is logged as its grant_type, client_id and scope only, with no query string.
 *
 * Name resolution (MagicDNS stand-in): `resolve(name)` maps `<name>` or
 * `<name>.<tailnet>.ts.net` to the addresses of the device whose name is that, exactly as
 * MagicDNS would: after a replacement that became `picortex-1`, `picortex` still resolves
 * to the old device until it is deleted.
 */
import { randomBytes, randomInt } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { EmulatorHttpError, FaultInjector, bearerOf, isoSeconds, readJson, readText, secretEquals, serveJson, type FaultRule, type Handled, type RecordedRequest } from "../http.js";

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

export interface TailscaleOAuthClient {
  /** tailscale:oauthClientId */
  id: string;
  /** tailscale:oauthClientSecret (`tskey-client-<id>-…`) */
  secret: string;
  scopes: string[];
  /** The tags the client owns: the only tags its keys may carry. */
  tags: string[];
}

export interface TailscaleEmulatorOptions {
  apiKey?: string;
  /** The OAuth client's scopes and tags (default auth_keys + devices:core, tag:picortex). */
  oauthClient?: { scopes?: string[]; tags?: string[] };
  /** Lifetime of an access token, seconds (Tailscale: 3600). */
  accessTokenTtlSeconds?: number;
}

export interface TailscaleEmulator {
  /** "http://127.0.0.1:<port>": the provider's `tailscale:baseUrl`. */
  baseUrl: string;
  port: number;
  apiKey: string;
  /** The tailnet's OAuth client (id, secret, scopes, owned tags). */
  oauthClient: TailscaleOAuthClient;
  /** Every access token issued so far (for "no secret in the state" checks). */
  accessTokens(): string[];
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

export const OAUTH_TOKEN_PATH = "/api/v2/oauth/token";
const NOT_PERMITTED = "calling actor does not have enough permissions to perform this function";
const TOKEN_INVALID = "API token invalid";
const KNOWN_SCOPES = /^(all|auth_keys|devices:core|devices:routes|devices:posture_attributes|dns|policy_file|users|logs:[a-z_]+|feature_settings|webhooks|oauth_keys|services|tailnet_settings|account_settings)(:read)?$/;

/** Who a request acts as: the API key (everything) or an OAuth access token (its scopes, its client's tags). */
type Principal = { kind: "apiKey" } | { kind: "oauth"; scopes: string[]; tags: string[] };

interface AccessTokenRecord {
  token: string;
  scopes: string[];
  tags: string[];
  expires: number;
}

export async function startTailscaleEmulator(opts: TailscaleEmulatorOptions = {}): Promise<TailscaleEmulator> {
  const apiKey = opts.apiKey ?? `tskey-api-k${hex(8)}CNTRL-${hex(16)}`;
  const clientId = `k${hex(6).toUpperCase()}CNTRL`;
  const oauthClient: TailscaleOAuthClient = {
    id: clientId,
    secret: `tskey-client-${clientId}-${hex(16)}`,
    scopes: [...(opts.oauthClient?.scopes ?? ["auth_keys", "devices:core"])],
    tags: [...(opts.oauthClient?.tags ?? ["tag:picortex"])],
  };
  for (const sc of oauthClient.scopes) if (!KNOWN_SCOPES.test(sc)) throw new Error(`unknown OAuth scope ${JSON.stringify(sc)}`);
  for (const t of oauthClient.tags) if (!TAG.test(t)) throw new Error(`invalid OAuth client tag ${JSON.stringify(t)}`);
  const tokenTtl = opts.accessTokenTtlSeconds ?? 3600;
  const accessTokens: AccessTokenRecord[] = [];
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
    // Every read returns expirySeconds, not only the create: the provider's Read sets
    // `expiry` from it, and its import test verifies `expiry` after a Read (ignoring only
    // key and recreate_if_invalid: terraform-provider-tailscale v0.29.2,
    // tailscale/resource_tailnet_key_test.go). Measured with the real provider: without
    // it a refresh drops `expiry` ([diff: -expiry]).
    expirySeconds: expirySeconds ?? Math.round((k.expires - k.created) / 1000),
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

  function createKey(body: unknown, who: Principal): Handled {
    if (typeof body !== "object" || body === null) throw tsError(400, "request body must be a JSON object");
    const b = body as Record<string, unknown>;
    const create = ((b.capabilities as Record<string, unknown> | undefined)?.devices as Record<string, unknown> | undefined)?.create as Record<string, unknown> | undefined;
    if (!create || typeof create !== "object") throw tsError(400, "capabilities.devices.create is required");
    const tags = create.tags === undefined || create.tags === null ? [] : create.tags;
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string" || !TAG.test(t))) throw tsError(400, `invalid tags: ${JSON.stringify(tags)}; tags look like tag:name`);
    if (who.kind === "oauth") {
      // O6: an OAuth client's key is tailnet-owned: tagged, with tags the client owns.
      if (tags.length === 0) throw tsError(400, "tailnet-owned auth key must have tags set");
      if ((tags as string[]).some((t) => !who.tags.includes(t))) throw tsError(400, `requested tags [${(tags as string[]).join(" ")}] are invalid or not permitted`);
    }
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

  /** O5: may `who` do `method` on an endpoint guarded by `scope` (write scope; reads also take `<scope>:read`)? */
  function requireScope(who: Principal, scope: "auth_keys" | "devices:core", method: string): void {
    if (who.kind === "apiKey") return;
    const read = method === "GET";
    const ok = who.scopes.some((s) => s === scope || s === "all" || (read && (s === `${scope}:read` || s === "all:read")));
    if (!ok) throw tsError(403, NOT_PERMITTED);
  }

  /** O1-O3: the client credentials grant. */
  function issueToken(form: URLSearchParams, req: IncomingMessage, query: URLSearchParams): Handled {
    if (query.has("client_secret") || query.has("client_id")) throw tsError(400, "client credentials must be sent in the request body or the Authorization header, never in the URL");
    const grant = form.get("grant_type");
    if (grant !== null && grant !== "client_credentials") throw tsError(400, `unsupported grant_type ${JSON.stringify(grant)}: only client_credentials`);
    let id: string | null;
    let secret: string | null;
    const basic = basicCredentials(req);
    if (basic) [id, secret] = basic;
    else {
      id = form.get("client_id");
      secret = form.get("client_secret");
    }
    // Both compared, each in constant time, whatever the first answer.
    const idOk = secretEquals(id ?? "", oauthClient.id);
    const secretOk = secretEquals(secret ?? "", oauthClient.secret);
    if (!(idOk && secretOk)) throw tsError(401, TOKEN_INVALID);
    const asked = (form.get("scope") ?? "").split(/[\s,]+/).filter(Boolean);
    for (const sc of asked) {
      const covered = oauthClient.scopes.some((have) => have === sc || have === "all" || (sc.endsWith(":read") && (have === sc.slice(0, -5) || have === "all:read")));
      if (!covered) throw tsError(400, `requested scope ${JSON.stringify(sc)} is not granted to this OAuth client`);
    }
    const scopes = asked.length > 0 ? asked : [...oauthClient.scopes];
    const token = `tskey-api-k${hex(6).toUpperCase()}CNTRL-${hex(16)}`;
    accessTokens.push({ token, scopes, tags: [...oauthClient.tags], expires: now() + tokenTtl * 1000 });
    return { status: 200, body: { access_token: token, token_type: "Bearer", expires_in: tokenTtl, scope: scopes.join(" ") } };
  }

  /** O4: the API key, or a live access token; compared in constant time against every candidate. */
  function authenticate(req: IncomingMessage): Principal {
    const presented = bearerOf(req) ?? basicCredentials(req, false)?.[0];
    if (presented === undefined) throw tsError(401, TOKEN_INVALID);
    let who: Principal | undefined = secretEquals(presented, apiKey) ? { kind: "apiKey" } : undefined;
    for (const t of accessTokens) {
      if (secretEquals(presented, t.token) && who === undefined && now() < t.expires) who = { kind: "oauth", scopes: [...t.scopes], tags: [...t.tags] };
    }
    if (!who) throw tsError(401, TOKEN_INVALID);
    return who;
  }

  const route = async (method: string, path: string, body: unknown, req: IncomingMessage, who: Principal): Promise<Handled> => {
    let m: RegExpExecArray | null;
    // Any tailnet name is this one tailnet ("-" is the API key's own, as the providers default).
    path = path.replace(/^\/api\/v2\/tailnet\/[^/]+\//, "/api/v2/tailnet/-/");
    if (/^\/api\/v2\/tailnet\/-\/keys(\/|$)/.test(path)) requireScope(who, "auth_keys", method);
    if (/^\/api\/v2\/(tailnet\/-\/devices|device\/)/.test(path)) requireScope(who, "devices:core", method);
    if (method === "POST" && path === "/api/v2/tailnet/-/keys") return createKey(body, who);
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

  const pathOf = (req: IncomingMessage) => new URL(req.url ?? "/", "http://emulator.invalid").pathname;
  const server = await serveJson({
    log,
    readBody: async (req) => {
      const invalid = (msg: string) => tsError(400, msg);
      if (pathOf(req) !== OAUTH_TOKEN_PATH) return readJson(req, invalid);
      // O1: the token endpoint takes a form, as OAuth 2.0 (RFC 6749 4.4.2) and the Go client send it.
      const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      const text = (await readText(req, invalid)) ?? "";
      if (text !== "" && type !== "application/x-www-form-urlencoded") throw invalid("the token request body must be application/x-www-form-urlencoded");
      return new URLSearchParams(text);
    },
    // O7: the token request is logged without its secret, and never with a query string.
    redactLog: (entry) => {
      if (entry.path !== OAUTH_TOKEN_PATH) return;
      entry.query = "";
      if (entry.body instanceof URLSearchParams) {
        const f = entry.body;
        entry.body = Object.fromEntries(["grant_type", "client_id", "scope"].filter((k) => f.has(k)).map((k) => [k, f.get(k)]));
      } else if (entry.body !== undefined) entry.body = undefined;
    },
    internalError: (err) => tsError(500, `emulator error: ${err.message}`),
    handle: ({ req, method, path, query, body }) => {
      // The join endpoint is authenticated by the auth key in its body, as a node's join
      // is; the token endpoint by the client credentials.
      const who: Principal | undefined = path === "/emulator/join" || path === OAUTH_TOKEN_PATH ? undefined : authenticate(req);
      if (rateLimited > 0) {
        rateLimited -= 1;
        throw new EmulatorHttpError(429, { message: "rate limit exceeded" }, { "retry-after": String(retryAfter) });
      }
      const injected = faults.check(method, path);
      if (injected) throw injected;
      if (path === OAUTH_TOKEN_PATH) {
        if (method !== "POST") throw tsError(405, "method not allowed");
        return issueToken(body as URLSearchParams, req, query);
      }
      return route(method, path, body, req, who ?? { kind: "apiKey" });
    },
  });

  return {
    baseUrl: `http://127.0.0.1:${server.port}`,
    port: server.port,
    apiKey,
    oauthClient,
    accessTokens: () => accessTokens.map((t) => t.token),
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

/**
 * HTTP Basic user and password. For the token endpoint they are the client id and secret,
 * form-url-encoded before base64 (RFC 6749 2.3.1; oauth2 sends url.QueryEscape of each).
 */
function basicCredentials(req: IncomingMessage, formEncoded = true): [string, string] | undefined {
  const h = req.headers.authorization;
  const m = h ? /^Basic ([A-Za-z0-9+/=]+)$/i.exec(h) : null;
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const i = decoded.indexOf(":");
  const [user, pass] = i < 0 ? [decoded, ""] : [decoded.slice(0, i), decoded.slice(i + 1)];
  const unescape = (v: string) => {
    try {
      return decodeURIComponent(v.replace(/\+/g, " "));
    } catch {
      return v;
    }
  };
  return formEncoded ? [unescape(user), unescape(pass)] : [user, pass];
}

function hex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}
