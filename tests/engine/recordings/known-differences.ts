/**
 * Differences between the provider doubles' answers and the recorded real providers'
 * that the lane tolerates, each with its reason. Anything not listed here fails the
 * comparison (support/recordings.ts). Keep this list short: a difference the engine acts
 * on (replaces, deleteBeforeReplace, diffs, a property a later diff reads) is a bug in
 * a double, not an entry here.
 */
import type { KnownDifference } from "../harness/recording.js";

export const KNOWN_DIFFERENCES: KnownDifference[] = [
  {
    key: /^(Create|Read|Update) urn:.*(hcloud|tailscale):index\//,
    path: /^response\.properties\.(__meta|__pulumi_raw_state_delta)$/,
    why: "the Terraform bridge's own opaque state (timeouts, the raw-state delta of its state upgrade); only the bridge reads it back, never the engine or the program",
  },
];
