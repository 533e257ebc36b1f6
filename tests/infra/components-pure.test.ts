/** Pure parts of the components: rotation key and up-front validation (no resources created). */
import { describe, expect, it, vi } from "vitest";
import { hostRotationKey } from "../../components/workspace-host.js";
import { TailnetAccess, keyDescription } from "../../components/tailnet-access.js";
import { renderHost } from "../../templates/render-host.js";

// Another machine's zlib: same input, different gzip bytes (switchable per test).
const zlib = vi.hoisted(() => ({ otherBuild: false }));
vi.mock("node:zlib", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:zlib")>();
  return { ...real, gzipSync: (...a: Parameters<typeof real.gzipSync>) => (zlib.otherBuild ? Buffer.concat([real.gzipSync(...a), Buffer.alloc(1)]) : real.gzipSync(...a)) };
});
import { WorkspaceHost } from "../../components/workspace-host.js";
import { TEST_SSH_PUBLIC_KEY } from "./fixtures/host-vars.js";

const placement = {
  template: { hostname: "picortex", adminSshPublicKey: TEST_SSH_PUBLIC_KEY },
  image: "ubuntu-24.04" as const,
  location: "nbg1",
  tailscaleTags: ["tag:picortex"],
};

describe("hostRotationKey", () => {
  it("is stable for equal input and changes with anything that replaces the server", () => {
    const k = hostRotationKey(placement);
    expect(k).toMatch(/^[a-f0-9]{12}$/);
    expect(hostRotationKey(JSON.parse(JSON.stringify(placement)))).toBe(k);
    expect(hostRotationKey({ ...placement, location: "fsn1" })).not.toBe(k);
    expect(hostRotationKey({ ...placement, image: "debian-12" })).not.toBe(k);
    expect(hostRotationKey({ ...placement, template: { ...placement.template, hostname: "other" } })).not.toBe(k);
  });

  it("does not depend on the deploying machine's zlib (issue 21 item 19)", () => {
    const vars = { adminSshPublicKey: TEST_SSH_PUBLIC_KEY, tailscale: { authKey: "tskey-auth-x", tags: ["tag:picortex"] } };
    const k = hostRotationKey(placement);
    const before = renderHost(vars).cloudConfig;
    zlib.otherBuild = true;
    try {
      // The gzip'd user data differs on that machine…
      expect(renderHost(vars).cloudConfig).not.toBe(before);
      // …the replacement hash does not.
      expect(hostRotationKey(placement)).toBe(k);
    } finally {
      zlib.otherBuild = false;
    }
  });
});

describe("the auth key's description (Tailscale allows 50 characters)", () => {
  it("keeps the whole rotation hash for long host names, and is unchanged for short ones", () => {
    const hash = "0123456789ab";
    expect(keyDescription("picortex", hash)).toBe(`picortex picortex ${hash}`);
    for (const n of [28, 29, 40, 63]) {
      const d = keyDescription("h".repeat(n), hash);
      expect(d.length, String(n)).toBeLessThanOrEqual(50);
      expect(d.endsWith(` ${hash}`), d).toBe(true);
    }
    // Two long names that differ only at the end still get different keys when the hash differs.
    expect(keyDescription("h".repeat(60), "aaaaaaaaaaaa")).not.toBe(keyDescription("h".repeat(60), "bbbbbbbbbbbb"));
  });
});

describe("components validate before creating anything", () => {
  it("TailnetAccess rejects bad tags, host names and expiry with actionable messages", () => {
    expect(() => new TailnetAccess("t", { hostname: "picortex", tags: [] })).toThrow(/at least one tag/);
    expect(() => new TailnetAccess("t", { hostname: "picortex", tags: ["picortex"] })).toThrow(/tag:<name>/);
    expect(() => new TailnetAccess("t", { hostname: "Pic_ortex", tags: ["tag:a"] })).toThrow(/host name/);
    expect(() => new TailnetAccess("t", { hostname: "picortex", tags: ["tag:a"], expirySeconds: 90 * 86400 })).toThrow(/only needed for the first boot/);
  });
  it("WorkspaceHost rejects bad labels and host variables", () => {
    const args = { ...placement, serverType: "cx23", tailscaleAuthKey: "tskey-auth-x" };
    expect(() => new WorkspaceHost("w", { ...args, labels: { "hetzner.cloud/x": "y" } })).toThrow(/reserved/);
    expect(() => new WorkspaceHost("w", { ...args, template: { ...placement.template, adminUser: "pc-x" } })).toThrow(/reserved for chat users/);
    expect(() => new WorkspaceHost("w", { ...args, template: { ...placement.template, firewall: { sshAllowlist: ["0.0.0.0/0"] } } })).toThrow(/allowSshFromAnywhere/);
  });
});
