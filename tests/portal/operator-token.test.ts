/**
 * On a host the operator holds the runtime API token (a Pulumi secret) but is neither
 * root nor the runtime user; POST /portal/api/token is how they get the portal token.
 */
import { afterEach, expect, it } from "vitest";
import { startTestPortal, type TestPortal } from "./helpers.js";

let p: TestPortal | undefined;
afterEach(async () => {
  await p?.close();
  p = undefined;
});

const ask = (portal: TestPortal, bearer: string | undefined, body: unknown = {}) =>
  fetch(`${portal.url}/portal/api/token`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
  });

it("gives the portal tokens to a holder of the runtime API token, and to nobody else", async () => {
  p = await startTestPortal({ readOnlyToken: true });
  const apiToken = p.runtime.apiToken;

  const rw = await ask(p, apiToken);
  expect(rw.status).toBe(200);
  expect(rw.headers.get("cache-control")).toBe("no-store");
  expect(await rw.json()).toEqual({ role: "read-write", token: p.token });
  const ro = await ask(p, apiToken, { role: "read-only" });
  expect(await ro.json()).toEqual({ role: "read-only", token: p.readOnlyToken });

  // The portal token itself, or no token, buys nothing; a bad body is a 400.
  expect((await ask(p, p.token)).status).toBe(401);
  expect((await ask(p, undefined)).status).toBe(401);
  expect((await ask(p, apiToken, { role: "admin" })).status).toBe(400);

  // Neither token ever reaches the log.
  const log = p.logs.join("\n");
  expect(log).toMatch(/portal token issued/);
  expect(log).not.toContain(p.token);
  expect(log).not.toContain(apiToken);
});

it("rate-limits failed attempts per client", async () => {
  p = await startTestPortal();
  let status = 0;
  for (let i = 0; i < 50 && status !== 429; i++) status = (await ask(p, "pct_wrong-token-guess")).status;
  expect(status).toBe(429);
  // Once limited, wrong tokens wait; the right token is never refused (a chat's agent
  // sending bad tokens over loopback cannot lock the operator out).
  const limited = await ask(p, "pct_another-guess");
  expect(limited.status).toBe(429);
  expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
  expect((await ask(p, p.runtime.apiToken)).status).toBe(200);
  // The shared guard limits the status endpoint too (it used to compare without a limit).
  expect((await fetch(`${p.url}/portal/api/status`, { headers: { authorization: "Bearer pct_guess-again" } })).status).toBe(429);
  expect((await fetch(`${p.url}/portal/api/status`, { headers: { authorization: `Bearer ${p.runtime.apiToken}` } })).status).toBe(200);
});
