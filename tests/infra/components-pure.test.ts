/** Pure parts of the components: rotation key and up-front validation (no resources created). */
import { describe, expect, it } from "vitest";
import { hostRotationKey } from "../../components/workspace-host.js";
import { TailnetAccess } from "../../components/tailnet-access.js";
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
