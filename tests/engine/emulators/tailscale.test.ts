/**
 * The Tailscale API emulator's rules (issue 22 item 5): auth keys (single use, expiry,
 * tags, preauthorized), joins, `<name>-1` naming, device delete, field completeness.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startTailscaleEmulator, type TailscaleEmulator } from "./tailscale/index.js";

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
    expect(Object.keys(got.body).sort()).toEqual(["capabilities", "created", "description", "expires", "id", "invalid", "keyType", "tags", "updated", "userId"]);
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
