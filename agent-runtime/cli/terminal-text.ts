/**
 * Other people's text on the operator's terminal: group titles, names, usernames, platform
 * chat ids, messages and replies reach `picortex bridges` and `picortex chat` from Telegram
 * users, webhook providers and the model. A terminal acts on control characters (ESC and the
 * C1 CSI U+009B / OSC U+009D start sequences that clear the screen, set the title or write
 * the clipboard) and reorders or hides text around direction and invisible characters, so
 * every such field goes through one of these before it is printed.
 */

/**
 * What a terminal acts on instead of showing: C0 controls, DEL, C1 controls (U+0080–009F),
 * the Arabic letter mark (U+061C), zero-width and direction marks (U+200B–200F), line and
 * paragraph separators and direction embeddings/overrides (U+2028–202E), direction isolates
 * (U+2066–2069) and the byte order mark / zero-width no-break space (U+FEFF).
 */
const UNSAFE_IN_LINE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;
/** The same, but a newline and a tab stay (a multi-line reply keeps its layout). */
const UNSAFE_IN_TEXT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;
/** Outside ASCII's controls (which JSON.stringify escapes itself): escaped as \uXXXX in JSON. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;

/** One field on one line: every control, direction and invisible character becomes a space. */
export function terminalLine(s: string): string {
  return s.replace(UNSAFE_IN_LINE, " ");
}

/**
 * A message or reply body: newlines and tabs stay, CRLF becomes a newline, a lone CR (which
 * would overwrite the line already shown) is dropped, anything else unsafe becomes a space.
 * Works chunk by chunk on a stream (a CRLF split across chunks still gives one newline).
 */
export function terminalText(s: string): string {
  return s.replace(/\r/g, "").replace(UNSAFE_IN_TEXT, " ");
}

/**
 * JSON for a terminal: the same document (equal when parsed), with C1 controls, DEL and
 * the direction and invisible characters written as \uXXXX escapes instead of raw.
 */
export function terminalJson(value: unknown): string {
  return (JSON.stringify(value) ?? "null").replace(UNSAFE_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
