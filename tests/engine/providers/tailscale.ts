/**
 * Double of pulumi-resource-tailscale (bridge over tailscale/terraform-provider-tailscale,
 * SDK @pulumi/tailscale 0.29.1): TailnetKey and the device look-ups, against the
 * Tailscale API emulator.
 *
 * Contract rules and sources:
 *  T1 tailscale_tailnet_key (tailscale/resource_tailnet_key.go): reusable, ephemeral,
 *     preauthorized, tags, expiry and description are ForceNew; recreate_if_invalid
 *     ("always" | "never") is not. Defaults: reusable/ephemeral/preauthorized false.
 *     Computed: key (Sensitive), created_at, expires_at, invalid, user_id; expiry is
 *     Optional+Computed (the API's default, 90 days, is read back).
 *  T2 Create sends POST /api/v2/tailnet/{tailnet}/keys with
 *     {"capabilities":{"devices":{"create":{reusable,ephemeral,tags,preauthorized}}},
 *     "expirySeconds","description"}; the answer's key is only returned then (measured,
 *     environment-notes "What the real providers send").
 *  T3 Read GETs the key; with recreate_if_invalid "always" an invalid (spent, expired
 *     or revoked) key is dropped from state so the next up creates a new one; with
 *     "never" it stays. A 404 drops it too.
 *  T4 Delete DELETEs the key; 404 counts as deleted.
 *  T5 Provider config (terraform-provider-tailscale v0.29.2, the version pulumi-tailscale
 *     bridges: provider_framework.go Configure, provider_sdk.go validateProviderCreds):
 *     api_key (TAILSCALE_API_KEY) or oauth_client_id/oauth_client_secret
 *     (TAILSCALE_OAUTH_CLIENT_ID/_SECRET, then OAUTH_CLIENT_ID/_SECRET), never both, with
 *     validateProviderCreds' messages; a value "file:<path>" is read from that file
 *     (resolveValueFromFile); tailnet defaults to "-" (TAILSCALE_TAILNET); base_url to
 *     https://api.tailscale.com (TAILSCALE_BASE_URL); `scopes` is passed to the token
 *     request. With an API key, requests authenticate with HTTP basic auth, the key as
 *     user name (tailscale-client-go-v2 client.go buildRequest: SetBasicAuth(APIKey, "")).
 *  T7 With an OAuth client (createTailscaleClient -> tailscale.OAuth, client-go-v2 v2.9.0
 *     oauth.go): clientcredentials.Config{ClientID, ClientSecret, Scopes, TokenURL:
 *     baseURL + "/api/v2/oauth/token"} behind oauth2.ReuseTokenSource, so
 *     (golang.org/x/oauth2 v0.34.0, internal/token.go RetrieveToken and token.go):
 *     - POST form `grant_type=client_credentials` (+ `scope=<space-joined>` when scopes
 *       are set), Content-Type application/x-www-form-urlencoded;
 *     - auth style auto-detected: first HTTP Basic with url.QueryEscape(id) and
 *       url.QueryEscape(secret); on ANY failure once more with client_id/client_secret in
 *       the form; the style that worked is remembered for that token URL and client id;
 *     - the answer is parsed as JSON (or as a form for form/text content types); a non-2xx
 *       answer or an `error` field fails with `oauth2: cannot fetch token: <status>\nResponse:
 *       <body>` (or `oauth2: "<error>" "<description>"`), and the API call fails as the
 *       http.Client reports it: `<Method> "<url>": <that error>`; no access_token fails
 *       with "oauth2: server response missing access_token";
 *     - the token is reused until 10 s before it expires (expires_in; 0 = never), then a
 *       new one is fetched; requests carry `Authorization: <Type> <token>` (Type() is
 *       "Bearer" for any case of "bearer"). A token the API refuses is not refreshed early:
 *       the call fails.
 *  T6 description is at most 50 characters (schema validation).
 */
import { readFileSync } from "node:fs";
import { ProviderError, diffProps, unknowns, type Ctx, type Props, type ProviderDef, type ResourceDef } from "./framework.js";
import { apiCall, ApiError, retryAfterMs, type ApiClientOptions } from "./http.js";

/** oauth2.Token: what the token endpoint answered, and when it stops being reused. */
interface OAuthToken {
  accessToken: string;
  tokenType: string;
  /** ms since epoch; undefined = never expires (expires_in absent or 0). */
  expiry: number | undefined;
}

