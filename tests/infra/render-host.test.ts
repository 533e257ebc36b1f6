/**
 * renderHost: byte-for-byte expected files, byte stability, size budget, and every
 * artifact checked by the real tool that consumes it (cloud-init, visudo, sshd,
 * systemd-analyze), plus the runtime's own config schema.
 */
import { describe, expect, it, beforeAll, afterAll, afterEach } from "vitest";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync, mkdirSync, chmodSync, cpSync, linkSync, realpathSync, copyFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { parse } from "yaml";
import { TEST_HOST_KEY } from "./fixtures/keys.js";
import { renderHost, renderReleaseHelper, loadHostAssets, USER_DATA_BUDGET, HETZNER_USER_DATA_LIMIT, RETRY_SCRIPT, JOIN_ONCE_SCRIPT, type HostAssets } from "../../templates/render-host.js";
import { HostVarsError } from "../../templates/host-vars.js";
import { EXPOSURE_THRESHOLDS, renderSocketUnit } from "../../templates/render-units.js";
import { METADATA_GUARD_NFT_PATH, RUNTIME_SOCKET_UNIT, RUNTIME_UNIT, TAILSCALE_AUTH_KEY_PATH } from "../../agent-runtime/host/contract.js";
import { runtimeConfigSchema } from "../../agent-runtime/config/schema.js";
import { offlineVars, productionVars, TEST_TAILSCALE_KEY } from "./fixtures/host-vars.js";
import { expectMatchesFile } from "./support/snapshot.js";
import { requireTools, run } from "./support/tools.js";

// Stand-ins keep these expected files about THIS renderer; the real scripts are checked below.
const fixedAssets: HostAssets = {
  releaseScript: "#!/bin/sh\n# stand-in for templates/host/picortex-release.sh in byte-for-byte tests\nexit 2\n",
  chatUserHelperTemplate: loadHostAssets().chatUserHelperTemplate,
  listenAddressScript: loadHostAssets().listenAddressScript,
};

