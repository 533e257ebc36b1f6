#!/usr/bin/env tsx
/**
 * Runs every benchmark under bench/<name>/{index,run}.ts (or only those named on the
 * command line). Each prints its figures beside its goal and a baseline measured in the
 * same run and writes bench/results/<name>-*.json (bench/lib/report.ts); this runner then
 * prints one summary of every goal. Nothing here asserts on time: a benchmark's exit
 * status says only whether it ran.
 */
import { readdirSync, existsSync, readFileSync } from "node:fs";
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
const started = new Date().toISOString();
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

// One summary: every figure that has a goal, from the records the runs just wrote.
process.stdout.write("\n=== summary: goals ===\n");
for (const name of selected) {
  const file = join(here, "results", `${name}-latest.json`);
  if (!existsSync(file)) {
    process.stdout.write(`${name}: no results written\n`);
    continue;
  }
  const rec = JSON.parse(readFileSync(file, "utf8")) as {
    started: string;
    load: { start: number[]; end: number[]; cores: number };
    figures: Array<{ name: string; value: number; unit: string; goal?: { text: string; met: boolean }; vs?: string; baseline?: { name: string } }>;
  };
  if (rec.started < started) {
    process.stdout.write(`${name}: did not finish (the last results are from ${rec.started})\n`);
    continue;
  }
  const goals = rec.figures.filter((f) => f.goal);
  const met = goals.filter((f) => f.goal!.met).length;
  process.stdout.write(`${name}: ${met}/${goals.length} goals met (load ${rec.load.start[0]} -> ${rec.load.end[0]} on ${rec.load.cores} cores)\n`);
  for (const f of goals)
    process.stdout.write(`  ${f.goal!.met ? "met    " : "NOT met"}  ${f.name}: ${Number.isFinite(f.value) ? +f.value.toFixed(3) : f.value} ${f.unit} (goal ${f.goal!.text}${f.vs ? `; ${f.vs} than ${f.baseline?.name}` : ""})\n`);
}
process.exit(failed ? 1 : 0);
