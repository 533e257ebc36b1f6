/**
 * Turns what the Automation API throws (a CommandError whose message is the CLI's whole
 * stdout and stderr, with every failing local command's inline program in it, often
 * several times) into one line of cause and the next step (issue 21 item 9).
 */

/** Lines our own programs print (`picortex chat: …`, readiness) are the best cause; then the engine's `error:` lines. */
export function pulumiErrorCause(message: string): string {
  const lines = message.split(/\r?\n/).map((l) => l.trim());
  const ours = lines.find((l) => /^picortex chat: .*(failed|cannot reach|must be set)/.test(l)) ?? lines.find((l) => /did not answer after \d+ attempts|cannot resolve/.test(l));
  if (ours) return ours.replace(/^picortex chat: /, "");
  const errors = lines
    .filter((l) => /^error: /.test(l) && !/^error: update failed$|^error: preview failed$/.test(l))
    .map((l) => l.replace(/^error: /, ""))
    // An error line that quotes a program is noise: keep its head only.
    .map((l) => (l.length > 240 ? l.slice(0, 240) + "…" : l));
  if (errors.length > 0) return errors[0]!;
  const first = lines.find((l) => l.length > 0) ?? "unknown error";
  return first.length > 240 ? first.slice(0, 240) + "…" : first;
}

/** What to do next, for the causes we know. */
export function nextStep(cause: string): string | undefined {
  if (/cannot reach the runtime|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT/.test(cause)) return "is this machine on the tailnet, and is the workspace stack up? (pulumi stack output runtimeUrl, then curl <url>/healthz)";
  if (/HTTP 401/.test(cause)) return "the workspace stack's runtimeApiToken does not match the host's: re-run pulumi up on the workspace stack";
  if (/Required output '[^']+' does not exist/.test(cause)) return "the workspace stack has no such output yet: run pulumi up on it first";
  if (/no stack named|not found/i.test(cause)) return "check the stack name (pulumi stack ls)";
  if (/passphrase|decrypt/i.test(cause)) return "set PULUMI_CONFIG_PASSPHRASE to the backend's passphrase";
  return undefined;
}
