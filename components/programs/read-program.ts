/**
 * The local programs the components run with `node -e` (@pulumi/command local.Command)
 * live beside this file as real CommonJS files, type-checked by tsc (`// @ts-check`,
 * allowJs). The command text is the file's text (trimmed), read once per name: equal
 * files give an equal command, so Pulumi sees no change unless a program changes.
 */
import { readFileSync } from "node:fs";

const cache = new Map<string, string>();

export function readProgram(name: "ssh-readiness.cjs" | "chat-api.cjs"): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(new URL(`./${name}`, import.meta.url), "utf8").trim();
    cache.set(name, text);
  }
  return text;
}