let work: string;
let cleanupNs: (() => void) | undefined;
beforeAll(() => {
  requireTools("cloud-init", "visudo", "systemd-analyze", "sshd", "ssh-keygen", "sh", "nft", "ip", "runuser", "python3");
  work = mkdtempSync(join(tmpdir(), "picortex-render-"));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const variants = {
  "production-ubuntu": productionVars,
  "production-debian": { ...productionVars, image: "debian-12" as const },
  "offline-test": offlineVars,
};

describe("renderHost output is exactly the committed expected files", () => {
  for (const [name, vars] of Object.entries(variants)) {
    it(`${name}: cloud-config and every file`, () => {
      const host = renderHost(vars, fixedAssets);
      expectMatchesFile(host.cloudConfig, `${name}/user-data.yaml`);
      for (const f of host.files) {
        if (f.secret) continue;
        expectMatchesFile(f.content, `${name}/files${f.path}`);
      }
      expectMatchesFile(JSON.stringify({ files: host.files.map(({ content: _c, ...meta }) => meta), firewallRules: host.firewallRules, units: host.units }, null, 2) + "\n", `${name}/manifest.json`);
    });
  }

  it("is byte-stable: equal input renders identical bytes; key order and defaults do not matter", () => {
    const a = renderHost(productionVars, fixedAssets).cloudConfig;
    const b = renderHost(JSON.parse(JSON.stringify(productionVars)), fixedAssets).cloudConfig;
    const c = renderHost({ ...productionVars, hostname: "picortex", adminUser: "pcadmin", firewall: {} }, fixedAssets).cloudConfig;
    expect(b).toBe(a);
    expect(c).toBe(a);
    const d = renderHost({ ...productionVars, hostname: "picortex-2" }, fixedAssets).cloudConfig;
    expect(d).not.toBe(a);
  });
});

describe("cloud-config content", () => {
  const prod = () => renderHost(productionVars);
  it("lists `default` first, then the admin with the operator key and the non-login runtime user", () => {
    const doc = parse(prod().cloudConfig);
    expect(doc.users[0]).toBe("default");
    expect(doc.users[1]).toMatchObject({ name: "pcadmin", groups: "picortex-ops", lock_passwd: true, ssh_authorized_keys: [productionVars.adminSshPublicKey] });
    expect(doc.users[1].sudo).toBeUndefined();
    expect(doc.users[2]).toMatchObject({ name: "picortex", system: true, shell: "/usr/sbin/nologin" });
    expect(doc.groups).toEqual(["picortex-ops", "picortex-chats"]);
  });

  it("installs the deploy engineer's release helper (its source without comments) at /usr/local/sbin/picortex-release, root 0755", () => {
    const host = prod();
    const f = host.files.find((x) => x.path === "/usr/local/sbin/picortex-release");
    expect(f).toMatchObject({ mode: "0755", owner: "root:root" });
    const source = readFileSync(new URL("../../templates/host/picortex-release.sh", import.meta.url), "utf8");
    expect(f!.content).toBe(renderReleaseHelper(source));
    // Only comment and blank lines went: every other line is there, in order.
    const code = source.split("\n").filter((l, i) => i === 0 || (l.trim() !== "" && !/^\s*#/.test(l)));
    expect(f!.content.split("\n").filter((l) => !l.startsWith("# From templates/") && l !== "")).toEqual(code.filter((l) => l !== ""));
    expect(execFileSync("bash", ["-n"], { input: f!.content }).toString()).toBe("");
    const entry = parse(host.cloudConfig).write_files.find((w: { path: string }) => w.path === f!.path);
    const decoded = entry.encoding === "gz+b64" ? gunzipSync(Buffer.from(entry.content, "base64")).toString("utf8") : entry.content;
    expect(decoded).toBe(f!.content);
  });

  it("writes every file in `files` through write_files with the same owner and mode, deferring non-root owners", () => {
    const host = prod();
    const written = parse(host.cloudConfig).write_files as Array<Record<string, unknown>>;
    expect(written.map((w) => w.path)).toEqual(host.files.map((f) => f.path));
    for (const [i, f] of host.files.entries()) {
      expect(written[i]).toMatchObject({ owner: f.owner, permissions: f.mode });
      expect(written[i]!.defer === true).toBe(f.owner !== "root:root");
      expect(f.path.startsWith("/tmp/")).toBe(false);
    }
    expect(host.files.find((f) => f.path === "/etc/sudoers.d/picortex")).toMatchObject({ mode: "0440", owner: "root:root" });
  });

  it("keeps the Tailscale key out of argv: it is a root-only file read via --auth-key=file: and removed after joining", () => {
    const host = prod();
    const doc = parse(host.cloudConfig);
    const steps = (doc.runcmd as Array<string | string[]>).map((s) => (Array.isArray(s) ? s.join(" ") : s));
    expect(steps.join("\n")).not.toContain(TEST_TAILSCALE_KEY);
    const up = steps.findIndex((s) => s.includes("tailscale up"));
    expect(steps[up]).toBe(`sh -c ${JOIN_ONCE_SCRIPT} join tailscale up --auth-key=file:${TAILSCALE_AUTH_KEY_PATH} --hostname=picortex --advertise-tags=tag:picortex,tag:agents --ssh`);
    expect(steps[up + 1]).toBe(`rm -f ${TAILSCALE_AUTH_KEY_PATH}`);
    expect(host.files.find((f) => f.path === TAILSCALE_AUTH_KEY_PATH)).toMatchObject({ mode: "0600", owner: "root:root", secret: true });
  });

  it("joins the tailnet before the long installs, and retries every network step (issue 21 item 17)", () => {
    const doc = parse(prod().cloudConfig);
    const steps = (doc.runcmd as Array<string | string[]>).map((s) => (Array.isArray(s) ? s : [s]));
    const at = (pred: (s: string[]) => boolean) => steps.findIndex(pred);
    const up = at((s) => s.includes("tailscale") && s.includes("up"));
    const nodeInstall = at((s) => s.includes("install") && s.includes("nodejs"));
    const npm = at((s) => s.includes("npm"));
    expect(up).toBeGreaterThan(-1);
    expect(up).toBeLessThan(nodeInstall);
    expect(up).toBeLessThan(npm);
    // Only the tailscale package is installed before the join.
    for (const s of steps.slice(0, up)) if (s.includes("apt-get") && s.includes("install")) expect(s.slice(-1)).toEqual(["tailscale"]);
    // The packages module holds only the bootstrap tools (it runs before runcmd).
    expect(doc.packages).toEqual(["curl", "ca-certificates", "gnupg"]);
    for (const s of steps.filter((x) => x.includes("apt-get") || x.includes("npm"))) {
      expect(s.slice(0, 4), s.join(" ")).toEqual(["sh", "-c", RETRY_SCRIPT, "retry"]);
    }
    for (const s of steps.filter((x) => x.includes("apt-get"))) expect(s).toEqual(expect.arrayContaining(["DPkg::Lock::Timeout=600", "Acquire::Retries=5"]));
    for (const s of steps.filter((x) => x[0] === "curl")) expect(s).toContain("--retry-all-errors");
  });

  it("the join step is skipped once the node is on the tailnet, so first boot can be re-run (issue 21 item 17)", () => {
    const bin = join(work, "ts-bin");
    mkdirSync(bin, { recursive: true });
    const log = join(work, "ts.log");
    writeFileSync(join(bin, "tailscale"), `#!/bin/sh\necho "$*" >> ${log}\n[ "$1" = status ] && exit "$TS_STATUS"\nexit 0\n`);
    chmodSync(join(bin, "tailscale"), 0o755);
    const env = (status: string) => ({ ...process.env, PATH: `${bin}:${process.env.PATH}`, TS_STATUS: status });
    writeFileSync(log, "");
    expect(run(["sh", "-c", JOIN_ONCE_SCRIPT, "join", "tailscale", "up", "--auth-key=file:/x"], { env: env("1") }).status).toBe(0);
    expect(readFileSync(log, "utf8")).toBe("status\nup --auth-key=file:/x\n");
    writeFileSync(log, "");
    const again = run(["sh", "-c", JOIN_ONCE_SCRIPT, "join", "tailscale", "up", "--auth-key=file:/x"], { env: env("0") });
    expect(again.status).toBe(0);
    expect(again.stderr).toContain("already on the tailnet");
    expect(readFileSync(log, "utf8")).toBe("status\n");
  });

  it("the retry wrapper runs its arguments as one command, never as shell text, and gives up after 5 tries", () => {
    const marker = join(work, "retry-count");
    writeFileSync(marker, "");
    // A command that fails until its 3rd run; its argument holds shell syntax that must stay inert.
    const script = `echo x >> "$1"; [ "$(wc -l < "$1")" -ge 3 ]`;
    const fast = RETRY_SCRIPT.replace("sleep $((n * 10))", "sleep 0");
    const ok = run(["sh", "-c", fast, "retry", "sh", "-c", script, "s", marker]);
    expect(ok.status).toBe(0);
    expect(readFileSync(marker, "utf8").split("\n").filter(Boolean)).toHaveLength(3);
    const inert = run(["sh", "-c", fast, "retry", "echo", "$(touch " + join(work, "pwned") + ")"]);
    expect(inert.stdout.trim()).toBe("$(touch " + join(work, "pwned") + ")");
    expect(existsSync(join(work, "pwned"))).toBe(false);
    const never = run(["sh", "-c", fast, "retry", "false"]);
    expect(never.status).toBe(1);
  });

  it("offline-test skips exactly the internet steps and says so in the output", () => {
    const host = renderHost(offlineVars);
    expect(host.cloudConfig).toContain("# offline-test profile: SKIPPED because they need the internet");
    // No internet address anywhere; the only URL is the portal origin on the tailnet name.
    // (Files over 400 bytes are gzip+base64 in user_data: read them as written.)
    const everything = [host.cloudConfig, ...host.files.map((f) => f.content)].join("\n");
    const urls = [...new Set(everything.match(/https?:\/\/[^\s"',}]+/g))];
    expect(urls.filter((u) => !u.startsWith("http://127.0.0.1:"))).toEqual([`http://picortex:7420`]);
    expect(urls.length).toBeGreaterThan(1); // the loopback ones (health check, gateway) are there
    const doc = parse(host.cloudConfig);
    expect(doc.packages).toBeUndefined();
    expect(JSON.stringify(doc.runcmd)).not.toMatch(/tailscale|npm|apt-get|curl/);
    const paths = host.files.map((f) => f.path);
    for (const p of ["/etc/sudoers.d/picortex", "/etc/systemd/system/picortex-runtime.service", "/etc/picortex/runtime.json", "/etc/ssh/sshd_config.d/10-picortex.conf", "/usr/local/sbin/picortex-release", "/etc/tmpfiles.d/picortex.conf"]) {
      expect(paths).toContain(p);
    }
    expect(host.files.some((f) => f.secret)).toBe(false);
  });

  it(`stays under the user_data budget (${USER_DATA_BUDGET} B, Hetzner allows ${HETZNER_USER_DATA_LIMIT} B)`, () => {
    // The shape a default deploy renders: a data volume (dataVolumeSizeGb 20) and the pinned host key.
    const deployShape = {
      ...productionVars,
      dataVolume: { device: "/dev/disk/by-id/scsi-0HC_Volume_123456789" },
      sshHostKey: { privateKey: TEST_HOST_KEY.privateKey, publicKey: TEST_HOST_KEY.publicKey },
    };
    for (const [name, vars] of Object.entries({ ...variants, "production default deploy": deployShape })) {
      const bytes = Buffer.byteLength(renderHost(vars).cloudConfig);
      console.log(`user_data ${name}: ${bytes} bytes (${((bytes / HETZNER_USER_DATA_LIMIT) * 100).toFixed(1)}% of the 32 KiB limit)`);
      expect(bytes).toBeLessThan(USER_DATA_BUDGET);
    }
  });

  it("rejects bad variables with actionable messages", () => {
    expect(() => renderHost({ ...productionVars, tailscale: undefined })).toThrow(/production profile joins the tailnet/);
    expect(() => renderHost({ ...offlineVars, adminUser: "pc-admin" })).toThrow(/reserved for chat users/);
    expect(() => renderHost({ ...offlineVars, chatsRoot: "/srv/../etc" })).toThrow(HostVarsError);
    expect(() => renderHost({ ...offlineVars, firewall: { sshAllowlist: ["0.0.0.0/0"] } })).toThrow(/allowSshFromAnywhere/);
    expect(() => renderHost({ ...productionVars, tailscale: { authKey: "k", tags: ["picortex"] } })).toThrow(/tag:<name>/);
  });
});

/**
 * cloud-init 22.4 (Debian 12) exits 0 from `--annotate` even when it finds errors, so the
 * exit status comes from a plain run and the annotated listing must carry no error (E)
 * or deprecation (D) marks.
 */
function expectValidCloudConfig(file: string): void {
  const plain = run(["cloud-init", "schema", "--config-file", file]);
  expect(plain.status, plain.stdout + plain.stderr).toBe(0);
  expect(plain.stdout).toContain("Valid cloud-config");
  const annotated = run(["cloud-init", "schema", "--config-file", file, "--annotate"]);
  expect(annotated.stdout + annotated.stderr).not.toMatch(/# [ED]\d/);
}

describe("validated by the real tools", () => {
  for (const [name, vars] of Object.entries(variants)) {
    it(`cloud-init schema accepts the ${name} cloud-config`, () => {
      const file = join(work, `${name}.yaml`);
      writeFileSync(file, renderHost(vars).cloudConfig);
      expectValidCloudConfig(file);
    });
  }

  it("cloud-init schema rejects a broken document (the check can fail)", () => {
    const file = join(work, "broken.yaml");
    writeFileSync(file, renderHost(offlineVars).cloudConfig.replace("  - default\n", "  - 5\n"));
    expect(() => expectValidCloudConfig(file)).toThrow();
  });

  it("visudo -cf accepts the sudoers drop-in", () => {
    const f = renderHost(productionVars).files.find((x) => x.path === "/etc/sudoers.d/picortex")!;
    const file = join(work, "picortex-sudoers");
    writeFileSync(file, f.content, { mode: 0o440 });
    const r = run(["visudo", "-cf", file]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    writeFileSync(file, f.content + "picortex ALL=(root) NOPASSWD ALL\n", { mode: 0o440 });
    expect(run(["visudo", "-cf", file]).status).not.toBe(0);
  });

  it("sshd -t accepts the hardening drop-in", () => {
    const f = renderHost(productionVars).files.find((x) => x.path === "/etc/ssh/sshd_config.d/10-picortex.conf")!;
    // sshd -t insists on its privilege separation directory (the openssh-server package's /run/sshd).
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const dir = join(work, "sshd");
    mkdirSync(dir, { recursive: true });
    const hostKey = join(dir, "host_key");
    rmSync(hostKey, { force: true });
    expect(run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey]).status).toBe(0);
    writeFileSync(join(dir, "10-picortex.conf"), f.content);
    writeFileSync(join(dir, "sshd_config"), `Include ${dir}/10-picortex.conf\nHostKey ${hostKey}\n`);
    const r = run(["/usr/sbin/sshd", "-t", "-f", join(dir, "sshd_config")]);
    expect(r.status, r.stderr).toBe(0);
    const effective = run(["/usr/sbin/sshd", "-T", "-f", join(dir, "sshd_config"), "-C", "user=pcadmin,host=h,addr=127.0.0.1"]).stdout;
    expect(effective).toMatch(/^passwordauthentication no$/m);
    expect(effective).toMatch(/^permitrootlogin no$/m);
    expect(effective).toMatch(/^allowusers pcadmin$/m);
  });

  it("the runtime accepts runtime.json (its own schema, strict)", () => {
    const f = renderHost(productionVars).files.find((x) => x.path === "/etc/picortex/runtime.json")!;
    const parsed = runtimeConfigSchema.parse(JSON.parse(f.content));
    expect(parsed).toMatchObject({ mode: "host", dataDir: "/var/lib/picortex", server: { hosts: ["127.0.0.1"], port: 7420 } });
    expect(f).toMatchObject({ owner: "root:picortex", mode: "0640" });
  });

  it("systemd-analyze verify accepts every unit in the rendered file tree, and security scores stay under their thresholds", () => {
    // A scratch root holding the rendered files plus this machine's stock units, so
    // verify resolves ExecStart= paths and dependencies the way the host will.
    const host = renderHost(productionVars);
    const root = join(work, "root");
    cpSync("/usr/lib/systemd/system", join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
    for (const f of host.files) {
      if (f.secret) continue;
      mkdirSync(join(root, dirname(f.path)), { recursive: true });
      writeFileSync(join(root, f.path), f.content, { mode: parseInt(f.mode, 8) });
    }
    // Programs the units run that the image provides (node, nft): this machine's, at the same paths.
    const provided = new Set(host.files.map((f) => f.path));
    const execs = host.files
      .filter((f) => f.path.endsWith(".service"))
      .flatMap((f) => [...f.content.matchAll(/^Exec\w+=[-@:+!]*(\/\S+)/gm)].map((m) => m[1]!))
      .filter((p) => !provided.has(p));
    for (const exec of new Set(execs)) {
      const source = exec === "/usr/bin/node" ? process.execPath : exec;
      mkdirSync(join(root, dirname(exec)), { recursive: true });
      try {
        linkSync(realpathSync(source), join(root, exec));
      } catch {
        copyFileSync(realpathSync(source), join(root, exec));
        chmodSync(join(root, exec), 0o755);
      }
    }
    for (const unit of host.units) {
      const verify = run(["systemd-analyze", "verify", `--root=${root}`, unit]);
      expect(verify.status, verify.stderr).toBe(0);
      expect(verify.stderr.trim(), `systemd-analyze verify warnings for ${unit}`).toBe("");
      const threshold = EXPOSURE_THRESHOLDS[unit];
      expect(threshold, `no exposure threshold defined for ${unit}`).toBeDefined();
      const sec = run(["systemd-analyze", "security", "--offline=true", "--no-pager", `--root=${root}`, unit]);
      const score = /Overall exposure level for \S+: ([\d.]+)/.exec(sec.stdout)?.[1];
      expect(score, sec.stdout + sec.stderr).toBeDefined();
      console.log(`systemd-analyze security ${unit}: exposure ${score} (threshold ${threshold})`);
      expect(Number(score)).toBeLessThanOrEqual(threshold!);
    }
    // The runtime's sockets (issue 13): verified on their own too, with the runtime they name.
    const verifySocket = run(["systemd-analyze", "verify", `--root=${root}`, RUNTIME_SOCKET_UNIT]);
    expect(verifySocket.status, verifySocket.stderr).toBe(0);
    expect(verifySocket.stderr.trim(), `systemd-analyze verify warnings for ${RUNTIME_SOCKET_UNIT}`).toBe("");
    // The check can fail: without the helper script the unit does not verify.
    rmSync(join(root, "usr/local/lib/picortex/listen-address"));
    expect(run(["systemd-analyze", "verify", `--root=${root}`, "picortex-listen-address.service"]).status).not.toBe(0);
  });

  it("systemd-analyze verify catches a broken unit (the check can fail)", () => {
    const f = renderHost(productionVars).files.find((x) => x.path === `/etc/systemd/system/${RUNTIME_UNIT}`)!;
    const path = join(work, "broken.service");
    writeFileSync(path, f.content.replace("Type=simple", "Type=bogus"));
    const r = run(["systemd-analyze", "verify", path]);
    expect(r.status !== 0 || r.stderr.includes("bogus")).toBe(true);
  });

  it("the runtime unit never sets an option that implies NoNewPrivileges (sudo must keep working)", () => {
    const f = renderHost(productionVars).files.find((x) => x.path === `/etc/systemd/system/${RUNTIME_UNIT}`)!;
    const keys = f.content.split("\n").filter((l) => /^[A-Z]\w+=/.test(l)).map((l) => l.split("=")[0]!);
    const implyNnp = ["LockPersonality", "MemoryDenyWriteExecute", "PrivateDevices", "ProtectClock", "ProtectHostname", "ProtectKernelLogs", "ProtectKernelModules", "ProtectKernelTunables", "RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "SystemCallArchitectures", "SystemCallFilter", "SystemCallLog", "DynamicUser", "PrivateUsers"];
    expect(keys.filter((k) => implyNnp.includes(k))).toEqual([]);
    expect(f.content).toMatch(/^NoNewPrivileges=no$/m);
    expect(f.content).toMatch(/^LoadCredential=anthropic-api-key:\/etc\/picortex\/credentials\/anthropic-api-key$/m);
    expect(f.content).toMatch(/^User=picortex$/m);
    expect(f.content).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/picortex\/current\/picortex\.mjs serve --config \/etc\/picortex\/runtime\.json \$PICORTEX_LISTEN_ARGS$/m);
  });

  it("the runtime's ports are held by socket units on the dual-stack wildcard, and the runtime never starts without them (port squatting, issue 13)", () => {
    const host = renderHost(productionVars);
    const unit = (name: string) => host.files.find((x) => x.path === `/etc/systemd/system/${name}`)!.content;
    const c = unit(RUNTIME_SOCKET_UNIT);
    // Bare ports, API first: every address of both families; no SO_REUSEPORT (which would
    // let a process of the same uid share the port).
    expect(c).toContain(`[Socket]\nListenStream=${host.vars.runtimePort}\nListenStream=${host.vars.gatewayPort}\nBindIPv6Only=both\n`);
    expect(c).not.toMatch(/^ReusePort=/m);
    expect(c).toMatch(/^ConditionPathExists=\/opt\/picortex\/current\/picortex\.mjs$/m);
    const runtime = unit(RUNTIME_UNIT);
    expect(runtime).toMatch(/^Requires=picortex-runtime\.socket$/m);
    expect(() => renderSocketUnit({ runtimePort: 7420, gatewayPort: 7420 })).toThrow(/must differ/);
    expect(() => renderSocketUnit({ runtimePort: 0, gatewayPort: 7419 })).toThrow(/1-65535/);
  });

  it("the runtime unit bounds its memory below a CX23's 4 GB (gateway bodies and chats cannot OOM the host)", () => {
    const f = renderHost(productionVars).files.find((x) => x.path === `/etc/systemd/system/${RUNTIME_UNIT}`)!;
    const bytes = (v: string) => Number(v.slice(0, -1)) * { K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[v.slice(-1) as "K" | "M" | "G"];
    const high = /^MemoryHigh=(\d+[KMG])$/m.exec(f.content)?.[1];
    const max = /^MemoryMax=(\d+[KMG])$/m.exec(f.content)?.[1];
    expect(high).toBeDefined();
    expect(max).toBeDefined();
    expect(bytes(high!)).toBeLessThan(bytes(max!));
    expect(bytes(max!)).toBeLessThanOrEqual(3 * 1024 ** 3);
  });
});

describe("metadata guard (nftables), loaded for real in a network namespace this test creates", () => {
  it("nft -c accepts the rules", () => {
    const f = renderHost(productionVars).files.find((x) => x.path === METADATA_GUARD_NFT_PATH)!;
    const file = join(work, "guard.nft");
    writeFileSync(file, f.content);
    const r = run(["nft", "-c", "-f", file]);
    expect(r.status, r.stderr).toBe(0);
  });

  it("refuses non-root connections to 169.254.169.254 and lets root through", () => {
    const f = renderHost(productionVars).files.find((x) => x.path === METADATA_GUARD_NFT_PATH)!;
    const file = join(work, "guard-ns.nft");
    writeFileSync(file, f.content);
    const ns = `pcmg${process.pid}`;
    const inNs = (argv: string[]) => run(["ip", "netns", "exec", ns, ...argv]);
    const server = `import socket,sys
s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("169.254.169.254",8080));s.listen(8);s.settimeout(20)
sys.stdout.write("ready\\n");sys.stdout.flush()
while True:
  try:
    c,_=s.accept();c.close()
  except Exception:
    break`;
    const client = 'import socket\ntry:\n  socket.create_connection(("169.254.169.254",8080),3);print("connected")\nexcept OSError as e:\n  print("refused" if e.errno==111 else "error:"+str(e))';
    expect(run(["ip", "netns", "add", ns]).status).toBe(0);
    let listener: ReturnType<typeof spawn> | undefined;
    try {
      expect(run(["ip", "-n", ns, "link", "set", "lo", "up"]).status).toBe(0);
      expect(run(["ip", "-n", ns, "addr", "add", "169.254.169.254/32", "dev", "lo"]).status).toBe(0);
      listener = spawn("ip", ["netns", "exec", ns, "python3", "-c", server], { stdio: ["ignore", "pipe", "inherit"] });
      const ready = new Promise<void>((resolve) => listener!.stdout!.once("data", () => resolve()));
      return ready.then(() => {
        expect(inNs(["runuser", "-u", "nobody", "--", "python3", "-c", client]).stdout.trim()).toBe("connected"); // before: open
        const load = inNs(["nft", "-f", file]);
        expect(load.status, load.stderr).toBe(0);
        expect(inNs(["nft", "-f", file]).status).toBe(0); // reloading is idempotent
        expect(inNs(["runuser", "-u", "nobody", "--", "python3", "-c", client]).stdout.trim()).toBe("refused");
        expect(inNs(["python3", "-c", client]).stdout.trim()).toBe("connected");
      });
    } finally {
      // Runs before the promise settles only on a synchronous failure; the namespace is removed in afterEach below otherwise.
      cleanupNs = () => {
        listener?.kill("SIGKILL");
        run(["ip", "netns", "del", ns]);
      };
    }
  });
  afterEach(() => {
    cleanupNs?.();
    cleanupNs = undefined;
  });
});

describe("listen-address helper (run for real with a stand-in tailscale CLI)", () => {
  function runHelper(tailscaleOutput: string, waitSeconds = "0") {
    const dir = mkdtempSync(join(work, "listen-"));
    const fake = join(dir, "tailscale");
    writeFileSync(fake, `#!/bin/sh\n[ "$1 $2" = "ip -4" ] || exit 9\nprintf '%s' '${tailscaleOutput}'\n`);
    chmodSync(fake, 0o755);
    const script = join(dir, "listen-address");
    writeFileSync(script, loadHostAssets().listenAddressScript, { mode: 0o755 });
    const r = run([script], { env: { PATH: "/usr/bin:/bin", RUNTIME_DIRECTORY: dir, PICORTEX_LISTEN_WAIT_SECONDS: waitSeconds, PICORTEX_TAILSCALE_BIN: fake } });
    let env: string | undefined;
    try {
      env = readFileSync(join(dir, "listen.env"), "utf8");
    } catch {
      env = undefined;
    }
    return { ...r, env };
  }
  it("writes loopback + the tailnet IPv4 for the runtime unit", () => {
    const r = runHelper("100.101.102.103\n");
    expect(r.status, r.stderr).toBe(0);
    expect(r.env).toBe("PICORTEX_LISTEN_ARGS=--host 127.0.0.1 100.101.102.103\n");
  });
  it("refuses anything that is not a tailnet (100.64.0.0/10) address and exits 1 with a hint", () => {
    for (const bad of ["0.0.0.0", "100.128.0.1", "10.0.0.1", "100.64.0.1 --host 0.0.0.0", ""]) {
      const r = runHelper(bad);
      expect(r.status).toBe(1);
      expect(r.env).toBeUndefined();
      expect(r.stderr).toContain("no tailnet IPv4");
    }
  });
});
