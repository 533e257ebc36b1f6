/**
 * The data volume (issue 21 item 11): chats (/srv/picortex) and runtime state and brain
 * (/var/lib/picortex) live on a Hetzner Volume that first boot mounts before anything
 * writes there. The mount script runs for real here: a real ext4 image, real mount(8),
 * in a private mount namespace (root), against a scratch /etc/fstab.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { MOUNT_DATA_SCRIPT, WAIT_FOR_DEVICE_SCRIPT, renderHost } from "../../templates/render-host.js";
import { productionVars, offlineVars } from "./fixtures/host-vars.js";
import { requireRoot, requireTools, run } from "./support/tools.js";

let work: string;
beforeAll(() => {
  requireTools("cloud-init", "unshare", "mkfs.ext4", "mount", "mountpoint", "findmnt");
  requireRoot("mounting an ext4 image in a private mount namespace");
  work = mkdtempSync(join(tmpdir(), "picortex-volume-"));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const device = "/dev/disk/by-id/scsi-0HC_Volume_4242";

describe("cloud-config with a data volume", () => {
  it("waits for the device and mounts it before tmpfiles or anything else writes, and passes cloud-init schema", () => {
    for (const vars of [productionVars, offlineVars]) {
      const cloudConfig = renderHost({ ...vars, dataVolume: { device } }).cloudConfig;
      const steps = (parse(cloudConfig).runcmd as Array<string | string[]>).map((s) => (Array.isArray(s) ? s : [s]));
      expect(steps[1]).toEqual(["sh", "-c", WAIT_FOR_DEVICE_SCRIPT, "wait-for-volume", device]);
      expect(steps[2]).toEqual(["sh", "-c", MOUNT_DATA_SCRIPT, "mount-data", device]);
      expect(steps[3]![0]).toBe("systemd-tmpfiles");
      const file = join(work, "user-data.yaml");
      writeFileSync(file, cloudConfig);
      const r = run(["cloud-init", "schema", "--config-file", file, "--annotate"]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
    }
    // Without a volume nothing changes (the committed expected files stay byte-stable).
    expect(renderHost(productionVars).cloudConfig).not.toContain("mount-data");
  });

  it("refuses a device path that is not /dev/disk/by-id/…", () => {
    expect(() => renderHost({ ...productionVars, dataVolume: { device: "/dev/sdb; rm -rf /" } })).toThrow(/by-id/);
  });
});

describe("the mount script (real mount, private namespace)", () => {
  it("mounts the volume and binds /srv/picortex, /var/lib/picortex and the chat-user uid record from it, idempotently, through fstab", () => {
    const img = join(work, "volume.img");
    const fstab = join(work, "fstab");
    run(["truncate", "-s", "16M", img]);
    const mkfs = run(["mkfs.ext4", "-q", "-F", img]);
    expect(mkfs.status, mkfs.stderr).toBe(0);
    writeFileSync(fstab, "# existing entries stay\n");
    const inner = [
      "set -eu",
      // Scratch copies of what the script touches; the real ones are untouched outside this namespace.
      "mount -t tmpfs t /mnt && mount -t tmpfs t /srv && mount -t tmpfs t /var/lib",
      'mount --bind "$1" /etc/fstab',
      'sh -c "$2" mount-data "$3"',
      'sh -c "$2" mount-data "$3"', // a second run (re-running first boot) changes nothing
      "echo chat > /srv/picortex/probe && echo brain > /var/lib/picortex/probe && echo uids > /var/lib/picortex-chat-users/probe",
      "cat /mnt/picortex-data/srv/probe /mnt/picortex-data/lib/probe /mnt/picortex-data/chat-users/probe",
      'for d in /srv/picortex /var/lib/picortex /mnt/picortex-data; do findmnt -n -o TARGET --mountpoint "$d"; done',
    ].join("\n");
    const r = run(["unshare", "-m", "--propagation", "private", "sh", "-c", inner, "ns", fstab, MOUNT_DATA_SCRIPT, img]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("chat\nbrain\nuids\n");
    expect(r.stdout).toContain("/srv/picortex");
    expect(r.stdout).toContain("/var/lib/picortex");
    const lines = readFileSync(fstab, "utf8").trim().split("\n");
    expect(lines).toEqual([
      "# existing entries stay",
      `${img} /mnt/picortex-data ext4 discard,nofail,defaults 0 2`,
      "/mnt/picortex-data/srv /srv/picortex none bind,nofail,x-systemd.requires-mounts-for=/mnt/picortex-data 0 0",
      "/mnt/picortex-data/lib /var/lib/picortex none bind,nofail,x-systemd.requires-mounts-for=/mnt/picortex-data 0 0",
      "/mnt/picortex-data/chat-users /var/lib/picortex-chat-users none bind,nofail,x-systemd.requires-mounts-for=/mnt/picortex-data 0 0",
    ]);
  });

  it("gives up waiting for a device that never appears, saying which", () => {
    const r = run(["sh", "-c", WAIT_FOR_DEVICE_SCRIPT.replace("-gt 150", "-gt 1").replace("sleep 2", "sleep 0"), "wait", join(work, "no-such-device")]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("not attached after 300 s");
  });
});
