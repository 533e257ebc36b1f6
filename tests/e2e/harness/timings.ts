/**
 * Figures for the end of the run (image restore, boot to ssh, cloud-init done, deploy,
 * first turn). Printed, never asserted: timing assertions flake on a shared machine.
 */
export class Timings {
  private readonly figures = new Map<string, number>();
  private readonly notes: string[] = [];

  record(name: string, seconds: number): void {
    this.figures.set(name, seconds);
  }

  async time<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      this.record(name, (Date.now() - t0) / 1000);
    }
  }

  note(line: string): void {
    this.notes.push(line);
  }

  report(title: string): string {
    const width = Math.max(...[...this.figures.keys()].map((k) => k.length), 10);
    const lines = [`── ${title} ──`];
    for (const [k, v] of this.figures) lines.push(`  ${k.padEnd(width)}  ${v.toFixed(1).padStart(7)} s`);
    for (const n of this.notes) lines.push(`  ${n}`);
    return lines.join("\n");
  }
}
