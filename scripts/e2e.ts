/**
 * Test your workspace locally before paying for a server: boots a Debian 12 machine
 * with the exact cloud-config the workspace stack renders, checks it over ssh, deploys
 * the runtime and runs a chat turn, the portal and a brain sync against it.
 *
 *   sudo npm run e2e                    # systemd-nspawn (seconds; this machine's kernel)
 *   sudo npm run e2e -- --mode qemu     # full VM with Debian's kernel (minutes under TCG)
 *
 * It is the same test CI runs (tests/e2e/host.test.ts); this wrapper only picks the mode
 * and the image cache and prints what it is doing.
 */
import { $ } from "zx";
import { rmSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const HELP = `Usage: npm run e2e -- [options]

Boot a local Debian 12 host from the workspace's own cloud-config (profile
offline-test), check it over ssh with scripts/doctor.ts, deploy the runtime with the
RuntimeDeployment commands, run a chat turn with the real Claude Code CLI against a
fake Messages API, open the portal in headless Chromium, sync a brain entry, and tear
it all down. Needs root and the Debian packages listed in docs/e2e.md.

Options:
  --mode <nspawn|qemu>  nspawn (default): fast, this machine's kernel.
                        qemu: full VM; KVM when /dev/kvm runs a stock kernel, else TCG.
  --cache-dir <dir>     where the Debian image is cached (default /var/cache/picortex-e2e)
  --rebuild-image       delete cached images first (the next run builds with mmdebstrap)
  -h, --help            show this help

Exit status: 0 when every step passed, 1 otherwise, 2 on bad usage.`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        mode: { type: "string", default: "nspawn" },
        "cache-dir": { type: "string" },
        "rebuild-image": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`e2e: ${(err as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  if (values.mode !== "nspawn" && values.mode !== "qemu") {
    process.stderr.write(`e2e: --mode must be nspawn or qemu, not ${JSON.stringify(values.mode)}\n`);
    return 2;
  }
  const cacheDir = values["cache-dir"] ?? process.env.PICORTEX_E2E_CACHE ?? "/var/cache/picortex-e2e";
  if (!cacheDir.startsWith("/")) {
    process.stderr.write("e2e: --cache-dir must be an absolute path\n");
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write("e2e: must run as root (it boots a machine with systemd-nspawn or qemu): sudo npm run e2e\n");
    return 1;
  }
  if (values["rebuild-image"]) {
    try {
      for (const f of readdirSync(cacheDir)) if (f.endsWith(".tar.zst")) rmSync(join(cacheDir, f), { force: true });
      process.stderr.write(`e2e: cleared cached images in ${cacheDir}\n`);
    } catch {
      // nothing cached yet
    }
  }
  const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
  process.stderr.write(`e2e: mode ${values.mode}, image cache ${cacheDir}\n`);
  // zx quotes every interpolated value, and the only input (mode, cache dir) travels in
  // the environment, never in the command text.
  const vitest = join(repoRoot, "node_modules/.bin/vitest");
  const r = await $({
    cwd: repoRoot,
    stdio: "inherit",
    nothrow: true,
    env: { ...process.env, PICORTEX_E2E_MODE: values.mode, PICORTEX_E2E_CACHE: cacheDir },
  })`${vitest} run tests/e2e`;
  return r.exitCode ?? 1;
}

process.exit(await main());
