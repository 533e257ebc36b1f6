#!/usr/bin/env -S npx tsx
/**
 * Builds the runtime release that RuntimeDeployment ships to the host:
 *   npx tsx scripts/bundle.ts [--out dist/release] [--no-prebuilt] [--json]
 * Prints the release hash; the same source gives the same hash.
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildRelease } from "./lib/bundle-release.js";

const HELP = `Usage: tsx scripts/bundle.ts [options]

Bundle the agent runtime into a reproducible, content-hashed release:
dist/release/<hash>.tar.gz and dist/release/<hash>.json (the manifest).

Options:
  --out <dir>      output directory (default: dist/release)
  --no-prebuilt    do not ship this machine's native binaries; the host builds them
  --json           print the result as one JSON object on stdout
  -h, --help       show this help

Progress goes to stderr. Exit code 0 on success, 1 on a build error, 2 on bad usage.`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        out: { type: "string" },
        "no-prebuilt": { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`bundle: ${(err as Error).message}\n${HELP}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
  const result = await buildRelease({
    repoRoot,
    outDir: values.out,
    prebuiltNatives: !values["no-prebuilt"],
    progress: (line) => process.stderr.write(`bundle: ${line}\n`),
  });
  for (const w of result.warnings) process.stderr.write(`bundle: warning: ${w}\n`);
  if (values.json) {
    process.stdout.write(
      JSON.stringify({
        hash: result.hash,
        tarball: result.tarball,
        manifest: result.manifestPath,
        tarBytes: result.tarBytes,
        gzipBytes: result.gzipBytes,
        portalAssets: result.manifest.portalAssets,
        natives: result.manifest.natives,
        node: result.manifest.node,
        warnings: result.warnings,
      }) + "\n",
    );
  } else {
    process.stdout.write(`${result.hash}\n`);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bundle: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
