/**
 * The Tailscale API emulator's rules (issue 22 item 5): auth keys (single use, expiry,
 * tags, preauthorized), joins, `<name>-1` naming, device delete, field completeness.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { startTailscaleEmulator, type TailscaleEmulator } from "./tailscale/index.js";
import { tailscaleProvider, goQueryEscape } from "../providers/tailscale.js";
import type { Ctx, Props } from "../providers/framework.js";

let ts: TailscaleEmulator;

async function call(method: string, path: string, body?: unknown, auth: string = `Bearer ${ts.apiKey}`) {
  const res = await fetch(`${ts.baseUrl}${path}`, {
    method,
    headers: { authorization: auth, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as any };
}

/** The request the tailscale provider sends for TailnetAccess's key. */
const keyRequest = (over: Record<string, unknown> = {}) => ({
  capabilities: { devices: { create: { reusable: false, ephemeral: false, tags: ["tag:picortex"], preauthorized: true } } },
  expirySeconds: 3600,
  description: "picortex picortex 0123456789ab",
  ...over,
});

async function join(authKey: string, hostname = "picortex", tags = ["tag:picortex"]) {
  const res = await fetch(`${ts.baseUrl}/emulator/join`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ authKey, hostname, tags, ssh: true }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

beforeEach(async () => {
  ts = await startTailscaleEmulator();
});
afterEach(async () => {
  await ts.close();
});

describe("Tailscale emulator: keys", () => {
  it("creates a key with the secret once, and reads it back with every field and without the secret", async () => {
    const created = await call("POST", "/api/v2/tailnet/-/keys", keyRequest());
    expect(created.status).toBe(200);
    expect(created.body.key).toMatch(/^tskey-auth-k[0-9A-F]+CNTRL-[0-9a-f]{32}$/);
    expect(created.body.expirySeconds).toBe(3600);
    expect(Date.parse(created.body.expires) - Date.parse(created.body.created)).toBe(3600_000);
    const got = await call("GET", `/api/v2/tailnet/-/keys/${created.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body.key).toBeUndefined();
    // expirySeconds on every read: the real provider's Read sets `expiry` from it (a refresh
    // against the real provider dropped `expiry` while the emulator left it out).
    expect(Object.keys(got.body).sort()).toEqual(["capabilities", "created", "description", "expires", "expirySeconds", "id", "invalid", "keyType", "tags", "updated", "userId"]);
    expect(got.body.expirySeconds).toBe(3600);
    expect(got.body).toMatchObject({
      id: created.body.id,
      keyType: "auth",
      description: "picortex picortex 0123456789ab",
      invalid: false,
      capabilities: { devices: { create: { reusable: false, ephemeral: false, preauthorized: true, tags: ["tag:picortex"] } } },
    });
  });

  it("accepts Bearer and basic auth with the API key and refuses anything else", async () => {
    expect((await call("GET", "/api/v2/tailnet/example.com/devices")).status).toBe(200);
    expect((await call("GET", "/api/v2/tailnet/-/devices", undefined, `Basic ${Buffer.from(`${ts.apiKey}:`).toString("base64")}`)).status).toBe(200);
    const bad = await call("GET", "/api/v2/tailnet/-/devices", undefined, "Bearer tskey-api-nope");
    expect(bad.status).toBe(401);
    expect(bad.body).toEqual({ message: "API token invalid" });
  });

  it("refuses invalid tags, a too long description and an out-of-range expiry", async () => {
    expect((await call("POST", "/api/v2/tailnet/-/keys", keyRequest({ capabilities: { devices: { create: { tags: ["picortex"] } } } }))).status).toBe(400);
    expect((await call("POST", "/api/v2/tailnet/-/keys", keyRequest({ description: "x".repeat(51) }))).status).toBe(400);
    expect((await call("POST", "/api/v2/tailnet/-/keys", keyRequest({ expirySeconds: 91 * 24 * 3600 }))).status).toBe(400);
  });

  it("spends a single-use key on the first join: the second join is refused and the key reads invalid", async () => {
    const key = (await call("POST", "/api/v2/tailnet/-/keys", keyRequest())).body;
    const first = await join(key.key);
    expect(first.status).toBe(200);
    expect(first.body.device).toMatchObject({ hostname: "picortex", name: `picortex.${ts.tailnetDnsSuffix}`, authorized: true, tags: ["tag:picortex"], sshEnabled: true });
    expect(first.body.device.addresses[0]).toMatch(/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+$/);
    const second = await join(key.key, "other");
    expect(second.status).toBe(401);
    expect(second.body.message).toBe("invalid key: already used");
    expect((await call("GET", `/api/v2/tailnet/-/keys/${key.id}`)).body.invalid).toBe(true);
  });

  it("lets a reusable key join twice, and refuses an expired key", async () => {
    const reusable = (await call("POST", "/api/v2/tailnet/-/keys", keyRequest({ capabilities: { devices: { create: { reusable: true, tags: ["tag:picortex"] } } } }))).body;
    expect((await join(reusable.key, "a")).status).toBe(200);
    const b = await join(reusable.key, "b");
    expect(b.status).toBe(200);
    expect(b.body.device.authorized).toBe(false); // not preauthorized
    const short = (await call("POST", "/api/v2/tailnet/-/keys", keyRequest({ expirySeconds: 300 }))).body;
    ts.advanceClock(301);
    const late = await join(short.key);
    expect(late.status).toBe(401);
    expect(late.body.message).toBe("invalid key: expired");
    expect((await call("GET", `/api/v2/tailnet/-/keys/${short.id}`)).body.invalid).toBe(true);
  });

  it("refuses tags the key does not carry, and a deleted (revoked) key", async () => {
    const key = (await call("POST", "/api/v2/tailnet/-/keys", keyRequest())).body;
    const wrong = await join(key.key, "picortex", ["tag:admin"]);
    expect(wrong.status).toBe(403);
    expect((await call("DELETE", `/api/v2/tailnet/-/keys/${key.id}`)).status).toBe(200);
    expect((await call("GET", `/api/v2/tailnet/-/keys/${key.id}`)).status).toBe(404);
    expect((await join(key.key)).status).toBe(401);
  });
});

describe("Tailscale emulator: devices", () => {
  it("names a second node with a taken hostname <name>-1 while MagicDNS keeps the old one, until it is deleted", async () => {
    const k1 = (await call("POST", "/api/v2/tailnet/-/keys", keyRequest())).body;
    const k2 = (await call("POST", "/api/v2/tailnet/-/keys", keyRequest())).body;
    const old = (await join(k1.key)).body.device;
    const replacement = (await join(k2.key)).body.device;
    expect(replacement.name).toBe(`picortex-1.${ts.tailnetDnsSuffix}`);
    expect(replacement.hostname).toBe("picortex");
    expect(ts.resolve("picortex")).toEqual(old.addresses);
    expect(ts.resolve(`picortex-1.${ts.tailnetDnsSuffix}`)).toEqual(replacement.addresses);
    const list = await call("GET", "/api/v2/tailnet/-/devices");
    expect(list.body.devices).toHaveLength(2);
    const got = await call("GET", `/api/v2/device/${old.id}`);
    expect(Object.keys(got.body).sort()).toEqual(
      ["addresses", "advertisedRoutes", "authorized", "blocksIncomingConnections", "clientConnectivity", "clientVersion", "connectedToControl", "created", "enabledRoutes", "expires", "hostname", "id", "isEphemeral", "isExternal", "keyExpiryDisabled", "lastSeen", "machineKey", "name", "nodeId", "nodeKey", "os", "sshEnabled", "tags", "tailnetLockError", "tailnetLockKey", "updateAvailable", "user"].sort(),
    );
    expect((await call("DELETE", `/api/v2/device/${old.id}`)).status).toBe(200);
    expect((await call("GET", `/api/v2/device/${old.id}`)).status).toBe(404);
    expect(ts.resolve("picortex")).toBeUndefined();
    // A node joining now takes the free base name again.
    const k3 = (await call("POST", "/api/v2/tailnet/-/keys", keyRequest())).body;
    expect((await join(k3.key)).body.device.name).toBe(`picortex.${ts.tailnetDnsSuffix}`);
  });
});

/** A token request as golang.org/x/oauth2/clientcredentials sends it (Basic first) or as the KB's curl does (form fields). */
async function tokenRequest(opts: { basic?: [string, string]; form?: Record<string, string>; query?: string; contentType?: string } = {}) {
  const headers: Record<string, string> = { "content-type": opts.contentType ?? "application/x-www-form-urlencoded" };
  if (opts.basic) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(opts.basic[0])}:${encodeURIComponent(opts.basic[1])}`).toString("base64")}`;
  const res = await fetch(`${ts.baseUrl}/api/v2/oauth/token${opts.query ?? ""}`, { method: "POST", headers, body: new URLSearchParams(opts.form ?? {}).toString() });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get("content-type"), body: (text ? JSON.parse(text) : undefined) as any };
}

const grant = (over: Record<string, string> = {}) => ({ grant_type: "client_credentials", ...over });

describe("Tailscale emulator: OAuth client", () => {
  it("grants an access token for the client credentials, as HTTP Basic or as form fields, with Tailscale's answer shape", async () => {
    const viaBasic = await tokenRequest({ basic: [ts.oauthClient.id, ts.oauthClient.secret], form: grant() });
    expect(viaBasic.status).toBe(200);
    expect(viaBasic.contentType).toMatch(/^application\/json/);
    expect(Object.keys(viaBasic.body).sort()).toEqual(["access_token", "expires_in", "scope", "token_type"]);
    expect(viaBasic.body).toMatchObject({ token_type: "Bearer", expires_in: 3600, scope: "auth_keys devices:core" });
    expect(viaBasic.body.access_token).toMatch(/^tskey-api-k[0-9A-F]+CNTRL-[0-9a-f]{32}$/);
    // The KB's curl: form fields, no grant_type.
    const viaForm = await tokenRequest({ form: { client_id: ts.oauthClient.id, client_secret: ts.oauthClient.secret } });
    expect(viaForm.status).toBe(200);
    expect(viaForm.body.access_token).not.toBe(viaBasic.body.access_token);
    // The token works like an API key: Bearer (what oauth2.Transport sends) and Basic user.
    expect((await call("GET", "/api/v2/tailnet/-/devices", undefined, `Bearer ${viaBasic.body.access_token}`)).status).toBe(200);
    expect((await call("GET", "/api/v2/tailnet/-/devices", undefined, `Basic ${Buffer.from(`${viaForm.body.access_token}:`).toString("base64")}`)).status).toBe(200);
    // A narrower scope on request gives a narrower token.
    const narrow = await tokenRequest({ basic: [ts.oauthClient.id, ts.oauthClient.secret], form: grant({ scope: "devices:core:read" }) });
    expect(narrow.body.scope).toBe("devices:core:read");
  });

  it("refuses a wrong secret, a wrong id, a secret used as the id, a missing secret and the API key, all with Tailscale's 401", async () => {
    const { id, secret } = ts.oauthClient;
    const attempts = [
      { basic: [id, `${secret.slice(0, -1)}${secret.endsWith("0") ? "1" : "0"}`] as [string, string], form: grant() },
      { basic: [id, secret.slice(0, -1)] as [string, string], form: grant() },
      { basic: [`${id}X`, secret] as [string, string], form: grant() },
      { basic: [secret, id] as [string, string], form: grant() },
      { form: grant({ client_id: id }) },
      { form: grant({ client_id: id, client_secret: ts.apiKey }) },
      { form: grant({ client_id: "", client_secret: "" }) },
      { form: grant() },
    ];
    for (const a of attempts) {
      const r = await tokenRequest(a);
      expect(r.status, JSON.stringify(a.form)).toBe(401);
      expect(r.body).toEqual({ message: "API token invalid" });
    }
    // Another grant type, a JSON body and credentials in the URL are refused too.
    expect((await tokenRequest({ basic: [id, secret], form: grant({ grant_type: "password" }) })).status).toBe(400);
    expect((await tokenRequest({ basic: [id, secret], contentType: "application/json", form: grant() })).status).toBe(400);
    expect((await tokenRequest({ query: `?client_id=${id}&client_secret=${secret}`, form: grant() })).status).toBe(400);
    // A scope the client was never granted.
    const wider = await tokenRequest({ basic: [id, secret], form: grant({ scope: "all" }) });
    expect(wider.status).toBe(400);
    expect(ts.accessTokens()).toEqual([]);
    // The client secret itself is no API credential.
    expect((await call("GET", "/api/v2/tailnet/-/devices", undefined, `Bearer ${secret}`)).status).toBe(401);
  });

  it("limits an access token to its scopes: keys need auth_keys, devices need devices:core (403 otherwise)", async () => {
    const { id, secret } = ts.oauthClient;
    const devicesOnly = (await tokenRequest({ basic: [id, secret], form: grant({ scope: "devices:core" }) })).body.access_token;
    const keysOnly = (await tokenRequest({ basic: [id, secret], form: grant({ scope: "auth_keys" }) })).body.access_token;
    const readOnly = (await tokenRequest({ basic: [id, secret], form: grant({ scope: "devices:core:read auth_keys:read" }) })).body.access_token;
    const refused = { message: "calling actor does not have enough permissions to perform this function" };
    const create = await call("POST", "/api/v2/tailnet/-/keys", keyRequest(), `Bearer ${devicesOnly}`);
    expect(create.status).toBe(403);
    expect(create.body).toEqual(refused);
    expect((await call("GET", "/api/v2/tailnet/-/keys", undefined, `Bearer ${devicesOnly}`)).status).toBe(403);
    expect(ts.snapshot().keys).toEqual([]);
    const key = await call("POST", "/api/v2/tailnet/-/keys", keyRequest(), `Bearer ${keysOnly}`);
    expect(key.status).toBe(200);
    expect((await call("GET", "/api/v2/tailnet/-/devices", undefined, `Bearer ${keysOnly}`)).status).toBe(403);
    const device = (await join(key.body.key)).body.device;
    expect((await call("DELETE", `/api/v2/device/${device.id}`, undefined, `Bearer ${keysOnly}`)).status).toBe(403);
    // Read scopes read, and never write.
    expect((await call("GET", "/api/v2/tailnet/-/devices", undefined, `Bearer ${readOnly}`)).status).toBe(200);
    expect((await call("GET", `/api/v2/tailnet/-/keys/${key.body.id}`, undefined, `Bearer ${readOnly}`)).status).toBe(200);
    expect((await call("DELETE", `/api/v2/device/${device.id}`, undefined, `Bearer ${readOnly}`)).status).toBe(403);
    expect((await call("DELETE", `/api/v2/tailnet/-/keys/${key.body.id}`, undefined, `Bearer ${readOnly}`)).status).toBe(403);
    expect(ts.snapshot().devices).toHaveLength(1);
    expect((await call("DELETE", `/api/v2/device/${device.id}`, undefined, `Bearer ${devicesOnly}`)).status).toBe(200);
    expect(ts.snapshot().devices).toEqual([]);
  });

  it("refuses an untagged key, or one with a tag the client does not own, from an OAuth token (the API key may)", async () => {
    const { id, secret } = ts.oauthClient;
    const token = (await tokenRequest({ basic: [id, secret], form: grant() })).body.access_token;
    const untagged = keyRequest({ capabilities: { devices: { create: { reusable: false, ephemeral: false, preauthorized: true } } } });
    const noTags = await call("POST", "/api/v2/tailnet/-/keys", untagged, `Bearer ${token}`);
    expect(noTags.status).toBe(400);
    expect(noTags.body).toEqual({ message: "tailnet-owned auth key must have tags set" });
    const emptyTags = await call("POST", "/api/v2/tailnet/-/keys", keyRequest({ capabilities: { devices: { create: { tags: [] } } } }), `Bearer ${token}`);
    expect(emptyTags.body).toEqual({ message: "tailnet-owned auth key must have tags set" });
    const foreign = await call("POST", "/api/v2/tailnet/-/keys", keyRequest({ capabilities: { devices: { create: { tags: ["tag:picortex", "tag:admin"] } } } }), `Bearer ${token}`);
    expect(foreign.status).toBe(400);
    expect(foreign.body).toEqual({ message: "requested tags [tag:picortex tag:admin] are invalid or not permitted" });
    expect(ts.snapshot().keys).toEqual([]);
    // The user-owned API key may create an untagged key; the OAuth client its owned tag.
    expect((await call("POST", "/api/v2/tailnet/-/keys", untagged)).status).toBe(200);
    expect((await call("POST", "/api/v2/tailnet/-/keys", keyRequest(), `Bearer ${token}`)).status).toBe(200);
  });

  it("expires access tokens on the emulator's clock; a fresh grant works again", async () => {
    const { id, secret } = ts.oauthClient;
    const token = (await tokenRequest({ basic: [id, secret], form: grant() })).body.access_token;
    ts.advanceClock(3599);
    expect((await call("GET", "/api/v2/tailnet/-/devices", undefined, `Bearer ${token}`)).status).toBe(200);
    ts.advanceClock(1);
    const late = await call("GET", "/api/v2/tailnet/-/devices", undefined, `Bearer ${token}`);
    expect(late.status).toBe(401);
    expect(late.body).toEqual({ message: "API token invalid" });
    expect((await call("POST", "/api/v2/tailnet/-/keys", keyRequest(), `Bearer ${token}`)).status).toBe(401);
    const fresh = (await tokenRequest({ basic: [id, secret], form: grant() })).body.access_token;
    expect((await call("GET", "/api/v2/tailnet/-/devices", undefined, `Bearer ${fresh}`)).status).toBe(200);
  });

  it("never records the client secret or an access token in the request log", async () => {
    const { id, secret } = ts.oauthClient;
    const a = await tokenRequest({ basic: [id, secret], form: grant({ scope: "auth_keys" }) });
    const b = await tokenRequest({ form: grant({ client_id: id, client_secret: secret }) });
    await tokenRequest({ form: grant({ client_id: id, client_secret: `${secret}-wrong` }) });
    await tokenRequest({ query: `?client_secret=${secret}`, form: grant() });
    await tokenRequest({ basic: [id, secret], contentType: "text/plain", form: grant({ client_secret: secret }) });
    await call("GET", "/api/v2/tailnet/-/devices", undefined, `Bearer ${a.body.access_token}`);
    await call("POST", "/api/v2/tailnet/-/keys", keyRequest(), `Bearer ${b.body.access_token}`);
    const logged = JSON.stringify(ts.requests);
    for (const s of [secret, secret.slice(-32), a.body.access_token, b.body.access_token]) expect(logged).not.toContain(s);
    expect(ts.accessTokens()).toEqual([a.body.access_token, b.body.access_token]);
    // What is kept is enough to follow the traffic.
    const tokenCalls = ts.requests.filter((q) => q.path === "/api/v2/oauth/token");
    expect(tokenCalls.map((q) => q.status)).toEqual([200, 200, 401, 400, 400]);
    expect(tokenCalls[0]).toMatchObject({ query: "", body: { grant_type: "client_credentials", scope: "auth_keys" } });
    expect(tokenCalls[1]!.body).toEqual({ grant_type: "client_credentials", client_id: id });
  });
});

describe("the tailscale provider double with an OAuth client (rule T7: clientcredentials + ReuseTokenSource)", () => {
  const KEY = "tailscale:index/tailnetKey:TailnetKey";
  const ctxOf = (config: Props): Ctx => ({ config, preview: false, urn: "urn:pulumi:prod::picortex::tailscale:index/tailnetKey:TailnetKey::k", name: "k", type: KEY, log: async () => {} });
  const keyInputs = { reusable: false, ephemeral: false, preauthorized: true, tags: ["tag:picortex"], expiry: 3600, description: "picortex" };
  const provider = tailscaleProvider("0.29.1");
  const getDevices = (ctx: Ctx) => provider.invokes!["tailscale:index/getDevices:getDevices"]!(ctx, {});
  // The provider falls back to these: a developer's own credentials must not leak in.
  beforeEach(() => {
    for (const v of ["TAILSCALE_API_KEY", "TAILSCALE_OAUTH_CLIENT_ID", "TAILSCALE_OAUTH_CLIENT_SECRET", "OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET", "TAILSCALE_TAILNET", "TAILSCALE_BASE_URL"]) vi.stubEnv(v, "");
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("exchanges the client credentials once (HTTP Basic first) and reuses the token for every call until it expires", async () => {
    const config = await provider.configure({ oauthClientId: ts.oauthClient.id, oauthClientSecret: ts.oauthClient.secret, tailnet: "-", baseUrl: ts.baseUrl });
    const ctx = ctxOf(config);
    const created = await provider.resources[KEY]!.create(ctx, keyInputs);
    expect(created.outs.key).toMatch(/^tskey-auth-/);
    expect(await provider.resources[KEY]!.read(ctx, created.id, created.outs, keyInputs)).not.toBeNull();
    await getDevices(ctx);
    const tokenCalls = ts.requests.filter((q) => q.path === "/api/v2/oauth/token");
    expect(tokenCalls).toHaveLength(1);
    expect(tokenCalls[0]).toMatchObject({ status: 200, body: { grant_type: "client_credentials" } });
    // Basic, as oauth2 tries first: no client_id in the form.
    expect((tokenCalls[0]!.body as Props).client_id).toBeUndefined();
    expect(ts.requests.filter((q) => q.path !== "/api/v2/oauth/token").every((q) => q.status === 200)).toBe(true);
    // The API key was never used: the emulator refuses the token once it expires, and the
    // double, like oauth2 (the token's expiry is the provider's own clock), does not refetch early.
    ts.advanceClock(3600);
    await expect(provider.resources[KEY]!.read(ctx, created.id, created.outs, keyInputs)).rejects.toThrow(/API token invalid \(401\)/);
  });

  it("fetches a new token when the one it has is within oauth2's 10 s expiry delta", async () => {
    await ts.close();
    ts = await startTailscaleEmulator({ accessTokenTtlSeconds: 10 });
    const ctx = ctxOf(await provider.configure({ oauthClientId: ts.oauthClient.id, oauthClientSecret: ts.oauthClient.secret, baseUrl: ts.baseUrl }));
    await getDevices(ctx);
    await getDevices(ctx);
    expect(ts.requests.filter((q) => q.path === "/api/v2/oauth/token" && q.status === 200)).toHaveLength(2);
  });

  it("fails every call with oauth2's error when the secret is wrong, after trying Basic and then the form", async () => {
    const ctx = ctxOf(await provider.configure({ oauthClientId: ts.oauthClient.id, oauthClientSecret: `${ts.oauthClient.secret}x`, baseUrl: ts.baseUrl }));
    const err = await provider.resources[KEY]!.create(ctx, keyInputs).catch((e: Error) => e);
    expect(String((err as Error).message)).toBe(`Post "${ts.baseUrl}/api/v2/tailnet/-/keys": oauth2: cannot fetch token: 401 Unauthorized\nResponse: {"message":"API token invalid"}`);
    const tokenCalls = ts.requests.filter((q) => q.path === "/api/v2/oauth/token");
    expect(tokenCalls.map((q) => [q.status, (q.body as Props).client_id ?? "basic"])).toEqual([
      [401, "basic"],
      [401, ts.oauthClient.id],
    ]);
    expect(ts.snapshot().keys).toEqual([]);
    expect(JSON.stringify(ts.requests)).not.toContain(ts.oauthClient.secret);
  });

  it("falls back to form fields for a token endpoint that refuses Basic, and remembers that", async () => {
    const seen: string[] = [];
    const srv = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        if (req.url === "/api/v2/oauth/token") {
          const form = new URLSearchParams(body);
          seen.push(req.headers.authorization ? "basic" : `form:${form.get("client_id")}:${form.get("scope")}`);
          if (req.headers.authorization || form.get("client_secret") !== "s e+c/ret") {
            res.writeHead(401, { "content-type": "application/json" }).end('{"message":"API token invalid"}');
            return;
          }
          res.writeHead(200, { "content-type": "application/json" }).end('{"access_token":"t1","token_type":"bearer","expires_in":3600}');
          return;
        }
        seen.push(`api:${req.headers.authorization}`);
        res.writeHead(200, { "content-type": "application/json" }).end('{"devices":[]}');
      });
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
      const ctx = ctxOf(await provider.configure({ oauthClientId: "kID", oauthClientSecret: "s e+c/ret", baseUrl: base, scopes: JSON.stringify(["devices:core", "auth_keys"]) }));
      await getDevices(ctx);
      await getDevices(ctx);
      expect(seen).toEqual(["basic", "form:kID:devices:core auth_keys", "api:Bearer t1", "api:Bearer t1"]);
    } finally {
      await new Promise((r) => srv.close(r));
    }
    // url.QueryEscape, as oauth2 escapes the Basic user and password.
    expect(goQueryEscape("a b+c/d~e-f_g.h!")).toBe("a+b%2Bc%2Fd~e-f_g.h%21");
  });

  it("with an API key instead, sends it as the HTTP Basic user and never asks for a token", async () => {
    const ctx = ctxOf(await provider.configure({ apiKey: ts.apiKey, baseUrl: ts.baseUrl }));
    const created = await provider.resources[KEY]!.create(ctx, { ...keyInputs, tags: [] });
    expect(created.outs.key).toMatch(/^tskey-auth-/);
    expect(ts.requests.map((q) => `${q.method} ${q.path} ${q.status}`)).toEqual(["POST /api/v2/tailnet/-/keys 200"]);
    const wrong = ctxOf(await provider.configure({ apiKey: `${ts.apiKey}x`, baseUrl: ts.baseUrl }));
    await expect(getDevices(wrong)).rejects.toThrow("API token invalid (401)");
  });

  it("refuses an API key together with an OAuth client, and an id without a secret, with the provider's messages", async () => {
    await expect(Promise.resolve().then(() => provider.configure({ apiKey: ts.apiKey, oauthClientId: ts.oauthClient.id, oauthClientSecret: ts.oauthClient.secret }))).rejects.toThrow(/credentials are conflicting - `api_key` conflicts with 'oauth_client_id'/);
    await expect(Promise.resolve().then(() => provider.configure({ oauthClientId: ts.oauthClient.id }))).rejects.toThrow(/'oauth_client_secret', 'identity_token', or 'audience' are mandatory with 'oauth_client_id'/);
    await expect(Promise.resolve().then(() => provider.configure({ oauthClientSecret: ts.oauthClient.secret }))).rejects.toThrow(/argument 'oauth_client_id' is empty/);
  });
});
