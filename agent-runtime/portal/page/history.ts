/** The part of an xterm.js Terminal (browser or @xterm/headless) that history replay needs. */
export interface HistoryTerminal {
  rows: number;
  readonly buffer: { readonly active: { readonly cursorY: number } };
  write(data: string | Uint8Array, callback?: () => void): void;
}

/**
 * Feeds a terminal from the portal stream: the HISTORY text first, then live OUTPUT.
 *
 * History is written, then exactly the lines still on screen are scrolled up into
 * scrollback, because tmux's redraw that follows clears the screen: without the scroll
 * the newest history lines would be erased, with it nothing is lost and nothing repeated.
 * The scroll needs the cursor row after the history is parsed, so live output that
 * arrives meanwhile waits in a queue and is written after it, in order.
 */
export class TerminalFeed {
  private queue: Array<[Uint8Array, () => void]> | undefined;

  constructor(private readonly term: HistoryTerminal) {}

  /** A new attach: drop anything queued from the previous one. */
  reset(): void {
    this.queue = undefined;
  }

  history(text: string): void {
    const queue: Array<[Uint8Array, () => void]> = [];
    this.queue = queue;
    this.term.write(text.replace(/\r?\n/g, "\r\n"), () => {
      if (this.queue !== queue) return; // superseded by a newer attach
      const above = this.term.buffer.active.cursorY;
      if (above > 0) this.term.write(`\x1b[${this.term.rows};1H` + "\n".repeat(above) + "\x1b[H");
      this.queue = undefined;
      for (const [data, done] of queue) this.term.write(data, done);
    });
  }

  output(data: Uint8Array, done: () => void): void {
    if (this.queue) this.queue.push([data, done]);
    else this.term.write(data, done);
  }
}
