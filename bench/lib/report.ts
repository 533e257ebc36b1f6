/**
 * One way for every benchmark to report: each figure beside its goal and its baseline
 * measured in the same run, the machine's load while it ran, and a JSON record under
 * bench/results/ that the next run compares against. Nothing here fails on time: a goal
 * not met is printed as such, never asserted.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";

/** bench/results, or $BENCH_RESULTS_DIR (tests write elsewhere). */
export const RESULTS_DIR = resolve(process.env.BENCH_RESULTS_DIR ?? resolve(import.meta.dirname, "../results"));

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/**
 * "12.3x faster" / "150x slower" / "same": how `ours` compares with `baseline` when lower
 * is better (times); pass higherIsBetter for rates. Never prints a bare ratio below 1.
 */
export function compare(ours: number, baseline: number, higherIsBetter = false): string {
  if (!(ours > 0) || !(baseline > 0)) return "n/a";
  const r = higherIsBetter ? ours / baseline : baseline / ours;
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  if (r >= 1.005) return `${f(r)}x faster`;
  if (r <= 1 / 1.005) return `${f(1 / r)}x slower`;
  return "same";
}

export interface Goal {
  /** Human text, e.g. "<= 5 ms". */
  text: string;
  met: boolean;
}

export const atMost = (value: number, limit: number, unit: string): Goal => ({ text: `<= ${limit} ${unit}`, met: value <= limit });
export const atLeast = (value: number, limit: number, unit: string): Goal => ({ text: `>= ${limit} ${unit}`, met: value >= limit });

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The same measure of the in-run baseline, and what it is. */
  baseline?: { name: string; value: number };
  /** How ours compares with the baseline ("3x faster"); computed when omitted. */
  vs?: string;
  higherIsBetter?: boolean;
  goal?: Goal;
  note?: string;
}

export class Report {
  readonly figures: Figure[] = [];
  readonly notes: string[] = [];
  private readonly loadStart = loadavg();
  private readonly started = new Date();

  constructor(readonly bench: string, readonly params: Record<string, unknown> = {}) {}

  add(f: Figure): Figure {
    if (f.baseline && f.vs === undefined) f.vs = compare(f.value, f.baseline.value, f.higherIsBetter);
    this.figures.push(f);
    return f;
  }

  note(s: string): void {
    this.notes.push(s);
  }

  /** Prints the table (with the previous run's value where there is one) and writes the JSON record. */
  finish(out: (s: string) => void = (s) => process.stdout.write(s + "\n")): string {
    // Compared only with a run of the same sizes: a short run is no reference for a full one.
    const prior = readPrevious(this.bench);
    const previous = prior && JSON.stringify(prior.params ?? {}) === JSON.stringify(this.params) ? prior : undefined;
    const load = { start: this.loadStart.map((x) => +x.toFixed(2)), end: loadavg().map((x) => +x.toFixed(2)), cores: cpus().length };
    const num = (v: number | null) => (v === null || !Number.isFinite(v) ? "n/a" : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));
    const rows = this.figures.map((f) => {
      const prev = previous?.figures.find((p) => p.name === f.name);
      return [
        f.name,
        `${num(f.value)} ${f.unit}`,
        f.goal ? `${f.goal.met ? "met" : "NOT met"} (${f.goal.text})` : "",
        f.baseline ? `${num(f.baseline.value)} ${f.unit} ${f.baseline.name}` : "",
        f.vs ?? "",
        prev ? `${num(prev.value)}` : "",
      ];
    });
    const header = ["figure", "value", "goal", "in-run baseline", "vs baseline", "last run"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]) => r.map((c, i) => (i === 1 || i === 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
    out(`\n${this.bench}: ${Object.entries(this.params).map(([k, v]) => `${k}=${v}`).join(" ")}`);
    out(`load average ${load.start.join(" ")} at start, ${load.end.join(" ")} at end, on ${load.cores} cores (figures from a loaded machine are noisy; ratios are in-run)`);
    out(line(header));
    out(widths.map((w) => "-".repeat(w)).join("  "));
    for (const r of rows) out(line(r));
    for (const n of this.notes) out(`note: ${n}`);
    for (const f of this.figures) if (f.note) out(`note (${f.name}): ${f.note}`);
    const unmet = this.figures.filter((f) => f.goal && !f.goal.met);
    out(unmet.length === 0 ? "every goal met in this run" : `goals not met in this run: ${unmet.map((f) => f.name).join("; ")}`);
    const record = {
      bench: this.bench,
      started: this.started.toISOString(),
      finished: new Date().toISOString(),
      node: process.version,
      params: this.params,
      load,
      figures: this.figures,
      notes: this.notes,
    };
    mkdirSync(RESULTS_DIR, { recursive: true });
    const stamp = this.started.toISOString().replace(/[:.]/g, "-");
    const file = join(RESULTS_DIR, `${this.bench}-${stamp}.json`);
    writeFileSync(file, JSON.stringify(record, null, 2) + "\n");
    writeFileSync(join(RESULTS_DIR, `${this.bench}-latest.json`), JSON.stringify(record, null, 2) + "\n");
    out(`results: ${file}`);
    return file;
  }
}

function readPrevious(bench: string): { figures: Figure[]; params?: Record<string, unknown> } | undefined {
  const file = join(RESULTS_DIR, `${bench}-latest.json`);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as { figures: Figure[]; params?: Record<string, unknown> };
  } catch {
    return undefined;
  }
}
