/**
 * The mobile extra-keys bar: keys a phone keyboard lacks. Buttons act on pointerdown
 * with preventDefault so the terminal keeps focus and the on-screen keyboard stays up.
 * Ctrl is sticky: it applies to the next key typed, then releases.
 */
export interface ExtraKeysHost {
  send(data: string): void;
  paste(text: string): void;
  applicationCursor(): boolean;
  focus(): void;
}

export interface ExtraKeys {
  /** Applies a pending sticky Ctrl to typed data; returns what to send. */
  transform(data: string): string;
}

export function ctrlOf(data: string): string {
  if (data.length !== 1) return data;
  const c = data.toUpperCase().charCodeAt(0);
  if (c >= 0x40 && c <= 0x5f) return String.fromCharCode(c - 0x40); // @ A-Z [ \ ] ^ _
  if (data === " ") return "\x00";
  if (data === "?") return "\x7f";
  return data;
}

export function mountExtraKeys(bar: HTMLElement, host: ExtraKeysHost): ExtraKeys {
  let ctrl = false;
  const arrow = (final: string) => () => host.send((host.applicationCursor() ? "\x1bO" : "\x1b[") + final);
  const keys: Array<[label: string, title: string, action: () => void]> = [
    ["Esc", "Escape", () => host.send("\x1b")],
    ["Tab", "Tab", () => host.send("\t")],
    ["Ctrl", "Sticky Ctrl: applies to the next key", () => setCtrl(!ctrl)],
    ["←", "Left", arrow("D")],
    ["↑", "Up", arrow("A")],
    ["↓", "Down", arrow("B")],
    ["→", "Right", arrow("C")],
    ["^C", "Interrupt (Ctrl-C)", () => host.send("\x03")],
    ["Paste", "Paste from the clipboard", () => void paste()],
  ];
  const ctrlButton = document.createElement("button");
  const setCtrl = (on: boolean) => {
    ctrl = on;
    ctrlButton.setAttribute("aria-pressed", String(on));
  };
  async function paste(): Promise<void> {
    let text: string | null = null;
    try {
      text = await navigator.clipboard.readText();
    } catch {
      // The async clipboard needs a secure context (HTTPS or localhost); over plain
      // tailnet HTTP fall back to a prompt the user can long-press-paste into.
      text = window.prompt("Paste text to send:");
    }
    if (text) host.paste(text);
    host.focus();
  }
  for (const [label, title, action] of keys) {
    const b = label === "Ctrl" ? ctrlButton : document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.title = title;
    b.setAttribute("aria-label", title);
    if (label === "Ctrl") b.setAttribute("aria-pressed", "false");
    b.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      action();
      if (label !== "Paste") host.focus();
    });
    bar.appendChild(b);
  }
  return {
    transform(data: string): string {
      if (!ctrl) return data;
      setCtrl(false);
      return ctrlOf(data);
    },
  };
}
