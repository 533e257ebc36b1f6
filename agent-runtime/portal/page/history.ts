/** The part of an xterm.js Terminal (browser or @xterm/headless) that history replay needs. */
export interface HistoryTerminal {
  rows: number;
  readonly buffer: { readonly active: { readonly cursorY: number } };
  write(data: string, callback?: () => void): void;
}

/**
 * Writes tmux's captured history, then scrolls exactly the lines still on screen up into
 * scrollback. tmux's redraw that follows clears the screen, so without the scroll the
 * newest history lines would be erased; with it nothing is lost and nothing repeated.
 */
export function writeHistory(term: HistoryTerminal, text: string): void {
  term.write(text.replace(/\r?\n/g, "\r\n"), () => {
    const above = term.buffer.active.cursorY;
    if (above > 0) term.write(`\x1b[${term.rows};1H` + "\n".repeat(above) + "\x1b[H");
  });
}
