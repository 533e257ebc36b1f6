/**
 * Socket activation and the source allowlist (issue 13, port squatting): the parsing of
 * LISTEN_PID/LISTEN_FDS, and who may talk to the wildcard listeners. Pure.
 */
import { describe, expect, it } from "vitest";
import { checkInheritedPort, ListenFdsError, sourceAllowed, sourceAllowlist, takeListenFds } from "../../agent-runtime/http/listen-fds.js";

describe("takeListenFds", () => {
  it("takes the API (fd 3) and the gateway (fd 4) when systemd passed them to this process, and removes the variables", () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: "42", LISTEN_FDS: "2", LISTEN_FDNAMES: "picortex-runtime.socket:picortex-runtime.socket", KEEP: "x" };
    expect(takeListenFds(env, 42)).toEqual(new Map([["api", 3], ["gateway", 4]]));
    expect(env).toEqual({ KEEP: "x" });
  });

  it("ignores variables meant for another process, but still removes them (no child inherits them)", () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: "41", LISTEN_FDS: "2" };
    expect(takeListenFds(env, 42)).toBeUndefined();
    expect(env).toEqual({});
    expect(takeListenFds({}, 42)).toBeUndefined();
  });

  it("refuses a socket unit that passes another number of sockets", () => {
    for (const n of ["1", "3", "0", "two", "2 "]) {
      expect(() => takeListenFds({ LISTEN_PID: "7", LISTEN_FDS: n }, 7)).toThrow(ListenFdsError);
    }
  });

  it("refuses an inherited socket whose port is not the configured one (never the API on the gateway's port)", () => {
    expect(() => checkInheritedPort("api", 7419, 7420)).toThrow(/api socket \(fd 3\) listens on port 7419, but the config says 7420/);
    expect(() => checkInheritedPort("gateway", 7419, 7419)).not.toThrow();
    expect(() => checkInheritedPort("gateway", 41234, 0)).not.toThrow();
  });
});

describe("source allowlist of the wildcard listeners", () => {
  const api = sourceAllowlist("api");
  const gateway = sourceAllowlist("gateway");

  it("the API serves loopback and the tailnet (100.64.0.0/10, fd7a:115c:a1e0::/48), in plain and IPv4-mapped forms", () => {
    for (const a of ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "100.64.0.1", "100.127.255.254", "::ffff:100.101.102.103", "fd7a:115c:a1e0::1", "fd7a:115c:a1e0:ab12:4843:cd96:6258:b240"]) {
      expect(sourceAllowed(api, a), a).toBe(true);
    }
  });

  it("the API refuses everything else: the public interface, private LANs, neighbours of the tailnet ranges", () => {
    for (const a of ["203.0.113.7", "::ffff:203.0.113.7", "10.0.0.2", "192.168.1.10", "100.63.255.255", "100.128.0.0", "fd7a:115c:a1e1::1", "2001:db8::1", "fe80::1", "::", "0.0.0.0", "", undefined]) {
      expect(sourceAllowed(api, a), String(a)).toBe(false);
    }
  });

  it("the gateway serves loopback only (chats and the portal's agent are on this host)", () => {
    for (const a of ["127.0.0.1", "::1", "::ffff:127.0.0.1"]) expect(sourceAllowed(gateway, a), a).toBe(true);
    for (const a of ["100.64.0.1", "fd7a:115c:a1e0::1", "203.0.113.7"]) expect(sourceAllowed(gateway, a), a).toBe(false);
  });
});
