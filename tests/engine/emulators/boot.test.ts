/**
 * The Hetzner emulator's nspawn backend end to end (issue 22 items 4 and 5): a server
 * created through the API boots a real Debian host from the production cloud-config
 * templates/render-host.ts renders; cloud-init reaches `done`; its own `tailscale up`
 * step spends the single-use key through the Tailscale emulator, and the device's tailnet
 * address is reachable from this machine; a Volume is a real formatted disk in the guest
 * at Hetzner's path, mounted by the cloud-config's data-volume steps; poweroff/poweron keep
 * the disk and the volume's data; a re-created host joins as `picortex-1`; delete and
 * close() leave nothing.
 *
 * Needs root and the e2e packages (bash .ci/run); run under the shared lock:
 *   flock /tmp/picortex-system.lock npx vitest run tests/engine/emulators/boot.test.ts
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { renderHost } from "../../../templates/render-host.js";
import { DATA_MOUNT } from "../../../agent-runtime/host/contract.js";
import { requireHarness } from "../../e2e/harness/requirements.js";
import { startHetznerEmulator, type HetznerEmulator } from "./hetzner/index.js";
import { startTailscaleEmulator, type TailscaleEmulator } from "./tailscale/index.js";
import type { NspawnBackend } from "./hetzner/nspawn-backend.js";

const STEP_MS = 600_000;

let hz: HetznerEmulator;
let ts: TailscaleEmulator;
let keyDir = "";

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${hz.endpoint}${path}`, {
    method,
    headers: { authorization: `Bearer ${hz.token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as any };
}

async function waitAction(id: number, timeoutMs = STEP_MS) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const a = (await api("GET", `/actions/${id}`)).body.action;
    if (a.status !== "running") return a;
    if (Date.now() > until) throw new Error(`action ${id} still running after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Reads the SSH banner from addr:22 (proves a TCP path to the guest's sshd). */
function sshBanner(addr: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: addr, port: 22, timeout: 10_000 });
    sock.once("data", (d) => {
      resolve(d.toString());
      sock.destroy();
    });
    sock.once("timeout", () => {
      sock.destroy();
      reject(new Error(`no banner from ${addr}:22`));
    });
    sock.once("error", reject);
  });
}

