/**
 * Manual check (not part of `npm test`; the e2e suite deploys the real runtime): boots
 * the offline-test cloud-config in systemd-nspawn on a Debian 12 rootfs and runs a stub
 * release INSIDE the rendered, sandboxed picortex-runtime.service that performs every
 * privileged operation of the host contract through sudo. Proves the sandbox keeps sudo
 * working under real systemd (not just the bounding set emulated with setpriv).
 *
 *   npx tsx tests/infra/manual/sandbox-probe.ts /var/cache/picortex-e2e/<rootfs>.tar.zst
 *
 * Needs root, systemd-nspawn, zstd, tar. The rootfs is the e2e harness's cached image
 * (Debian 12 + cloud-init + sudo + tmux); node is bind-mounted from this machine.
 */
import { spawnSync, spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, symlinkSync, rmSync, chmodSync, existsSync } from "node:fs";
import { join } from "node:path";
import { renderHost } from "../../../templates/render-host.js";
import { privilegedArgv, runTurnPrefix, asChatArgv } from "../../../agent-runtime/host/chat-identity.js";
import { TEST_SSH_PUBLIC_KEY } from "../fixtures/host-vars.js";

const tarball = process.argv[2];
if (!tarball || !existsSync(tarball)) {
  console.error("usage: npx tsx tests/infra/manual/sandbox-probe.ts <debian12 rootfs .tar.zst>");
  process.exit(2);
}
const sh = (argv: string[], input?: string) => {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", input, timeout: 180_000 });
  return { status: r.status, out: (r.stdout ?? "") + (r.stderr ?? "") };
};
const sudo = (argv: string[]) => ["/usr/bin/sudo", "-n", "--", ...argv];
const steps: Record<string, string[]> = {
  create: sudo(privilegedArgv.createUser("probe")),
  unpackWorkspace: asChatArgv.unpackIntoHome("probe"),
  turn: runTurnPrefix("probe", "/usr/local/bin/claude"),
  version: asChatArgv.claudeVersion("probe", "/usr/local/bin/claude"),
  archive: asChatArgv.archiveHome("probe"),
  killAll: asChatArgv.killAll("probe"),
  escalateMustFail: ["/usr/bin/sudo", "-n", "-u", "root", "/usr/bin/id"],
  delete: sudo(privilegedArgv.deleteUser("probe")),
};
const expected: Record<string, number> = { killAll: 1, escalateMustFail: 1 };

const work = mkdtempSync("/var/tmp/picortex-sandbox-probe-");
const root = join(work, "root");
const seed = join(work, "seed");
let nspawn: ReturnType<typeof spawn> | undefined;
try {
  mkdirSync(root);
  mkdirSync(seed);
  console.log(`probe: restoring ${tarball}`);
  if (sh(["sh", "-c", 'zstd -dc "$1" | tar -x -C "$2"', "sh", tarball, root]).status !== 0) throw new Error("rootfs restore failed");
  const host = renderHost({ profile: "offline-test", image: "debian-12", hostname: "picortex-probe", adminSshPublicKey: TEST_SSH_PUBLIC_KEY });
  writeFileSync(join(seed, "user-data"), host.cloudConfig);
  writeFileSync(join(seed, "meta-data"), "instance-id: sandbox-probe-1\nlocal-hostname: picortex-probe\n");
  const release = join(root, "opt/picortex/releases/probe");
  mkdirSync(release, { recursive: true });
  writeFileSync(
    join(release, "picortex.mjs"),
    `import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
const steps = ${JSON.stringify(steps)};
spawnSync("/usr/bin/mkdir", ["-p", "/tmp/seed/workspace"]);
const seedTar = spawnSync("/usr/bin/tar", ["-C", "/tmp/seed", "-cf", "-", "workspace"]).stdout;
const out = {};
for (const [name, argv] of Object.entries(steps)) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", input: name === "unpackWorkspace" ? seedTar : "" });
  out[name] = { status: r.status, stdout: (r.stdout || "").slice(0, 120), stderr: (r.stderr || "").slice(0, 200) };
}
writeFileSync("/var/lib/picortex/probe.json", JSON.stringify(out));
setInterval(() => {}, 1 << 30);
`,
  );
  symlinkSync("releases/probe", join(root, "opt/picortex/current"));
  writeFileSync(join(root, "usr/local/bin/claude"), '#!/bin/sh\n[ "$1" = "--version" ] && { echo "stub"; exit 0; }\necho "claude as $(id -un) in $(pwd)"\n');
  chmodSync(join(root, "usr/local/bin/claude"), 0o755);
  writeFileSync(join(root, "usr/bin/node"), "");

  console.log("probe: booting (systemd-nspawn)");
  nspawn = spawn(
    "systemd-nspawn",
    ["-D", root, "--private-network", "--register=no", "--keep-unit", "--console=pipe", "-b", `--bind-ro=${seed}:/var/lib/cloud/seed/nocloud`, `--bind-ro=${process.execPath}:/usr/bin/node`],
    { stdio: "ignore" },
  );
  let leader = "";
  for (let i = 0; i < 60 && !leader; i++) {
    spawnSync("sleep", ["1"]);
    const kids = sh(["ps", "-o", "pid=,comm=", "--ppid", String(nspawn.pid)]).out.trim().split("\n").find((l) => l.includes("systemd"));
    leader = kids?.trim().split(/\s+/)[0] ?? "";
  }
  if (!leader) throw new Error("container did not start");
  const inside = (argv: string[]) => sh(["nsenter", "-t", leader, "-m", "-u", "-i", "-n", "-p", "--", ...argv]);
  const ci = inside(["cloud-init", "status", "--wait"]);
  console.log(`probe: cloud-init: ${ci.out.trim().split("\n").pop()}`);
  const failed = inside(["systemctl", "--failed", "--no-legend"]).out.trim();
  console.log(`probe: failed units: ${failed || "none"}`);
  inside(["systemctl", "start", "picortex-runtime.service"]);
  let result: Record<string, { status: number }> | undefined;
  for (let i = 0; i < 30 && !result; i++) {
    spawnSync("sleep", ["1"]);
    const r = inside(["cat", "/var/lib/picortex/probe.json"]);
    if (r.status === 0) result = JSON.parse(r.out);
  }
  if (!result) throw new Error("the runtime unit did not produce probe.json: " + inside(["systemctl", "status", "picortex-runtime.service"]).out);
  let ok = ci.out.includes("done") && failed === "";
  for (const [name, r] of Object.entries(result)) {
    const want = expected[name] ?? 0;
    const pass = r.status === want;
    ok &&= pass;
    console.log(`probe: ${pass ? "ok  " : "FAIL"} ${name} exit ${r.status} (want ${want})`);
  }
  console.log(`probe: ${inside(["systemd-analyze", "security", "picortex-runtime.service"]).out.trim().split("\n").pop()}`);
  inside(["systemctl", "poweroff"]);
  process.exitCode = ok ? 0 : 1;
} finally {
  if (nspawn && nspawn.exitCode === null) {
    spawnSync("sleep", ["3"]);
    if (nspawn.exitCode === null) nspawn.kill("SIGKILL");
  }
  rmSync(work, { recursive: true, force: true });
}
