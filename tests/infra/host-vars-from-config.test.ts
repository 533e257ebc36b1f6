/**
 * hostVarsFromConfig: the one config → host-variables mapping. The stack program and
 * `npm run render` both call it, so the host `npm run render` shows is the host
 * `pulumi up` creates (the same cloud-config, byte for byte).
 */
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { hostVarsFromConfig, parseWorkspaceConfig } from "../../stacks/workspace/config.js";
import { renderHost } from "../../templates/render-host.js";
import { hostRotationKey, volumeDevice } from "../../components/workspace-host.js";
import { TEST_SSH_PUBLIC_KEY } from "./fixtures/host-vars.js";

const root = join(import.meta.dirname, "../..");
const config = parseWorkspaceConfig({
  sshPublicKey: TEST_SSH_PUBLIC_KEY,
  image: "debian-12",
  hostname: "box-7",
  adminUser: "ops",
  tailscaleTags: ["tag:a", "tag:b"],
  tailscaleSsh: true,
  tailscaleDirectUdp: true,
  sshAllowlist: ["203.0.113.7/32"],
  dataVolumeSizeGb: 30,
});

describe("hostVarsFromConfig", () => {
  it("maps every host-relevant config key (an independent oracle, written out)", () => {
    expect(hostVarsFromConfig(config, { tailscaleAuthKey: "tskey-auth-x", dataVolumeDevice: "/dev/disk/by-id/scsi-0HC_Volume_9" })).toEqual({
      profile: "production",
      image: "debian-12",
      hostname: "box-7",
      adminUser: "ops",
      adminSshPublicKey: TEST_SSH_PUBLIC_KEY,
      firewall: { tailscaleDirectUdp: true, sshAllowlist: ["203.0.113.7/32"], allowSshFromAnywhere: false },
      tailscale: { authKey: "tskey-auth-x", tags: ["tag:a", "tag:b"], ssh: true },
      dataVolume: { device: "/dev/disk/by-id/scsi-0HC_Volume_9" },
    });
  });

  it("leaves out what exists only at deploy time, and the tailnet join outside production", () => {
    const plain = hostVarsFromConfig(config);
    expect(plain).not.toHaveProperty("tailscale");
    expect(plain).not.toHaveProperty("dataVolume");
    const offline = hostVarsFromConfig(config, { profile: "offline-test", tailscaleAuthKey: "tskey-auth-x", dataVolumeDevice: volumeDevice("1") });
    expect(offline.profile).toBe("offline-test");
    expect(offline).not.toHaveProperty("tailscale");
    const noVolume = hostVarsFromConfig({ ...config, dataVolumeSizeGb: 0 }, { dataVolumeDevice: volumeDevice("1") });
    expect(noVolume).not.toHaveProperty("dataVolume");
  });

  it("is accepted by the host schema as it is (renderHost renders it)", () => {
    const host = renderHost(hostVarsFromConfig(config, { tailscaleAuthKey: "tskey-auth-x", dataVolumeDevice: volumeDevice("ID") }));
    expect(host.vars.hostname).toBe("box-7");
    expect(host.cloudConfig).toContain("--advertise-tags=tag:a,tag:b");
  });

  it("gives the stack the same host `npm run render` shows: WorkspaceHost's replacement hash equals one over the mapped render", () => {
    // hostRotationKey renders what WorkspaceHost renders (placeholder key and volume): feed it
    // the mapping's template part, and compare with a render of the mapping itself.
    const { profile: _p, image: _i, tailscale: _t, dataVolume: _v, ...template } = hostVarsFromConfig(config);
    const key = hostRotationKey({ template, image: config.image, location: config.location, tailscaleTags: config.tailscaleTags, tailscaleSsh: config.tailscaleSsh, dataVolumeSizeGb: config.dataVolumeSizeGb });
    const viaMapping = renderHost(hostVarsFromConfig(config, { tailscaleAuthKey: "placeholder", dataVolumeDevice: volumeDevice("ID") }), undefined, { compressFiles: false });
    expect(key).toBe(createHash("sha256").update(viaMapping.cloudConfig).update("\0").update(config.location).digest("hex").slice(0, 12));
  });

  it("is the only place the mapping is written (program and render call it; neither maps sshPublicKey itself)", () => {
    for (const file of ["stacks/workspace/program.ts", "scripts/render.ts"]) {
      const text = readFileSync(join(root, file), "utf8");
      expect(text, file).toMatch(/hostVarsFromConfig\(/);
      expect(text, file).not.toMatch(/adminSshPublicKey:\s*config\./);
      expect(text, file).not.toMatch(/sshAllowlist:\s*config\./);
    }
  });
});
