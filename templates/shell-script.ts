/**
 * Host shell scripts ship without their comments: user_data is limited (Hetzner, 32 KiB)
 * and the documented source stays under templates/host/. Only full-line comments (not
 * the shebang) and blank lines go. The scripts this is used on have no heredoc, and no
 * line of a multi-line quoted string (the release helper's `node -e '…'` programs) starts
 * with `#`, so no line of data is touched; the tests run the stripped text itself.
 */
export function stripShellComments(script: string, source: string): string {
  const [shebang, ...rest] = script.split("\n");
  if (!shebang?.startsWith("#!")) throw new Error(`${source}: a host script must start with a shebang`);
  const kept = rest.filter((line) => line.trim() !== "" && !/^\s*#/.test(line));
  return [shebang, `# From ${source}, comments stripped: read them there.`, ...kept, ""].join("\n");
}
