/**
 * Test files that install the rendered sudoers drop-in run in parallel (the host phase
 * runs two files at once). sudo reads every drop-in as one policy, so two copies of the
 * same rendered file define each Cmnd_Alias twice and sudo then refuses EVERY rule
 * ("Alias already defined"): the files would fail each other at random. Each installed
 * copy gets its own alias names; nothing else in the text changes, and the exact
 * rendered bytes stay covered by the committed expected files and `visudo -cf`.
 */
export function withPrivateAliases(sudoersText: string, tag: string): string {
  const suffix = tag.toUpperCase().replace(/[^A-Z0-9]/g, "_");
  if (!suffix) throw new Error("an alias tag needs at least one letter or digit");
  return sudoersText.replace(/\bPICORTEX_[A-Z0-9_]+\b/g, (name) => `${name}_${suffix}`);
}
