/**
 * Attacker finding 6: read-only and read-write sockets shared portal.maxClients and only
 * stalled paused clients were evicted, so a few reading viewers (a read-only link handed
 * around) locked the operator out of the portal with 503.
 */
import { afterAll, expect, it } from "vitest";
import { CloseCode } from "../../agent-runtime/portal/protocol.js";
import { TestClient, signIn, startTestPortal, upgradeStatus, type TestPortal } from "./helpers.js";

let p: TestPortal;
const open: TestClient[] = [];
afterAll(async () => {
  for (const c of open) await c.close().catch(() => undefined);
  await p?.close();
});

it("at maxClients a read-write sign-in displaces the oldest read-only viewer, who is told why; viewers never displace anyone", async () => {
  p = await startTestPortal({ maxClients: 3, readOnlyToken: true });
  const ro = await signIn(p, p.readOnlyToken!);
  const rw = await signIn(p, p.token);
  const viewers: TestClient[] = [];
  for (let i = 0; i < 3; i++) viewers.push(await TestClient.connect(p, { cookie: ro }));
  open.push(...viewers);

  // A fourth viewer does not get in: viewers cannot push each other (or anyone) out.
  expect(await upgradeStatus(p.url, { origin: p.origin, cookie: ro })).toBe(503);

  // The operator gets in and works, however many viewers are reading.
  const operator = await TestClient.connect(p, { cookie: rw });
  open.push(operator);
  expect(operator.ready?.readOnly).toBe(false);

  // The oldest viewer is closed with DISPLACED and a reason; the other two keep watching.
  await viewers[0]!.waitClosed();
  expect(viewers[0]!.closeCode).toBe(CloseCode.DISPLACED);
  expect(viewers[0]!.closeReason).toMatch(/read-write operator signed in.*maxClients/);
  expect(viewers[1]!.closeCode).toBeUndefined();
  expect(viewers[2]!.closeCode).toBeUndefined();

  // Each further operator displaces the next-oldest viewer; once only operators remain, 503.
  const op2 = await TestClient.connect(p, { cookie: rw });
  const op3 = await TestClient.connect(p, { cookie: rw });
  open.push(op2, op3);
  await viewers[1]!.waitClosed();
  await viewers[2]!.waitClosed();
  expect([viewers[1]!.closeCode, viewers[2]!.closeCode]).toEqual([CloseCode.DISPLACED, CloseCode.DISPLACED]);
  expect(await upgradeStatus(p.url, { origin: p.origin, cookie: rw })).toBe(503);
  expect(operator.closeCode).toBeUndefined();
}, 120_000);
