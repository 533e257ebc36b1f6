/**
 * The portal session's command runs under a small sh wrapper that records how it ended.
 *
 * tmux 3.3a (Debian 12) loses a command's exit status now and then: when the pane's pty
 * reports EOF before tmux reaps the child, the pane is kept dead with no
 * `#{pane_dead_status}` and no "Pane is dead" line (measured: 1 in 8 to 1 in 30 creations
 * of a command that exits at once). The page would then never learn the command exited.
 * The wrapper, still alive after the command ends, sets a pane option with the status and
 * prints one line; both land before the pane dies, so neither can be lost.
 *
 * The same loss keeps a CLEAN exit's pane dead (remain-on-exit `failed` cannot tell status
 * 0 from no status; measured 3 in 25 exits of an interactive shell with a client attached),
 * so the session would never end and the next tab would attach to the corpse. After status 0
 * the wrapper kills its own pane itself, which ends the session whatever tmux recorded.
 *
 * Pure, and free of Node imports: the unit renderer and the browser page use it too.
 */

/** Pane user option holding the wrapped command's exit status. */
export const EXIT_STATUS_OPTION = "@pcx_status";

/** The line the wrapper prints after the command ends (the page looks for it). */
export const EXIT_LINE = "[picortex] exited, status";

/** The text the page looks for in the terminal's last screen: ours, or tmux's own. */
export const EXITED_TEXT = new RegExp(`Pane is dead|${EXIT_LINE.replace(/[[\]]/g, "\\$&")}`);

// $1 is the tmux binary (the pane inherits TMUX, so it reaches this very server); the
// rest is the command. No `%`, backslash or single quote: it is also a systemd argument;
// terse because it is in user_data, near its budget.
const SCRIPT = `t=$1;shift;"$@";s=$?;"$t" set -p -t "$TMUX_PANE" ${EXIT_STATUS_OPTION} $s 2>/dev/null;echo "${EXIT_LINE} $s";[ $s = 0 ]&&"$t" kill-pane -t "$TMUX_PANE";exit $s`;

/** argv for the pane: the command under the wrapper. */
export function wrapSessionCommand(tmuxPath: string, command: readonly string[]): string[] {
  if (command.length === 0) throw new Error("the portal session command is empty");
  return ["/bin/sh", "-c", SCRIPT, "picortex-session", tmuxPath, ...command];
}

/** One argument for a systemd Exec line: single-quoted, `$` doubled (systemd would expand it). */
export function systemdArgument(arg: string): string {
  if (/['\\%\n]/.test(arg)) throw new Error(`cannot quote ${JSON.stringify(arg)} for a systemd Exec line`);
  return `'${arg.replace(/\$/g, "$$$$")}'`;
}
