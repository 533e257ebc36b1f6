#!/usr/bin/env tsx
/**
 * Runs every benchmark under bench/<name>/{index,run}.ts (or only those named on the
 * command line). Benchmarks print their own figures and their ratio against a
 * baseline measured in the same run; nothing here asserts on time.
 */
import { readdirSync, existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  process.stdout.write("usage: npm run bench [-- <name>...]\n  names: " + benches().join(", ") + "\n");
  process.exit(0);
}

/** A benchmark's entry: `index.ts`, or `run.ts` where the folder also holds helpers. */
function entryOf(name: string): string | undefined {
  return ["index.ts", "run.ts"].map((f) => join(here, name, f)).find((p) => existsSync(p));
}

function benches(): string[] {
  return readdirSync(here, { withFileTypes: true })
    .filter((d) => d.isDirectory() && entryOf(d.name) !== undefined)
    .map((d) => d.name)
    .sort();
}

const selected = args.length ? args : benches();
let failed = 0;
for (const name of selected) {
  const entry = entryOf(name);
  if (!entry) {
    process.stderr.write(`bench: no benchmark named ${name} (have: ${benches().join(", ")})\n`);
    process.exit(2);
  }
  process.stdout.write(`\n=== bench/${name} ===\n`);
  const r = spawnSync(process.execPath, ["--import", "tsx", entry], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
