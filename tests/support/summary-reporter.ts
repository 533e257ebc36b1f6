/**
 * Prints one plain closing line, `N passed, N failed, N skipped`, after vitest's own
 * summary, so CI logs and tools that read a run's last line agree with vitest's count.
 */
import type { Reporter, RunnerTask, RunnerTestFile } from "vitest";

function count(tasks: RunnerTask[], totals: { passed: number; failed: number; skipped: number }): void {
  for (const t of tasks) {
    if (t.type === "suite") {
      count(t.tasks, totals);
      continue;
    }
    const state = t.result?.state;
    if (state === "pass") totals.passed++;
    else if (state === "fail") totals.failed++;
    else totals.skipped++;
  }
}

export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = [], errors: unknown[] = []): void {
    const totals = { passed: 0, failed: 0, skipped: 0 };
    for (const f of files) {
      // A file that failed to load (syntax error, failing beforeAll) counts as a failure.
      if (f.result?.state === "fail" && f.tasks.length === 0) totals.failed++;
      count(f.tasks, totals);
    }
    totals.failed += errors.length;
    process.stdout.write(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`);
  }
}
