import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bundleDoctor, type CheckResult } from "../../../scripts/doctor.js";
import type { HostSession } from "./ssh.js";

/**
 * Runs the project's own `scripts/doctor.ts` on the host over ssh, the way a user runs
 * `npx tsx scripts/doctor.ts --ssh admin@host`: bundled into one file and piped to the
 * host's node on stdin, so nothing is left on the host.
 */
export async function runDoctorRemote(
  session: HostSession,
  workDir: string,
  args: string[],
): Promise<{ ok: boolean; checks: CheckResult[]; failed: CheckResult[]; exitCode: number | null }> {
  const bundle = join(workDir, "doctor.mjs");
  await bundleDoctor(bundle);
  const r = await session.exec(["node", "--input-type=module", "-", "--json", ...args], {
    stdin: readFileSync(bundle, "utf8"),
    timeoutMs: 900_000,
  });
  let parsed: { ok: boolean; checks: CheckResult[] };
  try {
    parsed = JSON.parse(r.stdout) as typeof parsed;
  } catch {
    throw new Error(`doctor printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { ...parsed, failed: parsed.checks.filter((c) => !c.ok), exitCode: r.code };
}

export function describeFailures(failed: CheckResult[]): string {
  return failed.map((c) => `${c.name}: ${c.detail}${c.hint ? ` (${c.hint})` : ""}`).join("\n");
}