/** Go's url.QueryEscape: everything but [A-Za-z0-9-_.~] percent-encoded, space as "+". */
export function goQueryEscape(v: string): string {
  return Array.from(Buffer.from(v, "utf8"))
    .map((b) => {
      const c = String.fromCharCode(b);
      if (/[A-Za-z0-9\-_.~]/.test(c)) return c;
      if (c === " ") return "+";
      return `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    })
    .join("");
}

/** oauth2's defaultExpiryDelta: a token is treated as expired 10 s before its expiry. */
const EXPIRY_DELTA_MS = 10_000;

/**
 * T7: clientcredentials.Config + oauth2.ReuseTokenSource for one configured provider,
 * with RetrieveToken's auth-style probe (Basic first, then form fields) and its cache.
 */
export class OAuthTokenSource {
  private token: OAuthToken | undefined;
  private style: "header" | "params" | undefined;
  private inflight: Promise<OAuthToken> | undefined;

  constructor(
    private readonly tokenUrl: string,
    private readonly clientId: string,
    private readonly clientSecret: string,
    private readonly scopes: string[],
  ) {}

  /** ReuseTokenSource.Token: the cached token while valid, else a new one. */
  async get(): Promise<OAuthToken> {
    const t = this.token;
    if (t && t.accessToken && (t.expiry === undefined || t.expiry - EXPIRY_DELTA_MS > Date.now())) return t;
    this.inflight ??= this.retrieve().finally(() => (this.inflight = undefined));
    this.token = await this.inflight;
    return this.token;
  }

  /** Token.Type(): "Bearer" for any case of "bearer" (and for none). */
  static header(t: OAuthToken): string {
    const ty = t.tokenType;
    const type = ty === "" || /^bearer$/i.test(ty) ? "Bearer" : /^mac$/i.test(ty) ? "MAC" : /^basic$/i.test(ty) ? "Basic" : ty;
    return `${type} ${t.accessToken}`;
  }

  private async retrieve(): Promise<OAuthToken> {
    const form = new URLSearchParams({ grant_type: "client_credentials" });
    if (this.scopes.length > 0) form.set("scope", this.scopes.join(" "));
    if (this.style) return this.roundTrip(form, this.style);
    try {
      const t = await this.roundTrip(form, "header");
      this.style = "header";
      return t;
    } catch {
      // "If we get an error, assume the server wants the clientID & clientSecret in a different form."
      const t = await this.roundTrip(form, "params");
      this.style = "params";
      return t;
    }
  }

  private async roundTrip(v: URLSearchParams, style: "header" | "params"): Promise<OAuthToken> {
    const form = new URLSearchParams(v);
    const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
    if (style === "params") {
      if (this.clientId) form.set("client_id", this.clientId);
      if (this.clientSecret) form.set("client_secret", this.clientSecret);
    } else {
      headers.authorization = `Basic ${Buffer.from(`${goQueryEscape(this.clientId)}:${goQueryEscape(this.clientSecret)}`).toString("base64")}`;
    }
    let res: Response;
    try {
      res = await fetch(this.tokenUrl, { method: "POST", headers, body: form.toString(), signal: AbortSignal.timeout(60_000) });
    } catch (err) {
      throw new ProviderError(`Post "${this.tokenUrl}": ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`);
    }
    const body = (await res.text()).slice(0, 1 << 20);
    const failed = res.status < 200 || res.status > 299;
    const retrieveError = (code?: string, description?: string) =>
      new ProviderError(code ? `oauth2: ${JSON.stringify(code)}${description ? ` ${JSON.stringify(description)}` : ""}` : `oauth2: cannot fetch token: ${res.status} ${res.statusText}\nResponse: ${body}`);
    const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    let f: { access_token?: unknown; token_type?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown };
    if (type === "application/x-www-form-urlencoded" || type === "text/plain") {
      f = Object.fromEntries(new URLSearchParams(body));
    } else {
      try {
        f = JSON.parse(body) as typeof f;
      } catch {
        if (failed) throw retrieveError();
        throw new ProviderError(`oauth2: cannot parse json: ${body.slice(0, 200)}`);
      }
    }
    const code = typeof f.error === "string" ? f.error : "";
    if (failed || code) throw retrieveError(code || undefined, typeof f.error_description === "string" ? f.error_description : undefined);
    if (typeof f.access_token !== "string" || f.access_token === "") throw new ProviderError("oauth2: server response missing access_token");
    const expiresIn = Number(f.expires_in ?? 0);
    return {
      accessToken: f.access_token,
      tokenType: typeof f.token_type === "string" ? f.token_type : "",
      expiry: Number.isFinite(expiresIn) && expiresIn !== 0 ? Date.now() + expiresIn * 1000 : undefined,
    };
  }
}

function client(ctx: Ctx, authorization: string): ApiClientOptions {
  return {
    baseUrl: String(ctx.config.baseUrl).replace(/\/+$/, ""),
    headers: { authorization, "user-agent": "terraform-provider-tailscale", accept: "application/json" },
    retryAfter(_method, status, _body, headers, attempt) {
      // The Go client retries 429 honouring Retry-After (bounded here to keep runs short).
      if (status === 429 && attempt < 5) return Math.min(retryAfterMs(headers) ?? 1000, 10_000);
      return null;
    },
    errorMessage(_method, path, status, body) {
      const msg = (body?.message as string | undefined) ?? `status ${status}`;
      return `${msg} (${status})${path.includes("/keys") ? "" : ""}`;
    },
  };
}
/** The Authorization header: the API key as Basic user, or (T7) the OAuth client's current token. */
async function authorization(ctx: Ctx, method: string, path: string): Promise<string> {
  const c = ctx.config;
  if (!(c.tokenSource instanceof OAuthTokenSource)) return `Basic ${Buffer.from(`${c.apiKey}:`).toString("base64")}`;
  try {
    return OAuthTokenSource.header(await c.tokenSource.get());
  } catch (err) {
    // oauth2.Transport's error, as http.Client reports it (*url.Error: `Post "<url>": …`).
    const op = method.slice(0, 1) + method.slice(1).toLowerCase();
    throw new ProviderError(`${op} "${String(c.baseUrl).replace(/\/+$/, "")}${path}": ${(err as Error).message}`);
  }
}
const api = async <T = Props>(ctx: Ctx, method: string, path: string, body?: unknown) => apiCall<T>(client(ctx, await authorization(ctx, method, path)), method, path, body);
const tailnet = (ctx: Ctx) => encodeURIComponent(String(ctx.config.tailnet ?? "-"));

function keyOuts(k: Props, inputs: Props): Props {
  const caps = ((k.capabilities as Props | undefined)?.devices as Props | undefined)?.create as Props | undefined;
  const created = k.created ? Date.parse(String(k.created)) : NaN;
  const expires = k.expires ? Date.parse(String(k.expires)) : NaN;
  return {
    ...inputs,
    createdAt: k.created ?? "",
    description: k.description ?? inputs.description ?? "",
    ephemeral: caps?.ephemeral ?? inputs.ephemeral ?? false,
    expiresAt: k.expires ?? "",
    expiry: inputs.expiry ?? (Number.isFinite(created) && Number.isFinite(expires) ? Math.round((expires - created) / 1000) : 0),
    invalid: !!k.invalid || (Number.isFinite(expires) && expires <= Date.now()) || !!k.revoked,
    preauthorized: caps?.preauthorized ?? inputs.preauthorized ?? false,
    reusable: caps?.reusable ?? inputs.reusable ?? false,
    tags: [...((caps?.tags as string[]) ?? (inputs.tags as string[]) ?? [])].sort(),
    userId: k.userId ?? "",
  };
}

const tailnetKey: ResourceDef = {
  check(_ctx, news) {
    const failures: { property: string; reason: string }[] = [];
    if (typeof news.description === "string" && news.description.length > 50) failures.push({ property: "description", reason: "expected length of description to be in the range (0 - 50)" });
    if (news.recreateIfInvalid !== undefined && !["always", "never"].includes(news.recreateIfInvalid)) failures.push({ property: "recreateIfInvalid", reason: 'expected recreateIfInvalid to be one of ["always" "never"]' });
    return { inputs: { ephemeral: false, preauthorized: false, recreateIfInvalid: "never", reusable: false, ...news }, failures };
  },
  diff(_ctx, _id, olds, news) {
    const keys = ["reusable", "ephemeral", "preauthorized", "tags", "description", "recreateIfInvalid", ...(news.expiry !== undefined ? ["expiry"] : [])];
    const d = diffProps(keys, ["reusable", "ephemeral", "preauthorized", "tags", "expiry", "description"], olds, news, {
      tags: (v) => [...((v as string[]) ?? [])].sort(),
      description: (v) => v ?? "",
    });
    return { ...d, deleteBeforeReplace: false };
  },
  // Recorded with the real provider (a plugin-framework resource; recordings/): checked
  // inputs without __defaults, Diff without a detailed diff, outputs with `id`.
  diffShape: { detailedDiff: false },
  idProperty: true,
  async create(ctx, inputs) {
    if (ctx.preview) return { id: "", outs: { ...inputs, ...unknowns(["key", "createdAt", "expiresAt", "invalid", "userId", ...(inputs.expiry === undefined ? ["expiry"] : [])]) } };
    const body: Props = {
      capabilities: { devices: { create: { reusable: !!inputs.reusable, ephemeral: !!inputs.ephemeral, tags: inputs.tags ?? [], preauthorized: !!inputs.preauthorized } } },
      ...(inputs.expiry !== undefined ? { expirySeconds: Number(inputs.expiry) } : {}),
      ...(inputs.description !== undefined ? { description: inputs.description } : {}),
    };
    const k = await api(ctx, "POST", `/api/v2/tailnet/${tailnet(ctx)}/keys`, body);
    return { id: String(k.id), outs: { ...keyOuts(k, inputs), key: k.key } };
  },
  async read(ctx, id, outs, inputs) {
    try {
      const k = await api(ctx, "GET", `/api/v2/tailnet/${tailnet(ctx)}/keys/${encodeURIComponent(id)}`);
      const o: Props = { ...keyOuts(k, outs), key: outs.key };
      if (o.invalid && outs.recreateIfInvalid === "always") return null;
      return { id, outs: o, inputs };
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    }
  },
  async update(_ctx, _id, olds, news) {
    // Only recreateIfInvalid can change in place; it is state only.
    return { ...olds, recreateIfInvalid: news.recreateIfInvalid };
  },
  async delete(ctx, id) {
    try {
      await api(ctx, "DELETE", `/api/v2/tailnet/${tailnet(ctx)}/keys/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
  },
  secretOutputs: ["key"],
};

/** Device as the provider's data sources return it (tailscale/data_source_device*.go). */
function deviceOut(d: Props): Props {
  return {
    addresses: d.addresses ?? [],
    // The API's creation time (tailscale-client-go-v2 Device.Created, RFC 3339): the stack's
    // device lookup takes the newest device of the host (issue 21 item 10).
    created: d.created ?? "",
    hostname: d.hostname ?? "",
    id: String(d.id ?? d.nodeId ?? ""),
    name: d.name ?? "",
    nodeId: d.nodeId ?? "",
    tags: d.tags ?? [],
    user: d.user ?? "",
  };
}

async function listDevices(ctx: Ctx): Promise<Props[]> {
  const res = await api(ctx, "GET", `/api/v2/tailnet/${tailnet(ctx)}/devices`);
  return (res.devices as Props[]) ?? [];
}

export const tailscaleProvider = (version: string): ProviderDef => ({
  name: "tailscale",
  version,
  bridged: true,
  configureAnswer: { acceptSecrets: false, acceptResources: true, acceptOutputs: false, supportsAutonamingConfiguration: true },
  configure(vars) {
    // T5: config first, then the environment (coalesce: the first non-empty value).
    const pick = (v: unknown, ...envs: string[]) => [v, ...envs.map((e) => process.env[e])].find((x): x is string => typeof x === "string" && x !== "") ?? "";
    const apiKey = fromFile("api_key", pick(vars.apiKey, "TAILSCALE_API_KEY"));
    const oauthId = fromFile("oauth_client_id", pick(vars.oauthClientId, "TAILSCALE_OAUTH_CLIENT_ID", "OAUTH_CLIENT_ID"));
    const oauthSecret = fromFile("oauth_client_secret", pick(vars.oauthClientSecret, "TAILSCALE_OAUTH_CLIENT_SECRET", "OAUTH_CLIENT_SECRET"));
    // validateProviderCreds (identity federation, the fourth and fifth kind, is not used by picortex).
    if (!apiKey && !oauthId && !oauthSecret) throw new ProviderError("tailscale provider credentials are empty - set `api_key` or 'oauth_client_id' and one of 'oauth_client_secret', 'identity_token', or 'audience'");
    if (apiKey && (oauthId || oauthSecret)) throw new ProviderError("tailscale provider credentials are conflicting - `api_key` conflicts with 'oauth_client_id', 'oauth_client_secret', 'identity_token', and 'audience'");
    if (!apiKey && !oauthId) throw new ProviderError("tailscale provider argument 'oauth_client_id' is empty");
    if (oauthId && !oauthSecret) throw new ProviderError("one of tailscale provider arguments 'oauth_client_secret', 'identity_token', or 'audience' are mandatory with 'oauth_client_id'");
    const tailnet = pick(vars.tailnet, "TAILSCALE_TAILNET") || "-";
    const baseUrl = pick(vars.baseUrl, "TAILSCALE_BASE_URL") || "https://api.tailscale.com";
    if (!/^https?:\/\/[^/]/.test(baseUrl)) throw new ProviderError(`could not parse baseURL ${JSON.stringify(baseUrl)}`);
    if (!oauthId) return { apiKey, tailnet, baseUrl };
    const scopes = parseScopes(vars.scopes);
    // client-go-v2 oauth.go: TokenURL is baseURL + "/api/v2/oauth/token" (BaseURL.String(), as given).
    const tokenSource = new OAuthTokenSource(`${baseUrl}/api/v2/oauth/token`, oauthId, oauthSecret, scopes);
    return { tailnet, baseUrl, tokenSource };
  },
  resources: { "tailscale:index/tailnetKey:TailnetKey": tailnetKey },
  invokes: {
    // data "tailscale_device": by name (FQDN) or hostname; waits (wait_for) until it appears.
    "tailscale:index/getDevice:getDevice": async (ctx, args) => {
      const waitMs = parseDuration(args.waitFor);
      const deadline = Date.now() + waitMs;
      for (;;) {
        const devices = await listDevices(ctx);
        const d = devices.find((x) => (args.name !== undefined ? x.name === args.name : x.hostname === args.hostname));
        if (d) return deviceOut(d);
        if (Date.now() >= deadline) throw new ProviderError(`Could not find device with ${args.name !== undefined ? `name=${args.name}` : `hostname=${args.hostname}`}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    },
    "tailscale:index/getDevices:getDevices": async (ctx, args) => {
      const devices = await listDevices(ctx);
      const prefix = args.namePrefix as string | undefined;
      // The data source lists each device with the API's fields (tailscale provider 0.29.1
      // data_source_devices, recorded with the real provider) and echoes its (empty) filters.
      const listed = devices.filter((d) => !prefix || String(d.name).startsWith(prefix)).map((d) => ({
        ...deviceOut(d),
        authorized: d.authorized ?? false,
        blocksIncomingConnections: d.blocksIncomingConnections ?? false,
        clientVersion: d.clientVersion ?? "",
        expires: d.expires ?? "",
        isExternal: d.isExternal ?? false,
        keyExpiryDisabled: d.keyExpiryDisabled ?? false,
        lastSeen: d.lastSeen ?? "",
        machineKey: d.machineKey ?? "",
        nodeKey: d.nodeKey ?? "",
        os: d.os ?? "",
        tailnetLockError: d.tailnetLockError ?? "",
        tailnetLockKey: d.tailnetLockKey ?? "",
        updateAvailable: d.updateAvailable ?? false,
      }));
      return { devices: listed, filters: [], id: tailnet(ctx), namePrefix: prefix ?? "" };
    },
  },
});

/** resolveValueFromFile: "file:<path>" is that file's trimmed content. */
function fromFile(key: string, v: string): string {
  if (!v.startsWith("file:")) return v;
  const file = v.slice("file:".length);
  try {
    return readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new ProviderError(`Could not resolve file for ${key}: the file ${JSON.stringify(file)} could not be read for ${JSON.stringify(key)}: ${(err as Error).message}`);
  }
}

/** `scopes` arrives JSON-encoded (a list in provider config). */
function parseScopes(v: unknown): string[] {
  if (v === undefined || v === null || v === "") return [];
  const list = typeof v === "string" ? (JSON.parse(v) as unknown) : v;
  if (!Array.isArray(list) || list.some((x) => typeof x !== "string")) throw new ProviderError(`tailscale provider argument 'scopes' must be a list of strings, got ${JSON.stringify(v)}`);
  return list as string[];
}

function parseDuration(v: unknown): number {
  if (typeof v !== "string" || !v) return 0;
  const m = /^(\d+)(ms|s|m|h)$/.exec(v);
  if (!m) return 0;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
}
