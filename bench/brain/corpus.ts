import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

/**
 * Real English prose for the benchmark: Debian's package descriptions. Long descriptions
 * come from apt's Translation-en lists (present after `apt-get update -o Acquire::Languages=en`);
 * without them, the short descriptions from `apt-cache dumpavail` are used, and the bench says so.
 */
export interface Doc {
  name: string;
  short: string;
  long: string;
}

const LISTS = "/var/lib/apt/lists";

function parseStanzas(text: string, descField: RegExp): Doc[] {
  const docs: Doc[] = [];
  for (const stanza of text.split(/\n\n+/)) {
    const name = /^Package: (.+)$/m.exec(stanza)?.[1];
    const m = descField.exec(stanza);
    if (!name || !m) continue;
    const short = m[1]!.trim();
    const long = (m[2] ?? "")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && l !== ".")
      .join(" ");
    docs.push({ name, short, long });
  }
  return docs;
}

export function loadCorpus(): { docs: Doc[]; source: string } {
  const translations = existsSync(LISTS) ? readdirSync(LISTS).filter((f) => /_i18n_Translation-en(\.\w+)?$/.test(f)) : [];
  if (translations.length > 0) {
    const docs: Doc[] = [];
    for (const f of translations) {
      const r = spawnSync("/usr/lib/apt/apt-helper", ["cat-file", join(LISTS, f)], { maxBuffer: 1 << 30, encoding: "utf8" });
      if (r.status === 0) docs.push(...parseStanzas(r.stdout, /^Description-en: (.*)\n((?: .*\n?)*)/m));
    }
    if (docs.length > 1000) return { docs, source: `Debian long package descriptions (${translations.length} Translation-en lists)` };
  }
  const r = spawnSync("apt-cache", ["dumpavail"], { maxBuffer: 1 << 30, encoding: "utf8" });
  if (r.status !== 0 || !r.stdout) {
    throw new Error("bench/brain needs Debian package descriptions: run on Debian with `apt-get update` (add `-o Acquire::Languages=en` for long descriptions).");
  }
  return { docs: parseStanzas(r.stdout, /^Description: (.*)\n((?: .*\n?)*)/m), source: "Debian short package descriptions (apt-cache dumpavail; long descriptions not downloaded)" };
}
