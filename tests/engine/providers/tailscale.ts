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
 *  T5 Provider config: api_key or oauth_client_id/secret, never both ("credentials are
 *     conflicting"; issue 21 item 4); tailnet defaults to "-"; base_url defaults to
 *     https://api.tailscale.com. Requests authenticate with HTTP basic auth, the key as
 *     user name (tailscale client v2).
 *  T6 description is at most 50 characters (schema validation).
 */
import { ProviderError, diffProps, unknowns, type Ctx, type Props, type ProviderDef, type ResourceDef } from "./framework.js";
import { apiCall, ApiError, retryAfterMs, type ApiClientOptions } from "./http.js";

function client(ctx: Ctx): ApiClientOptions {
  const c = ctx.config;
  return {
    baseUrl: String(c.baseUrl).replace(/\/+$/, ""),
    headers: { authorization: `Basic ${Buffer.from(`${c.apiKey}:`).toString("base64")}`, "user-agent": "terraform-provider-tailscale", accept: "application/json" },
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
const api = <T = Props>(ctx: Ctx, method: string, path: string, body?: unknown) => apiCall<T>(client(ctx), method, path, body);
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
    return { inputs: { ephemeral: false, preauthorized: false, recreateIfInvalid: "never", reusable: false, ...news, __defaults: [] }, failures };
  },
  diff(_ctx, _id, olds, news) {
    const keys = ["reusable", "ephemeral", "preauthorized", "tags", "description", "recreateIfInvalid", ...(news.expiry !== undefined ? ["expiry"] : [])];
    const d = diffProps(keys, ["reusable", "ephemeral", "preauthorized", "tags", "expiry", "description"], olds, news, {
      tags: (v) => [...((v as string[]) ?? [])].sort(),
      description: (v) => v ?? "",
    });
    return { ...d, deleteBeforeReplace: false };
  },
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
  configure(vars) {
    const apiKey = vars.apiKey ?? process.env.TAILSCALE_API_KEY;
    const oauthId = vars.oauthClientId ?? process.env.TAILSCALE_OAUTH_CLIENT_ID;
    const oauthSecret = vars.oauthClientSecret ?? process.env.TAILSCALE_OAUTH_CLIENT_SECRET;
    if (apiKey && (oauthId || oauthSecret)) throw new ProviderError("tailscale provider credentials are conflicting: set either api_key or oauth_client_id/oauth_client_secret, not both");
    if (!apiKey && !(oauthId && oauthSecret)) throw new ProviderError("tailscale provider credentials are empty: set api_key (tailscale:apiKey) or oauth_client_id and oauth_client_secret");
    if (!apiKey) throw new ProviderError("tailscale provider double: OAuth client credentials are not supported by the API emulator; use tailscale:apiKey");
    return {
      apiKey,
      tailnet: vars.tailnet ?? process.env.TAILSCALE_TAILNET ?? "-",
      baseUrl: vars.baseUrl ?? process.env.TAILSCALE_BASE_URL ?? "https://api.tailscale.com",
    };
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
      return { devices: devices.filter((d) => !prefix || String(d.name).startsWith(prefix)).map(deviceOut), id: tailnet(ctx), namePrefix: prefix ?? "" };
    },
  },
});

function parseDuration(v: unknown): number {
  if (typeof v !== "string" || !v) return 0;
  const m = /^(\d+)(ms|s|m|h)$/.exec(v);
  if (!m) return 0;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
}
