import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { post, sampleEntry, startBrainRuntime } from "./helpers.js";

// The sync server mounted in a real runtime on loopback: auth, workspace isolation,
// validation, idempotency and sequence cursors, over HTTP.
let rt: Awaited<ReturnType<typeof startBrainRuntime>>;
let tokenA: string;
let tokenB: string;
const key = (n: number) => `idem-key-${String(n).padStart(8, "0")}`;

beforeAll(async () => {
  rt = await startBrainRuntime();
  tokenA = rt.store.createToken("ws1", "laptop").token;
  tokenB = rt.store.createToken("ws2", "other org").token;
});
afterAll(async () => rt?.stop());

describe("brain sync server", () => {
  it("requires a valid brain token (the runtime API token is not one)", async () => {
    expect((await post(rt.url, "/v1/brain/pull", { cursor: 0 })).status).toBe(401);
    expect((await post(rt.url, "/v1/brain/pull", { cursor: 0 }, "pcb_not-a-real-token")).status).toBe(401);
    expect((await post(rt.url, "/v1/brain/pull", { cursor: 0 }, rt.runtime.apiToken)).status).toBe(401);
    const ok = await post(rt.url, "/v1/brain/pull", { cursor: 0 }, tokenA);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ entries: [], cursor: 0, hasMore: false, head: expect.any(Number), serverId: expect.stringMatching(/^[0-9a-f]{24}$/) });
  });

  it("token admin routes need the runtime API token; a brain token cannot issue tokens", async () => {
    const get = (token?: string) => fetch(`${rt.url}/v1/brain/tokens`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect((await get()).status).toBe(401);
    expect((await get(tokenA)).status).toBe(401);
    expect((await post(rt.url, "/v1/brain/tokens", { workspaceId: "ws9" }, tokenA)).status).toBe(401);
    const created = await post(rt.url, "/v1/brain/tokens", { workspaceId: "ws9", label: "from admin" }, rt.runtime.apiToken);
    expect(created.status).toBe(201);
    const body = (await created.json()) as { tokenId: string; workspaceId: string; token: string };
    expect(body).toMatchObject({ workspaceId: "ws9", token: expect.stringMatching(/^pcb_/) });
    expect((await post(rt.url, "/v1/brain/pull", { cursor: 0 }, body.token)).status).toBe(200);
    const listed = (await (await get(rt.runtime.apiToken)).json()) as { tokens: Array<{ tokenId: string }> };
    expect(listed.tokens.map((t) => t.tokenId)).toContain(body.tokenId);
    expect(JSON.stringify(listed)).not.toContain(body.token);
    expect((await post(rt.url, "/v1/brain/tokens", { workspaceId: "bad id!" }, rt.runtime.apiToken)).status).toBe(400);
    const del = await fetch(`${rt.url}/v1/brain/tokens/${body.tokenId}`, { method: "DELETE", headers: { authorization: `Bearer ${rt.runtime.apiToken}` } });
    expect(del.status).toBe(200);
    expect((await post(rt.url, "/v1/brain/pull", { cursor: 0 }, body.token)).status).toBe(401);
  });

  it("a revoked token stops working", async () => {
    const { token, info } = rt.store.createToken("ws1", "temp");
    expect((await post(rt.url, "/v1/brain/pull", { cursor: 0 }, token)).status).toBe(200);
    expect(rt.store.revokeToken(info.tokenId)).toBe(true);
    expect((await post(rt.url, "/v1/brain/pull", { cursor: 0 }, token)).status).toBe(401);
  });

  it("a token for workspace A can never write or read workspace B", async () => {
    const intoB = await post(rt.url, "/v1/brain/push", { idempotencyKey: key(1), entries: [sampleEntry({ entryId: "iso-1", workspaceId: "ws2" })] }, tokenA);
    expect(intoB.status).toBe(400);
    expect(((await intoB.json()) as { error: { message: string } }).error.message).toMatch(/belongs to workspace ws2.*token is for ws1/);
    // B writes its own entry with the same id as one in A: the two never mix.
    expect((await post(rt.url, "/v1/brain/push", { idempotencyKey: key(2), entries: [sampleEntry({ entryId: "shared-id", workspaceId: "ws2", title: "B's" })] }, tokenB)).status).toBe(200);
    expect((await post(rt.url, "/v1/brain/push", { idempotencyKey: key(3), entries: [sampleEntry({ entryId: "shared-id", workspaceId: "ws1", title: "A's" })] }, tokenA)).status).toBe(200);
    const pullA = (await (await post(rt.url, "/v1/brain/pull", { cursor: 0 }, tokenA)).json()) as { entries: Array<{ entryId: string; title: string; workspaceId: string }> };
    const pullB = (await (await post(rt.url, "/v1/brain/pull", { cursor: 0 }, tokenB)).json()) as { entries: Array<{ entryId: string; title: string; workspaceId: string }> };
    expect(pullA.entries.every((e) => e.workspaceId === "ws1")).toBe(true);
    expect(pullB.entries.map((e) => [e.entryId, e.title, e.workspaceId])).toEqual([["shared-id", "B's", "ws2"]]);
    expect(pullA.entries.find((e) => e.entryId === "shared-id")?.title).toBe("A's");
    expect(pullA.entries.some((e) => e.entryId === "iso-1")).toBe(false);
  });

  it("validates bodies with clear errors and enforces size limits", async () => {
    const bad = await post(rt.url, "/v1/brain/push", { idempotencyKey: key(4), entries: [sampleEntry({ kind: "rumour" as never })] }, tokenA);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/entries\.0\.kind/);
    expect((await post(rt.url, "/v1/brain/push", { idempotencyKey: key(5), entries: [sampleEntry({ version: "yesterday" })] }, tokenA)).status).toBe(400);
    expect((await post(rt.url, "/v1/brain/push", { idempotencyKey: "short", entries: [sampleEntry()] }, tokenA)).status).toBe(400);
    expect((await post(rt.url, "/v1/brain/push", "{not json", tokenA)).status).toBe(400);
    expect((await post(rt.url, "/v1/brain/pull", { cursor: -1 }, tokenA)).status).toBe(400);
    expect((await post(rt.url, "/v1/brain/pull", { cursor: 0, extra: 1 }, tokenA)).status).toBe(400);
    const huge = await post(rt.url, "/v1/brain/pull", { cursor: 0, pad: "x".repeat(10_000) }, tokenA);
    expect(huge.status).toBe(413);
  });

  it("a repeated push with the same idempotency key is applied once and answered the same", async () => {
    const body = { idempotencyKey: key(6), entries: [sampleEntry({ entryId: "idem-1", version: "000000000000005-000000-n1" })] };
    const first = (await (await post(rt.url, "/v1/brain/push", body, tokenA)).json()) as { applied: number; seq: number; replayed: boolean };
    const again = (await (await post(rt.url, "/v1/brain/push", body, tokenA)).json()) as { applied: number; seq: number; replayed: boolean };
    expect(first).toMatchObject({ applied: 1, replayed: false });
    expect(again).toEqual({ ...first, replayed: true });
    // Workspace B using the same key is a different batch.
    const other = (await (await post(rt.url, "/v1/brain/push", { ...body, entries: [sampleEntry({ entryId: "idem-1", workspaceId: "ws2" })] }, tokenB)).json()) as { replayed: boolean };
    expect(other.replayed).toBe(false);
  });

  it("newest version wins; an older or equal version is ignored and not re-sequenced", async () => {
    const v = (n: number, node = "n1") => `${String(n).padStart(15, "0")}-000000-${node}`;
    const push = async (k: number, version: string, title: string) =>
      (await (await post(rt.url, "/v1/brain/push", { idempotencyKey: key(k), entries: [sampleEntry({ entryId: "lww", version, title })] }, tokenA)).json()) as {
        applied: number;
        ignored: number;
      };
    expect(await push(10, v(100), "first")).toMatchObject({ applied: 1 });
    expect(await push(11, v(50), "older")).toMatchObject({ applied: 0, ignored: 1 });
    expect(await push(12, v(100), "same version")).toMatchObject({ applied: 0, ignored: 1 });
    // Same millisecond, different node: the node id breaks the tie deterministically.
    expect(await push(13, v(100, "n2"), "same ms, higher node")).toMatchObject({ applied: 1 });
    const all = (await (await post(rt.url, "/v1/brain/pull", { cursor: 0 }, tokenA)).json()) as { entries: Array<{ entryId: string; title: string }> };
    expect(all.entries.filter((e) => e.entryId === "lww").map((e) => e.title)).toEqual(["same ms, higher node"]);
  });

  it("pages by sequence: rows with equal timestamps at a page edge are never skipped, ids are exact", async () => {
    const { token } = rt.store.createToken("ws-paging");
    // 7 entries sharing one updatedAt, ids that are prefixes of each other.
    const ids = ["x-1", "x-10", "x-100", "x-11", "x-2", "x-20", "x-3"];
    const entries = ids.map((id, i) => sampleEntry({ entryId: id, workspaceId: "ws-paging", updatedAt: 42, version: `000000000000042-00000${i}-n1` }));
    await post(rt.url, "/v1/brain/push", { idempotencyKey: key(20), entries }, token);
    const seen: string[] = [];
    let cursor = 0;
    for (let pages = 0; ; pages++) {
      const page = (await (await post(rt.url, "/v1/brain/pull", { cursor, limit: 3 }, token)).json()) as {
        entries: Array<{ entryId: string }>;
        cursor: number;
        hasMore: boolean;
      };
      expect(page.cursor).toBeGreaterThanOrEqual(cursor);
      seen.push(...page.entries.map((e) => e.entryId));
      cursor = page.cursor;
      if (!page.hasMore) break;
      expect(pages).toBeLessThan(10);
    }
    expect(seen.sort()).toEqual([...ids].sort());
    // A late push of an old edit (an offline client) still reaches a client that is up to date.
    await post(rt.url, "/v1/brain/push", { idempotencyKey: key(21), entries: [sampleEntry({ entryId: "late", workspaceId: "ws-paging", updatedAt: 1, version: "000000000000001-000000-old" })] }, token);
    const incremental = (await (await post(rt.url, "/v1/brain/pull", { cursor }, token)).json()) as { entries: Array<{ entryId: string }> };
    expect(incremental.entries.map((e) => e.entryId)).toEqual(["late"]);
  });
});
