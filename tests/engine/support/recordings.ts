/**
 * Scenario side of "keep the doubles honest": compares the provider calls of the run
 * that just happened (the engine's PULUMI_DEBUG_GRPC log) with the committed recording
 * of the same scenario run against the REAL providers (tests/engine/recordings/<name>.jsonl),
 * field by field (harness/recording.ts).
 *
 * PICORTEX_ENGINE_RECORD=1 with real providers (PICORTEX_ENGINE_PROVIDERS_DIR) rewrites
 * the recording for the providers that were real in this run and keeps the others'.
 * Without it, every provider present in the recording is compared, double or real (a
 * real provider compared with its own recording checks that the scenario reproduces).
 */
import { existsSync, readFileSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { compareCalls, formatDifferences, formatRecording, keptLog, parseRecording, providerCalls, type KnownDifference, type NormaliseOptions } from "../harness/recording.js";
import { REPO_ROOT } from "../providers/versions.js";
import type { Fixture } from "./lane-fixture.js";
import { KNOWN_DIFFERENCES } from "../recordings/known-differences.js";

export const RECORDINGS_DIR = join(REPO_ROOT, "tests/engine/recordings");

export function normaliseOptions(f: Fixture, extra: Record<string, string> = {}): NormaliseOptions {
  return {
    values: {
      ...extra,
      [f.hz.token]: "<hcloud-token>",
      [f.ts.apiKey]: "<tailscale-api-key>",
      [f.hz.endpoint]: "<hcloud-endpoint>",
      [f.ts.baseUrl]: "<tailscale-base-url>",
      [f.lane.root]: "<lane>",
    },
  };
}

/** Where the lane's gRPC log ends now (bytes): marks a part of a scenario to leave out of its recording. */
export function grpcLogMark(f: Fixture): number {
  return existsSync(f.lane.grpcLogFile) ? statSync(f.lane.grpcLogFile).size : 0;
}

export function checkAgainstRecording(f: Fixture, name: string, secrets: string[], known: KnownDifference[] = KNOWN_DIFFERENCES, excluded: Array<[number, number]> = [], values: Record<string, string> = {}): void {
  const file = join(RECORDINGS_DIR, `${name}.jsonl`);
  const calls = providerCalls(keptLog(readFileSync(f.lane.grpcLogFile), excluded), normaliseOptions(f, values));
  expect(calls.length).toBeGreaterThan(0);
  const real = f.lane.plugins.filter((p) => p.kind === "real").map((p) => p.pkg as string);
  if (process.env.PICORTEX_ENGINE_RECORD === "1") {
    if (real.length === 0) throw new Error("PICORTEX_ENGINE_RECORD=1 records the REAL providers: set PICORTEX_ENGINE_PROVIDERS_DIR");
    const kept = existsSync(file) ? parseRecording(readFileSync(file, "utf8")).filter((c) => !real.includes(c.provider)) : [];
    const text = formatRecording([...kept, ...calls.filter((c) => real.includes(c.provider))].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)));
    for (const s of secrets) expect(text).not.toContain(s);
    mkdirSync(RECORDINGS_DIR, { recursive: true });
    writeFileSync(file, text);
    process.stderr.write(`engine-lane: recorded ${calls.filter((c) => real.includes(c.provider)).length} calls of ${real.join(", ")} in ${file}\n`);
    return;
  }
  const recorded = parseRecording(readFileSync(file, "utf8"));
  const providers = [...new Set(recorded.map((c) => c.provider))];
  expect(providers.length).toBeGreaterThan(0);
  // A real provider is compared with no tolerance but the inherent ones (what it answers
  // differently from run to run itself): its recording must reproduce.
  const { differences, tolerated } = compareCalls(recorded, calls, { providers, known, realProviders: real });
  process.stderr.write(
    `engine-lane: ${name}: ${recorded.filter((c) => providers.includes(c.provider)).length} recorded calls of ${providers.join(", ")} compared; ${differences.length} differences, ${tolerated.length} tolerated (recordings/known-differences.ts)\n`,
  );
  expect(differences, `answers differing from the real providers' (recordings/${name}.jsonl):\n${formatDifferences(differences)}`).toEqual([]);
}
