import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  ClientType,
  LIMITS,
  PROTOCOL_VERSION,
  ProtocolError,
  ackFrame,
  decodeClientMessage,
  frame,
  jsonFrame,
  resizeFrame,
} from "../../agent-runtime/portal/protocol.js";
import { ctrlOf } from "../../agent-runtime/portal/page/extra-keys.js";
import { SessionCookies, readCookie } from "../../agent-runtime/portal/session-cookie.js";
import { FailureLimiter } from "../../agent-runtime/http/rate-limit.js";
import { allowedOrigins, originAllowed } from "../../agent-runtime/portal/origin.js";

describe("portal protocol", () => {
  it("round-trips every client message the page can send", () => {
    expect(decodeClientMessage(jsonFrame(ClientType.HELLO, { v: PROTOCOL_VERSION, cols: 80, rows: 24 }))).toEqual({
      type: "hello",
      hello: { v: PROTOCOL_VERSION, cols: 80, rows: 24 },
    });
    expect(decodeClientMessage(resizeFrame(LIMITS.maxCols, LIMITS.maxRows))).toEqual({ type: "resize", cols: LIMITS.maxCols, rows: LIMITS.maxRows });
    expect(decodeClientMessage(ackFrame(12345))).toEqual({ type: "ack", bytes: 12345 });
    expect(decodeClientMessage(frame(ClientType.PING))).toEqual({ type: "ping" });
    const input = decodeClientMessage(frame(ClientType.INPUT, "héllo\r"));
    expect(input.type === "input" && Buffer.from(input.data).toString()).toBe("héllo\r");
  });

  it("rejects anything else with a ProtocolError, never another exception", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const msg = decodeClientMessage(bytes);
          // Whatever decodes must be within bounds.
          if (msg.type === "resize") {
            expect(msg.cols).toBeGreaterThanOrEqual(LIMITS.minCols);
            expect(msg.rows).toBeLessThanOrEqual(LIMITS.maxRows);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
        }
      }),
      { numRuns: 2000 },
    );
    expect(() => decodeClientMessage(resizeFrame(0, 10))).toThrow(/cols/);
    expect(() => decodeClientMessage(resizeFrame(80, LIMITS.maxRows + 1))).toThrow(/rows/);
    expect(() => decodeClientMessage(jsonFrame(ClientType.HELLO, { v: 99, cols: 80, rows: 24 }))).toThrow(/version/);
    expect(() => decodeClientMessage(new Uint8Array([0x81, 1]))).toThrow(/unknown message type 0x81/);
  });
});

describe("portal credentials helpers", () => {
  it("signs cookies per role, rejects tampering, expiry and a rotated token", () => {
    let now = 1_000_000_000_000;
    const cookies = new SessionCookies({ readWrite: "a".repeat(40), readOnly: "b".repeat(40) }, 60, () => now);
    const rw = cookies.issue("rw");
    const ro = cookies.issue("ro");
    expect(cookies.verify(rw)).toBe("rw");
    expect(cookies.verify(ro)).toBe("ro");
    expect(cookies.verify(rw.replace(".rw.", ".ro."))).toBeUndefined();
    expect(cookies.verify(rw.slice(0, -1) + (rw.endsWith("A") ? "B" : "A"))).toBeUndefined();
    const rotated = new SessionCookies({ readWrite: "c".repeat(40) }, 60, () => now);
    expect(rotated.verify(rw)).toBeUndefined();
    expect(rotated.verify(ro)).toBeUndefined(); // no read-only token configured any more
    now += 61_000;
    expect(cookies.verify(rw)).toBeUndefined();
    expect(readCookie("a=1; pcx_portal=v; b=2", "pcx_portal")).toBe("v");
  });

  it("limits failures per client within the window only", () => {
    let now = 0;
    const limiter = new FailureLimiter(3, 10_000, 100, () => now);
    for (let i = 0; i < 3; i++) limiter.recordFailure("1.2.3.4");
    expect(limiter.retryAfterSeconds("1.2.3.4")).toBe(10);
    expect(limiter.retryAfterSeconds("5.6.7.8")).toBe(0);
    now = 10_001;
    expect(limiter.retryAfterSeconds("1.2.3.4")).toBe(0);
  });

  it("allows exact origins only", () => {
    const allowed = allowedOrigins(["127.0.0.1", "100.64.1.2", "::1"], 7420, ["https://agent.tail1.ts.net"]);
    expect([...allowed].sort()).toEqual(
      ["http://127.0.0.1:7420", "http://100.64.1.2:7420", "http://[::1]:7420", "http://localhost:7420", "https://agent.tail1.ts.net"].sort(),
    );
    expect(originAllowed("http://100.64.1.2:7420", allowed)).toBe(true);
    expect(originAllowed("http://100.64.1.2:74200", allowed)).toBe(false);
    expect(originAllowed("null", allowed)).toBe(false);
    expect(originAllowed(undefined, allowed)).toBe(false);
  });

  it("maps sticky Ctrl keys to control characters", () => {
    expect(ctrlOf("c")).toBe("\x03");
    expect(ctrlOf("U")).toBe("\x15");
    expect(ctrlOf("[")).toBe("\x1b");
    expect(ctrlOf(" ")).toBe("\x00");
    expect(ctrlOf("ab")).toBe("ab");
  });
});