describe("Hetzner emulator, nspawn backend: a server boots its cloud-config and joins the tailnet", () => {
  let serverId = 0;
  let sshKeyId = 0;
  let volumeId = 0;
  let volumeDevice = "";
  let adminPub = "";
  let backend: NspawnBackend;

  beforeAll(async () => {
    requireHarness("nspawn");
    keyDir = mkdtempSync("/var/tmp/picortex-hz-key-");
    ts = await startTailscaleEmulator();
    hz = await startHetznerEmulator({ boot: "nspawn", tailscale: ts });
    backend = hz.backend as NspawnBackend;
  }, 1_800_000);

  afterAll(async () => {
    // close() must clean up a server still running (the last test leaves one), its
    // volume's loop device, the veth and every directory, also when a test failed.
    const workDir = backend?.workDir;
    const left = await hz?.close();
    await ts?.close();
    rmSync(keyDir, { recursive: true, force: true });
    expect(left ?? []).toEqual([]);
    if (workDir) {
      expect(existsSync(workDir)).toBe(false);
      expect(execFileSync("losetup", ["--list", "--noheadings", "--output", "BACK-FILE"]).toString()).not.toContain(workDir);
      expect(execFileSync("ip", ["-o", "link"]).toString()).not.toMatch(new RegExp(`ve-pchz${process.pid % 10000}s`));
    }
  }, STEP_MS);

  /** Creates the "picortex" server from a fresh single-use key, waits for cloud-init. */
  async function createHost(sshKeyId: number, pub: string): Promise<{ id: number; ip: string; keyId: string }> {
    const key = await fetch(`${ts.baseUrl}/api/v2/tailnet/-/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${ts.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ capabilities: { devices: { create: { reusable: false, ephemeral: false, tags: ["tag:picortex"], preauthorized: true } } }, expirySeconds: 3600, description: "picortex picortex boot-test" }),
    }).then((r) => r.json() as Promise<{ id: string; key: string }>);
    const host = renderHost({ profile: "production", image: "debian-12", hostname: "picortex", adminSshPublicKey: pub, tailscale: { authKey: key.key, tags: ["tag:picortex"], ssh: true } });
    const created = await api("POST", "/servers", { name: "picortex", server_type: "cx23", image: "debian-12", location: "nbg1", ssh_keys: [sshKeyId], user_data: host.cloudConfig, labels: {} });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.server.id as number;
    expect((await waitAction(created.body.action.id)).status).toBe("success");
    expect(await backend.console(id)(["cloud-init", "status", "--wait"])).toMatch(/status: done/);
    return { id, ip: created.body.server.public_net.ipv4.ip, keyId: key.id };
  }

  it("boots the production cloud-config to cloud-init done, with the tailnet joined by its own `tailscale up`", async () => {
    // What TailnetAccess asks the tailscale provider for.
    const key = await fetch(`${ts.baseUrl}/api/v2/tailnet/-/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${ts.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ capabilities: { devices: { create: { reusable: false, ephemeral: false, tags: ["tag:picortex"], preauthorized: true } } }, expirySeconds: 3600, description: "picortex picortex boot-test" }),
    }).then((r) => r.json() as Promise<{ id: string; key: string }>);
    const keyPath = join(keyDir, "admin");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "hz-boot", "-f", keyPath]);
    const pub = readFileSync(`${keyPath}.pub`, "utf8").trim();
    // The data volume first (as the stack declares it), then the server, then the attachment:
    // the cloud-config waits for the device and mounts it (issue 21 item 11).
    const vol = await api("POST", "/volumes", { name: "picortex-data", size: 10, location: "nbg1", format: "ext4", labels: {} });
    expect(vol.status).toBe(201);
    volumeId = vol.body.volume.id;
    volumeDevice = vol.body.volume.linux_device;
    expect((await waitAction(vol.body.action.id)).status).toBe("success");
    const host = renderHost({ profile: "production", image: "debian-12", hostname: "picortex", adminSshPublicKey: pub, tailscale: { authKey: key.key, tags: ["tag:picortex"], ssh: true }, dataVolume: { device: volumeDevice } });

    const sshKey = await api("POST", "/ssh_keys", { name: "picortex-admin", public_key: pub, labels: {} });
    expect(sshKey.status).toBe(201);
    sshKeyId = sshKey.body.ssh_key.id;
    adminPub = pub;
    const fw = await api("POST", "/firewalls", { name: "picortex", rules: [], labels: {} });
    const created = await api("POST", "/servers", {
      name: "picortex",
      server_type: "cx23",
      image: "debian-12",
      location: "nbg1",
      ssh_keys: [sshKey.body.ssh_key.id],
      firewalls: [{ firewall: fw.body.firewall.id }],
      user_data: host.cloudConfig,
      labels: { "managed-by": "picortex" },
      public_net: { enable_ipv4: true, enable_ipv6: true },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    serverId = created.body.server.id;
    const ip = created.body.server.public_net.ipv4.ip;
    const action = await waitAction(created.body.action.id);
    expect(action.status, JSON.stringify(action.error)).toBe("success");
    const att = await api("POST", `/volumes/${volumeId}/actions/attach`, { server: serverId, automount: false });
    expect((await waitAction(att.body.action.id)).status).toBe("success");
    expect((await api("GET", `/servers/${serverId}`)).body.server.status).toBe("running");

    let status = "";
    try {
      status = await backend.console(serverId)(["cloud-init", "status", "--wait", "--long"]);
    } catch (err) {
      const logs = await backend.console(serverId)(["tail", "-n", "60", "/var/log/cloud-init-output.log"]).catch((e: Error) => e.message);
      throw new Error(`cloud-init did not finish cleanly: ${(err as Error).message}\n--- cloud-init-output.log ---\n${logs}\n--- console ---\n${backend.consoleTail(serverId)}`);
    }
    expect(status).toMatch(/status: done/);

    // The key was spent by the host's own join; the device is the one the emulator registered.
    const devices = ts.snapshot().devices;
    expect(devices).toHaveLength(1);
    expect(devices[0]).toMatchObject({ hostname: "picortex", name: `picortex.${ts.tailnetDnsSuffix}`, tags: ["tag:picortex"], sshEnabled: true, authorized: true });
    const keyBack = await fetch(`${ts.baseUrl}/api/v2/tailnet/-/keys/${key.id}`, { headers: { authorization: `Bearer ${ts.apiKey}` } }).then((r) => r.json() as Promise<{ invalid: boolean }>);
    expect(keyBack.invalid).toBe(true);
    // The cloud-config removed the key file after joining.
    expect(await backend.console(serverId)(["test", "!", "-e", "/etc/picortex/credentials/tailscale-auth-key"]).then(() => true)).toBe(true);
    // Reachable from this machine at both the public and the tailnet address (MagicDNS stand-in).
    const tailnetIp = ts.resolve("picortex")![0]!;
    expect(await sshBanner(ip)).toMatch(/^SSH-2\.0-/);
    expect(await sshBanner(tailnetIp)).toMatch(/^SSH-2\.0-/);
    // The runtime's listen-address step found the tailnet address through `tailscale ip -4`.
    const listen = await backend.console(serverId)(["cat", "/run/picortex-listen/listen.env"]);
    expect(listen).toContain(tailnetIp);
  }, STEP_MS);

  it("gives the guest the formatted Volume at Hetzner's device path, mounted by the cloud-config", async () => {
    const type = await backend.console(serverId)(["blkid", "-o", "value", "-s", "TYPE", volumeDevice]);
    expect(type.trim()).toBe("ext4");
    await backend.console(serverId)(["mountpoint", "-q", DATA_MOUNT]);
    await backend.console(serverId)(["mountpoint", "-q", "/srv/picortex"]);
    await backend.console(serverId)(["sh", "-c", "echo kept > /srv/picortex/marker"]);
    expect((await api("GET", `/servers/${serverId}`)).body.server.volumes).toEqual([volumeId]);
  }, STEP_MS);

  it("keeps the disk across poweroff and poweron, and routes the tailnet address again", async () => {
    const off = await api("POST", `/servers/${serverId}/actions/poweroff`);
    expect((await waitAction(off.body.action.id)).status).toBe("success");
    expect((await api("GET", `/servers/${serverId}`)).body.server.status).toBe("off");
    const on = await api("POST", `/servers/${serverId}/actions/poweron`);
    expect((await waitAction(on.body.action.id)).status).toBe("success");
    const status = await backend.console(serverId)(["cloud-init", "status", "--wait"]);
    expect(status).toMatch(/status: done/);
    // Same instance: cloud-init did not run again, the admin user and the joined state are still there.
    expect(await backend.console(serverId)(["getent", "passwd", "pcadmin"])).toContain("pcadmin");
    // The volume is mounted again at boot (fstab) and kept what was written.
    const marker = await backend.console(serverId)(["cat", "/srv/picortex/marker"]).catch(async (err: Error) => {
      const c = backend.console(serverId);
      const diag = await Promise.all([
        c(["ls", "-l", "/dev/disk/by-id"]).catch((e: Error) => e.message),
        c(["findmnt", "-l"]).catch((e: Error) => e.message),
        c(["cat", "/etc/fstab"]).catch((e: Error) => e.message),
        c(["journalctl", "-b", "--no-pager", "-n", "40", "-u", "mnt-picortex\\x2ddata.mount", "-u", "srv-picortex.mount"]).catch((e: Error) => e.message),
      ]);
      throw new Error(`${err.message}\n--- diagnostics ---\n${diag.join("\n---\n")}`);
    });
    expect(marker.trim()).toBe("kept");
    const tailnetIp = ts.resolve("picortex")![0]!;
    expect(await sshBanner(tailnetIp)).toMatch(/^SSH-2\.0-/);
    expect(ts.snapshot().devices).toHaveLength(1);
  }, STEP_MS);

  it("deletes the server: machine stopped and its directory gone; protected first, refused", async () => {
    const p = await api("POST", `/servers/${serverId}/actions/change_protection`, { delete: true, rebuild: true });
    await waitAction(p.body.action.id);
    expect((await api("DELETE", `/servers/${serverId}`)).body.error.code).toBe("protected");
    const u = await api("POST", `/servers/${serverId}/actions/change_protection`, { delete: false, rebuild: false });
    await waitAction(u.body.action.id);
    const del = await api("DELETE", `/servers/${serverId}`);
    expect(del.status).toBe(200);
    expect((await waitAction(del.body.action.id)).status).toBe("success");
    expect(backend.guestPath(serverId, "/etc")).toBeUndefined();
    expect(hz.snapshot().servers).toEqual([]);
    // The volume survived the server (Hetzner detaches it on delete).
    expect(hz.snapshot().volumes[0]).toMatchObject({ server: null });
  }, STEP_MS);

  it("boots a re-created host that joins as picortex-1 while the old device is registered (left running for close())", async () => {
    const second = await createHost(sshKeyId, adminPub);
    const devices = ts.snapshot().devices.map((d) => d.name);
    expect(devices.sort()).toEqual([`picortex-1.${ts.tailnetDnsSuffix}`, `picortex.${ts.tailnetDnsSuffix}`]);
    // MagicDNS's `picortex` is still the old (gone) host; `picortex-1` reaches the new one.
    expect(await sshBanner(ts.resolve("picortex-1")![0]!)).toMatch(/^SSH-2\.0-/);
    expect(await sshBanner(second.ip)).toMatch(/^SSH-2\.0-/);
  }, STEP_MS);
});
