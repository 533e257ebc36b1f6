import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

/**
 * bench/lib/report: how every benchmark prints and records its figures. The case: a
 * recall 150 times slower than its LIKE baseline printed as "0.0x"; it must say "150x slower".
 */
const dir = mkdtempSync(join(tmpdir(), "picortex-bench-report-"));
process.env.BENCH_RESULTS_DIR = dir;
const { Report, compare, atMost } = await import("../../bench/lib/report.js");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("bench report", () => {
  it("says how much slower or faster, never a bare ratio below 1", () => {
    expect(compare(15, 0.1)).toBe("150x slower");
    expect(compare(0.1, 15)).toBe("150x faster");
    expect(compare(2.5, 1)).toBe("2.50x slower");
    expect(compare(1, 1.001)).toBe("same");
    // Rates: higher is better.
    expect(compare(100, 1000, true)).toBe("10.0x slower");
    expect(compare(0, 1)).toBe("n/a");
  });

  it("prints each figure beside its goal and in-run baseline, and records them as JSON", () => {
    const r = new Report("unit-test", { n: 1 });
    r.add({ name: "recall, one common word, filter none: p50", value: 15, unit: "ms", goal: atMost(15, 5, "ms"), baseline: { name: "LIKE", value: 0.1 } });
    const lines: string[] = [];
    const file = r.finish((s) => lines.push(s));
    const row = lines.find((l) => l.startsWith("recall, one common word"))!;
    expect(row).toMatch(/15\.0 ms\s+NOT met \(<= 5 ms\)\s+0\.10 ms LIKE\s+150x slower/);
    expect(lines.join("\n")).not.toMatch(/0\.0x/);
    expect(lines.at(-2)).toBe("goals not met in this run: recall, one common word, filter none: p50");
    const json = JSON.parse(readFileSync(file, "utf8"));
    expect(json.figures[0]).toMatchObject({ value: 15, vs: "150x slower", goal: { met: false }, baseline: { name: "LIKE", value: 0.1 } });
    expect(readdirSync(dir).sort()).toEqual([file.split("/").at(-1), "unit-test-latest.json"].sort());
  });
});
