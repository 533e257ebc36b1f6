/**
 * Builds (or reuses) the Pulumi CLI the engine lane runs: tools/pulumi/ built with the
 * Go toolchain into a cache folder keyed by go.mod, go.sum and `go version`.
 *
 *   npx tsx scripts/pulumi-toolchain.ts            # build when cold, print the path
 *   npx tsx scripts/pulumi-toolchain.ts --json     # {"pulumi": "...", "built": false, ...}
 */
import { parseArgs } from "node:util";
import { ensurePulumiCli, cliLocation, ToolchainError, CACHE_ENV, DEFAULT_CACHE_DIR } from "./lib/pulumi-toolchain.js";

const HELP = `Usage: npx tsx scripts/pulumi-toolchain.ts [options]

Build the Pulumi CLI pinned by tools/pulumi/go.mod (github.com/pulumi/pulumi/pkg/v3)
with -trimpath and its version stamped, into a cache folder keyed by go.mod, go.sum
and \`go version\`. A warm cache is reused without running the Go toolchain's build.
A cold build takes 6-10 minutes on 2 cores and needs the Go module proxy.

Options:
  --cache-dir <dir>  cache folder (default $${CACHE_ENV}, else ${DEFAULT_CACHE_DIR},
                     else ~/.cache/picortex-toolchain when that is not writable)
  --check            do not build: exit 0 when the cache is warm, 3 when it is cold
  --rebuild          build even when the cache is warm
  --json             print one JSON object (pulumi, binDir, version, goVersion, key,
                     cacheDir, built, buildSeconds) on stdout; progress stays on stderr
  -h, --help         show this help

Exit status: 0 on success, 1 when the build fails, 2 on bad usage, 3 for --check on a cold cache.`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        "cache-dir": { type: "string" },
        check: { type: "boolean", default: false },
        rebuild: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`pulumi-toolchain: ${(err as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  if (values.check && values.rebuild) {
    process.stderr.write("pulumi-toolchain: --check and --rebuild exclude each other\n");
    return 2;
  }
  try {
    if (values.check) {
      const loc = cliLocation({ cacheDir: values["cache-dir"] });
      const { existsSync } = await import("node:fs");
      const warm = existsSync(loc.pulumi);
      if (values.json) process.stdout.write(JSON.stringify({ ...loc, warm }) + "\n");
      else process.stdout.write(`${warm ? "warm" : "cold"}: ${loc.pulumi}\n`);
      return warm ? 0 : 3;
    }
    const info = await ensurePulumiCli({ cacheDir: values["cache-dir"], rebuild: values.rebuild });
    process.stdout.write(values.json ? JSON.stringify(info) + "\n" : info.pulumi + "\n");
    return 0;
  } catch (err) {
    if (err instanceof ToolchainError) {
      process.stderr.write(`pulumi-toolchain: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main();
