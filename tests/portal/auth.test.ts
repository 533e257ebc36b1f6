import { afterEach, describe, expect, it } from "vitest";
import { readFileSync, statSync } from "node:fs";
import { portalTokenPaths } from "../../agent-runtime/portal/tokens.js";
import { COOKIE_NAME } from "../../agent-runtime/portal/session-cookie.js";
import { PROMPT, TestClient, signIn, startTestPortal, upgradeStatus, type TestPortal } from "./helpers.js";

let p: TestPortal | undefined;
afterEach(async () => {
  await p?.close();
  p = undefined;
});

const post = (portal: TestPortal, token: string, headers: Record<string, string> = {}) =>
  fetch(`${portal.url}/portal/api/session`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: portal.origin, ...headers },
    body: JSON.stringify({ token }),
  });

describe("portal auth", () => {
  it("generates its tokens on first start, stored 0600, and keeps them across restarts", async () => {
    p = await startTestPortal({ readOnlyToken: true });
    const paths = portalTokenPaths(p.dataDir);
    expect(statSync(paths.readWrite).mode & 0o777).toBe(0o600);
    expect(statSync(paths.readOnly).mode & 0o777).toBe(0o600);
    expect(readFileSync(paths.readWrite, "utf8").trim()).toBe(p.token);
    expect(p.token).not.toBe(p.readOnlyToken);
    expect(p.token.length).toBeGreaterThanOrEqual(40);
  });

  it("the bare address the banner prints sends a browser to the portal (no token, no cookie involved)", async () => {
    p = await startTestPortal();
    const res = await fetch(`${p.url}/`, { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/portal/");
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  it("exchanges the token once for an HttpOnly SameSite=Strict cookie (Secure behind HTTPS)", async () => {
    p = await startTestPortal();
    const bad = await post(p, "ppt_wrong");
    expect(bad.status).toBe(401);
    expect(bad.headers.get("set-cookie")).toBeNull();

    const ok = await post(p, p.token);
    expect(ok.status).toBe(200);
    const cookie = ok.headers.get("set-cookie")!;
    expect(cookie).toMatch(new RegExp(`^${COOKIE_NAME}=v1\\.rw\\.`));
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toContain("Path=/portal");
    expect(cookie).not.toContain("Secure");
    expect(cookie).not.toContain(p.token);

    // `tailscale serve` (HTTPS) proxies from loopback with X-Forwarded-Proto.
    const viaHttps = await post(p, p.token, { "x-forwarded-proto": "https" });
    expect(viaHttps.headers.get("set-cookie")).toMatch(/; Secure/);

    const value = /=([^;]+)/.exec(cookie)![1]!;
    const who = await fetch(`${p.url}/portal/api/whoami`, { headers: { cookie: `${COOKIE_NAME}=${value}` } });
    expect(await who.json()).toMatchObject({ role: "rw" });
    // A forged cookie (role flipped, same MAC) is not accepted.
    const forged = value.replace("v1.rw.", "v1.ro.");
    expect((await fetch(`${p.url}/portal/api/whoami`, { headers: { cookie: `${COOKIE_NAME}=${forged}` } })).status).toBe(401);
  });

  it("refuses a cross-site sign-in (CSRF) with 403", async () => {
    p = await startTestPortal();
    const res = await post(p, p.token, { origin: "http://evil.example" });
    expect(res.status).toBe(403);
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  it("upgrades only with the cookie (401 without) and an exact allowed Origin (403 otherwise)", async () => {
    p = await startTestPortal();
    const cookie = await signIn(p, p.token);
    expect(await upgradeStatus(p.url, { origin: p.origin })).toBe(401);
    expect(await upgradeStatus(p.url, { origin: p.origin, cookie: `${COOKIE_NAME}=v1.rw.9999999999.AAAAAAAAAAAAAAAA.${"A".repeat(43)}` })).toBe(401);
    // Cross-site WebSocket hijacking: the browser sends the cookie, the Origin gives it away.
    expect(await upgradeStatus(p.url, { origin: "http://evil.example", cookie })).toBe(403);
    expect(await upgradeStatus(p.url, { origin: `${p.origin}.evil.example`, cookie })).toBe(403);
    expect(await upgradeStatus(p.url, { origin: p.origin.replace("http:", "https:"), cookie })).toBe(403);
    expect(await upgradeStatus(p.url, { cookie })).toBe(403);
    expect(await upgradeStatus(p.url, { origin: p.origin, cookie })).toBe(101);
  });

  it("accepts an Origin the operator allowed (e.g. the MagicDNS name) and nothing near it", async () => {
    const magic = "http://agent-host.tail1234.ts.net:7420";
    p = await startTestPortal({}, { allowedOrigins: [magic] });
    const cookie = await signIn(p, p.token);
    const port = new URL(p.url).port;
    expect(await upgradeStatus(p.url, { origin: magic, cookie })).toBe(101);
    expect(await upgradeStatus(p.url, { origin: `http://localhost:${port}`, cookie })).toBe(101);
    expect(await upgradeStatus(p.url, { origin: "http://agent-host.tail1234.ts.net:7421", cookie })).toBe(403);
    expect(await upgradeStatus(p.url, { origin: "http://agent-host.tail1234.ts.net", cookie })).toBe(403);
    expect(await upgradeStatus(p.url, { origin: `http://localhost:${Number(port) + 1}`, cookie })).toBe(403);
  });

  it("rate-limits failed attempts per client bucket with 429, but never refuses a correct token", async () => {
    p = await startTestPortal({ authFailureLimit: 3, authFailureWindowSeconds: 600 });
    for (let i = 0; i < 3; i++) expect((await post(p, `ppt_guess_${i}`)).status).toBe(401);
    const limited = await post(p, "ppt_guess_again");
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await upgradeStatus(p.url, { origin: p.origin })).toBe(429);
    // The operator's right token still signs in, and its cookie still upgrades.
    const cookie = await signIn(p, p.token);
    expect(await upgradeStatus(p.url, { origin: p.origin, cookie })).toBe(101);
  });

  it("counts failed WebSocket upgrades toward the same limit", async () => {
    p = await startTestPortal({ authFailureLimit: 2 });
    expect(await upgradeStatus(p.url, { origin: p.origin })).toBe(401);
    expect(await upgradeStatus(p.url, { origin: p.origin, cookie: `${COOKIE_NAME}=nope` })).toBe(401);
    expect((await post(p, "ppt_wrong")).status).toBe(429);
  });

  it("never writes a token or cookie into a log line", async () => {
    p = await startTestPortal({ readOnlyToken: true });
    await post(p, "ppt_wrong");
    const cookie = await signIn(p, p.token);
    await signIn(p, p.readOnlyToken!);
    const c = await TestClient.connect(p, { cookie });
    await c.waitForText(PROMPT);
    await c.close();
    await upgradeStatus(p.url, { origin: "http://evil.example", cookie });
    const logs = p.logs.join("\n");
    expect(logs).toContain("portal sign-in");
    expect(logs).toContain("Origin not allowed");
    expect(logs).not.toContain(p.token);
    expect(logs).not.toContain(p.readOnlyToken!);
    expect(logs).not.toContain(cookie.split("=")[1]!);
  });

  it("serves the page with a strict CSP, no inline or remote script, and no Referer", async () => {
    p = await startTestPortal();
    const res = await fetch(`${p.url}/portal/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    const html = await res.text();
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    expect(html).toContain(`content="${nonce}"`);
    expect(html).not.toMatch(/<script>|https?:\/\//);
    const js = /src="assets\/(app-[A-Z0-9]+\.js)"/.exec(html)![1]!;
    const asset = await fetch(`${p.url}/portal/assets/${js}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("cache-control")).toContain("immutable");
    expect(await asset.text()).not.toMatch(/cdn\.jsdelivr|unpkg\.com/);
    expect((await fetch(`${p.url}/portal/assets/..%2F..%2Fportal-token`)).status).toBe(404);
    expect((await fetch(`${p.url}/portal`, { redirect: "manual" })).headers.get("location")).toBe("/portal/");
  });
});
