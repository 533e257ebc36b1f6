/**
 * The Hetzner Cloud API emulator's rules (issue 22 item 4), over real HTTP, API state only
 * (boot: "none"). Each test is written as the provider or a fault injector would meet it.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { generateKeyPairSync } from "node:crypto";
import { startHetznerEmulator, sshFingerprint, labelProblems, type HetznerEmulator } from "./hetzner/index.js";

function sshPublicKey(comment = "test"): string {
  const { publicKey } = generateKeyPairSync("ed25519");
  const der = publicKey.export({ format: "der", type: "spki" });
  const raw = der.subarray(der.length - 32);
  const str = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const blob = Buffer.concat([str(Buffer.from("ssh-ed25519")), str(raw)]);
  return `ssh-ed25519 ${blob.toString("base64")} ${comment}`;
}

let hz: HetznerEmulator;

async function call(method: string, path: string, body?: unknown, token = hz.token) {
  const res = await fetch(`${hz.endpoint}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as any };
}

async function waitAction(id: number) {
  for (;;) {
    const r = await call("GET", `/actions/${id}`);
    if (r.body.action.status !== "running") return r.body.action;
    await new Promise((res) => setTimeout(res, 20));
  }
}

async function createServer(extra: Record<string, unknown> = {}) {
  return call("POST", "/servers", { name: "picortex", server_type: "cx23", image: "debian-12", location: "nbg1", ...extra });
}

beforeEach(async () => {
  hz = await startHetznerEmulator({ boot: "none", actionDelayMs: 30 });
});
afterEach(async () => {
  expect(await hz.close()).toEqual([]);
});

describe("Hetzner emulator: auth and errors", () => {
  it("refuses a missing or wrong token with Hetzner's error body and sends rate-limit headers", async () => {
    expect(hz.token).toMatch(/^[A-Za-z0-9]{64}$/);
    const bad = await call("GET", "/servers", undefined, "x".repeat(64));
    expect(bad.status).toBe(401);
    expect(bad.body).toEqual({ error: { code: "unauthorized", message: "unable to authenticate", details: null } });
    const ok = await call("GET", "/servers");
    expect(ok.status).toBe(200);
    expect(ok.headers.get("ratelimit-limit")).toBe("3600");
    expect(Number(ok.headers.get("ratelimit-remaining"))).toBeLessThan(3600);
    expect(ok.body.meta.pagination).toMatchObject({ page: 1, total_entries: 0 });
  });

  it("answers 429 rate_limit_exceeded with Retry-After when asked, then serves again", async () => {
    hz.rateLimit(2, 7);
    for (let i = 0; i < 2; i++) {
      const r = await call("GET", "/servers");
      expect(r.status).toBe(429);
      expect(r.headers.get("retry-after")).toBe("7");
      expect(r.body.error.code).toBe("rate_limit_exceeded");
    }
    expect((await call("GET", "/servers")).status).toBe(200);
  });

  it("fails exactly the nth call of an endpoint when a fault is injected", async () => {
    hz.fail({ method: "POST", path: "/v1/ssh_keys", nth: 2, status: 503, code: "unavailable", message: "try later" });
    expect((await call("POST", "/ssh_keys", { name: "a", public_key: sshPublicKey() })).status).toBe(201);
    const second = await call("POST", "/ssh_keys", { name: "b", public_key: sshPublicKey() });
    expect(second.status).toBe(503);
    expect(second.body.error).toEqual({ code: "unavailable", message: "try later", details: {} });
    expect((await call("POST", "/ssh_keys", { name: "b", public_key: sshPublicKey() })).status).toBe(201);
  });
});

describe("Hetzner emulator: SSH keys", () => {
  it("creates a key with every field the provider reads back, and its MD5 fingerprint", async () => {
    const pk = sshPublicKey("op@laptop");
    const r = await call("POST", "/ssh_keys", { name: "admin", public_key: pk, labels: { "managed-by": "picortex" } });
    expect(r.status).toBe(201);
    expect(Object.keys(r.body.ssh_key).sort()).toEqual(["created", "fingerprint", "id", "labels", "name", "public_key"]);
    expect(r.body.ssh_key.fingerprint).toBe(sshFingerprint(pk));
    expect(r.body.ssh_key.fingerprint).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    expect(r.body.ssh_key.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    const got = await call("GET", `/ssh_keys/${r.body.ssh_key.id}`);
    expect(got.body.ssh_key).toEqual(r.body.ssh_key);
    expect((await call("GET", `/ssh_keys?fingerprint=${encodeURIComponent(r.body.ssh_key.fingerprint)}`)).body.ssh_keys).toHaveLength(1);
  });

  it("refuses a second key with the same name, and the same key under another name (fingerprint)", async () => {
    const pk = sshPublicKey();
    expect((await call("POST", "/ssh_keys", { name: "admin", public_key: pk })).status).toBe(201);
    const sameName = await call("POST", "/ssh_keys", { name: "admin", public_key: sshPublicKey() });
    expect(sameName.status).toBe(409);
    expect(sameName.body.error.code).toBe("uniqueness_error");
    const sameKey = await call("POST", "/ssh_keys", { name: "admin-2", public_key: pk.replace(/ \S+$/, " other-comment") });
    expect(sameKey.status).toBe(409);
    expect(sameKey.body.error).toMatchObject({ code: "uniqueness_error", message: "SSH key with the same fingerprint already exists", details: { fields: [{ name: "public_key" }] } });
  });

  it("refuses a malformed public key and invalid labels with invalid_input field details", async () => {
    const bad = await call("POST", "/ssh_keys", { name: "x", public_key: "ssh-ed25519 not-base64!" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.fields[0].name).toBe("public_key");
    const labels = await call("POST", "/ssh_keys", { name: "y", public_key: sshPublicKey(), labels: { "hetzner.cloud/x": "1" } });
    expect(labels.status).toBe(400);
    expect(labels.body.error.details.fields[0].name).toBe("labels");
    expect(labelProblems({ ok: "v", "a/b": "c-d" })).toEqual([]);
    expect(labelProblems({ "-bad": "x" })).toHaveLength(1);
    expect(labelProblems({ k: "x".repeat(64) })).toHaveLength(1);
    expect(labelProblems({ k: "ends-" })).toHaveLength(1);
  });
});

describe("Hetzner emulator: servers", () => {
  it("refuses CX in a US or Asian location with Hetzner's exact error, and accepts it in the EU", async () => {
    for (const location of ["ash", "hil", "sin"]) {
      const r = await createServer({ location });
      expect(r.status).toBe(400);
      expect(r.body).toEqual({ error: { code: "invalid_input", message: "unsupported location for server type", details: {} } });
    }
    expect((await createServer({ location: "hel1" })).status).toBe(201);
    expect((await createServer({ name: "us-box", server_type: "cpx11", location: "ash" })).status).toBe(201);
    const retired = await createServer({ name: "old", server_type: "cx22" });
    expect(retired.status).toBe(400);
    expect(retired.body.error.details.fields[0].name).toBe("server_type");
  });

  it("creates a server asynchronously: initializing, then running once its actions succeed", async () => {
    const key = await call("POST", "/ssh_keys", { name: "admin", public_key: sshPublicKey() });
    const fw = await call("POST", "/firewalls", { name: "fw", rules: [] });
    const r = await createServer({ ssh_keys: [key.body.ssh_key.id], firewalls: [{ firewall: fw.body.firewall.id }], user_data: "#cloud-config\n", labels: { a: "b" } });
    expect(r.status).toBe(201);
    expect(r.body.server.status).toBe("initializing");
    expect(r.body.action).toMatchObject({ command: "create_server", status: "running", progress: 0, finished: null, error: null });
    expect(r.body.next_actions.map((a: any) => a.command)).toEqual(["start_server", "apply_firewall"]);
    expect(r.body.root_password).toBeNull();
    const done = await waitAction(r.body.action.id);
    expect(done).toMatchObject({ status: "success", progress: 100 });
    expect(done.finished).toMatch(/\+00:00$/);
    for (const a of r.body.next_actions) expect((await waitAction(a.id)).status).toBe("success");
    // The bulk form hcloud-go's WaitFor polls.
    const bulk = await call("GET", `/actions?id=${r.body.action.id}&id=${r.body.next_actions[0].id}`);
    expect(bulk.body.actions).toHaveLength(2);
    const s = (await call("GET", `/servers/${r.body.server.id}`)).body.server;
    expect(s.status).toBe("running");
    // Every field of hcloud-go's schema.Server (v2.44, less the removed datacenter).
    expect(Object.keys(s).sort()).toEqual(
      ["backup_window", "created", "id", "image", "included_traffic", "ingoing_traffic", "iso", "labels", "load_balancers", "location", "locked", "name", "outgoing_traffic", "placement_group", "primary_disk_size", "private_net", "protection", "public_net", "rescue_enabled", "server_type", "status", "volumes"].sort(),
    );
    expect(Object.keys(s.public_net).sort()).toEqual(["firewalls", "floating_ips", "ipv4", "ipv6"]);
    expect(s.public_net.firewalls).toEqual([{ id: fw.body.firewall.id, status: "applied" }]);
    expect(Object.keys(s.public_net.ipv4).sort()).toEqual(["blocked", "dns_ptr", "id", "ip"]);
    // The IPv6 "ip" is the server's /64 (hcloud-go parses it as a CIDR; a bare address
    // made the real provider report an empty ipv6Address).
    expect(s.public_net.ipv6.ip).toMatch(/^2001:db8:[0-9a-f]+::\/64$/);
    expect(Object.keys(s.server_type).sort()).toEqual(["architecture", "category", "cores", "cpu_type", "deprecated", "deprecation", "description", "disk", "id", "included_traffic", "locations", "memory", "name", "prices", "storage_type"].sort());
    expect(Object.keys(s.location).sort()).toEqual(["city", "country", "description", "id", "latitude", "longitude", "name", "network_zone"]);
    expect(s.image.name).toBe("debian-12");
    expect(s.labels).toEqual({ a: "b" });
    expect(hz.userDataOf(s.id)).toBe("#cloud-config\n");
    const fwBack = (await call("GET", `/firewalls/${fw.body.firewall.id}`)).body.firewall;
    expect(fwBack.applied_to).toEqual([{ type: "server", server: { id: s.id } }]);
  });

  it("keeps server names unique per project, and accepts the name again once the server is deleted", async () => {
    const first = await createServer();
    const dup = await createServer();
    expect(dup.status).toBe(409);
    expect(dup.body.error).toMatchObject({ code: "uniqueness_error", details: { fields: [{ name: "name" }] } });
    const del = await call("DELETE", `/servers/${first.body.server.id}`);
    expect(del.status).toBe(200);
    expect((await waitAction(del.body.action.id)).status).toBe("success");
    expect((await call("GET", `/servers/${first.body.server.id}`)).status).toBe(404);
    expect((await createServer()).status).toBe(201);
  });

  it("refuses to delete or rebuild a protected server, and rebuild protection needs delete protection", async () => {
    const s = (await createServer()).body.server;
    const lonely = await call("POST", `/servers/${s.id}/actions/change_protection`, { rebuild: true, delete: false });
    expect(lonely.status).toBe(400);
    const p = await call("POST", `/servers/${s.id}/actions/change_protection`, { delete: true, rebuild: true });
    expect(p.status).toBe(201);
    await waitAction(p.body.action.id);
    expect((await call("GET", `/servers/${s.id}`)).body.server.protection).toEqual({ delete: true, rebuild: true });
    const del = await call("DELETE", `/servers/${s.id}`);
    expect(del.status).toBe(403);
    expect(del.body.error).toEqual({ code: "protected", message: "server is delete protected", details: null });
    const reb = await call("POST", `/servers/${s.id}/actions/rebuild`, { image: "debian-12" });
    expect(reb.status).toBe(403);
    expect(reb.body.error.code).toBe("protected");
    // The provider's shutdownBeforeDeletion still powers the host off before the refused delete.
    const off = await call("POST", `/servers/${s.id}/actions/shutdown`);
    await waitAction(off.body.action.id);
    expect((await call("GET", `/servers/${s.id}`)).body.server.status).toBe("off");
    expect((await call("DELETE", `/servers/${s.id}`)).status).toBe(403);
    expect(hz.snapshot().servers).toHaveLength(1);
  });

  it("powers off and on through actions, and a slow action stays running until its delay passes", async () => {
    const s = (await createServer()).body.server;
    await hz.settle();
    hz.setActionDelay(400);
    const off = await call("POST", `/servers/${s.id}/actions/poweroff`);
    expect(off.body.action).toMatchObject({ command: "stop_server", status: "running" });
    expect((await call("GET", `/actions/${off.body.action.id}`)).body.action.status).toBe("running");
    await waitAction(off.body.action.id);
    expect((await call("GET", `/servers/${s.id}`)).body.server.status).toBe("off");
    const on = await call("POST", `/servers/${s.id}/actions/poweron`);
    await waitAction(on.body.action.id);
    expect((await call("GET", `/servers/${s.id}`)).body.server.status).toBe("running");
  });

  it("ends an injected failing action in error, leaving the half-made server off", async () => {
    hz.failAction("create_server", { code: "server_error", message: "host could not be provisioned" });
    const r = await createServer();
    const done = await waitAction(r.body.action.id);
    expect(done).toMatchObject({ status: "error", error: { code: "server_error", message: "host could not be provisioned" } });
    expect(done.finished).not.toBeNull();
    await hz.settle();
    expect((await call("GET", `/servers/${r.body.server.id}`)).body.server.status).toBe("off");
    // Only the first: the next create succeeds.
    expect((await waitAction((await createServer({ name: "second" })).body.action.id)).status).toBe("success");
  });

  it("rebuilds an unprotected server with new user_data and image, and reboots it", async () => {
    const s = (await createServer({ user_data: "#cloud-config\n# v1\n" })).body.server;
    await hz.settle();
    const reb = await call("POST", `/servers/${s.id}/actions/rebuild`, { image: "ubuntu-24.04", user_data: "#cloud-config\n# v2\n" });
    expect(reb.status).toBe(201);
    expect(reb.body).toMatchObject({ action: { command: "rebuild_server" }, root_password: null });
    expect((await waitAction(reb.body.action.id)).status).toBe("success");
    const back = (await call("GET", `/servers/${s.id}`)).body.server;
    expect(back).toMatchObject({ status: "running", image: { name: "ubuntu-24.04", os_flavor: "ubuntu" } });
    expect(hz.userDataOf(s.id)).toBe("#cloud-config\n# v2\n");
    const reboot = await call("POST", `/servers/${s.id}/actions/reboot`);
    expect((await waitAction(reboot.body.action.id)).command).toBe("reboot_server");
    expect((await call("POST", `/servers/${s.id}/actions/enable_backup`)).status).toBe(404);
  });

  it("refuses user_data over 32 KiB and accepts exactly 32 KiB", async () => {
    const over = await createServer({ user_data: "#".repeat(32 * 1024 + 1) });
    expect(over.status).toBe(400);
    expect(over.body.error.details.fields[0].name).toBe("user_data");
    expect((await createServer({ user_data: "#".repeat(32 * 1024) })).status).toBe(201);
  });

  it("filters lists by name and label selector", async () => {
    await createServer({ name: "a", labels: { role: "ws" } });
    await createServer({ name: "b", labels: { role: "db" } });
    expect((await call("GET", "/servers?name=a")).body.servers.map((s: any) => s.name)).toEqual(["a"]);
    expect((await call("GET", "/servers?label_selector=role%3Ddb")).body.servers.map((s: any) => s.name)).toEqual(["b"]);
    expect((await call("GET", "/servers?label_selector=role")).body.servers).toHaveLength(2);
  });
});

describe("Hetzner emulator: firewalls and volumes", () => {
  it("applies and removes a firewall, and refuses to delete one still in use", async () => {
    const s = (await createServer()).body.server;
    const fw = (await call("POST", "/firewalls", { name: "fw", rules: [{ direction: "in", protocol: "tcp", port: "22", source_ips: ["192.0.2.0/24"] }], labels: { a: "b" } })).body.firewall;
    expect(fw.rules).toEqual([{ direction: "in", protocol: "tcp", port: "22", source_ips: ["192.0.2.0/24"], destination_ips: [], description: null }]);
    const apply = await call("POST", `/firewalls/${fw.id}/actions/apply_to_resources`, { apply_to: [{ type: "server", server: { id: s.id } }] });
    expect(apply.status).toBe(201);
    expect(apply.body.actions[0].command).toBe("apply_firewall");
    const inUse = await call("DELETE", `/firewalls/${fw.id}`);
    expect(inUse.status).toBe(422);
    expect(inUse.body.error.code).toBe("resource_in_use");
    await call("POST", `/firewalls/${fw.id}/actions/remove_from_resources`, { remove_from: [{ type: "server", server: { id: s.id } }] });
    expect((await call("DELETE", `/firewalls/${fw.id}`)).status).toBe(204);
    const noPort = await call("POST", "/firewalls", { name: "fw2", rules: [{ direction: "in", protocol: "tcp", source_ips: ["0.0.0.0/0"] }] });
    expect(noPort.status).toBe(400);
  });

  it("creates, attaches and detaches a volume in the server's location only", async () => {
    const s = (await createServer()).body.server;
    const v = await call("POST", "/volumes", { name: "data", size: 10, location: "nbg1", format: "ext4", labels: {} });
    expect(v.status).toBe(201);
    expect(Object.keys(v.body.volume).sort()).toEqual(["created", "format", "id", "labels", "linux_device", "location", "name", "protection", "server", "size", "status"]);
    expect(v.body.volume.linux_device).toBe(`/dev/disk/by-id/scsi-0HC_Volume_${v.body.volume.id}`);
    await waitAction(v.body.action.id);
    expect((await call("GET", `/volumes/${v.body.volume.id}`)).body.volume.status).toBe("available");
    const far = (await call("POST", "/volumes", { name: "far", size: 10, location: "hel1" })).body.volume;
    expect((await call("POST", `/volumes/${far.id}/actions/attach`, { server: s.id })).status).toBe(400);
    const att = await call("POST", `/volumes/${v.body.volume.id}/actions/attach`, { server: s.id, automount: false });
    expect(att.status).toBe(201);
    await waitAction(att.body.action.id);
    expect((await call("GET", `/servers/${s.id}`)).body.server.volumes).toEqual([v.body.volume.id]);
    expect((await call("DELETE", `/volumes/${v.body.volume.id}`)).status).toBe(409);
    await call("POST", `/volumes/${v.body.volume.id}/actions/detach`);
    await call("POST", `/volumes/${v.body.volume.id}/actions/change_protection`, { delete: true });
    expect((await call("DELETE", `/volumes/${v.body.volume.id}`)).body.error.code).toBe("protected");
    await call("POST", `/volumes/${v.body.volume.id}/actions/change_protection`, { delete: false });
    expect((await call("DELETE", `/volumes/${v.body.volume.id}`)).status).toBe(204);
    expect((await call("POST", "/volumes", { name: "tiny", size: 5, location: "nbg1" })).status).toBe(400);
  });
});
