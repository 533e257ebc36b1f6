/**
 * The device cleanup program (components/tailnet-device.ts) against a loopback stand-in
 * of the Tailscale API (issue 21 item 10): it removes exactly the host's tagged node,
 * never a person's machine with the same name, and never blocks a destroy.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { DEVICE_CLEANUP_SCRIPT } from "../../components/tailnet-device.js";

const seen: string[] = [];
let devices: Array<{ nodeId: string; name: string; hostname: string; tags?: string[] }> = [];
let failList = false;
let server: Server;
let base = "";

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ""}`);
      const send = (status: number, json: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(json));
      };
      if (req.url === "/api/v2/oauth/token" && req.method === "POST") {
        const p = new URLSearchParams(body);
        return p.get("client_secret") === "s3cret" ? send(200, { access_token: "tok-123", token_type: "Bearer" }) : send(401, { message: "bad client" });
      }
      if (req.headers.authorization !== "Bearer tok-123") return send(401, { message: "unauthorized" });
      if (req.url === "/api/v2/tailnet/example.com/devices" && req.method === "GET") return failList ? send(500, {}) : send(200, { devices });
      const m = /^\/api\/v2\/device\/(\w+)$/.exec(req.url ?? "");
      if (m && req.method === "DELETE") {
        const before = devices.length;
        devices = devices.filter((d) => d.nodeId !== m[1]);
        return send(devices.length < before ? 200 : 404, {});
      }
      send(404, {});
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => server.close());

function cleanup(extra: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ["-e", DEVICE_CLEANUP_SCRIPT], {
      env: {
        PATH: process.env.PATH!,
        PICORTEX_TS_BASE_URL: base,
        PICORTEX_TS_TAILNET: "example.com",
        PICORTEX_TS_HOSTNAME: "picortex",
        PICORTEX_TS_TAGS: "tag:picortex",
        PICORTEX_TS_CLIENT_ID: "cid",
        PICORTEX_TS_CLIENT_SECRET: "s3cret",
        ...extra,
      },
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

describe("tailnet device cleanup", () => {
  it("deletes the host's tagged node only (not a laptop with the same name, not other hosts)", async () => {
    devices = [
      { nodeId: "nOld1", name: "picortex.example.ts.net", hostname: "picortex", tags: ["tag:picortex"] },
      { nodeId: "nLaptop", name: "picortex-2.example.ts.net", hostname: "picortex" },
      { nodeId: "nOther", name: "db.example.ts.net", hostname: "db", tags: ["tag:picortex"] },
    ];
    const r = await cleanup();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("removed device picortex.example.ts.net");
    expect(devices.map((d) => d.nodeId)).toEqual(["nLaptop", "nOther"]);
    // OAuth client credentials exchanged for a token; the secret never travels as a bearer.
    expect(seen.some((s) => s.includes("s3cret"))).toBe(false);
  });

  it("is a no-op when nothing matches, and never fails a destroy: errors print the manual step and exit 0", async () => {
    expect((await cleanup()).stderr).toContain("no device named picortex");
    failList = true;
    const down = await cleanup();
    failList = false;
    expect(down.code).toBe(0);
    expect(down.stderr).toContain("Tailscale admin console");
    const badCreds = await cleanup({ PICORTEX_TS_CLIENT_SECRET: "wrong" });
    expect(badCreds.code).toBe(0);
    expect(badCreds.stderr).toContain("OAuth token: HTTP 401");
    expect(badCreds.stderr).not.toContain("wrong");
    const unreachable = await cleanup({ PICORTEX_TS_BASE_URL: "http://127.0.0.1:1" });
    expect(unreachable.code).toBe(0);
  });
});
