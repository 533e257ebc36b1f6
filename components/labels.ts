/**
 * Hetzner labels for everything picortex creates: pure, validated, and stable (a label
 * change is an in-place update, but keeping them stable keeps previews quiet).
 */
import { labelProblem } from "../templates/validators.js";

export const MANAGED_BY_LABEL = { "managed-by": "picortex" } as const;

export class InvalidLabelError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid Hetzner labels:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "InvalidLabelError";
  }
}

/** Merge the standard labels with the caller's and validate every pair (throws InvalidLabelError). */
export function buildLabels(role: string, extra: Record<string, string> = {}): Record<string, string> {
  const labels: Record<string, string> = { ...MANAGED_BY_LABEL, "picortex/role": role, ...extra };
  const problems = Object.entries(labels)
    .map(([k, v]) => labelProblem(k, v))
    .filter((p): p is string => p !== null);
  if (problems.length > 0) throw new InvalidLabelError(problems);
  // Sorted keys: stable order in state and previews.
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
}
