/**
 * Progress output for the long steps of the end-to-end run (image build, boot, deploy).
 * Lines go to stderr with the seconds since the run started, so a slow CI log shows
 * where the time went without any timing assertion.
 */
const started = Date.now();

export function progress(step: string, message: string): void {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[e2e ${t}s] ${step}: ${message}\n`);
}
