/**
 * Real text for the brain benchmark, from what is on this machine (no download): the items
 * of the Debian changelogs under /usr/share/doc (short notes on fixes, releases and bugs,
 * written by people, the closest public kin of an agent's memory), the prose in the
 * installed npm packages (JSDoc comments, Markdown paragraphs) and this repository's commit
 * messages. Some words are in a large share of entries ("fix", "new", "upstream", "the")
 * and most in a handful, with the phrase structure generated text lacks.
 *
 * Deterministic for a given machine: files are read in sorted order, blocks deduplicated
 * and ordered by a hash of their text (so sources interleave in time), and each entry's tag
 * and author picked by that hash. The description says how many blocks each source gave.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { join, resolve } from "node:path";
import type { BrainEntry } from "../../agent-runtime/brain/shared/entry.js";
import { AGENTS, TAGS, type Corpus, type CorpusOptions } from "./corpus.js";

const ROOT = resolve(import.meta.dirname, "../..");
const PROJECTS = ["github.com/acme/api", "github.com/acme/web", "github.com/acme/infra", "github.com/acme/ml"];
const KINDS = ["experiment", "decision", "insight", "note"] as const;

function walk(dir: string, out: string[], depth = 0): void {
  if (depth > 12) return;
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const name of names) {
    const p = join(dir, name);
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) walk(p, out, depth + 1);
    else if (st.size < 4_000_000 && /\.(d\.ts|ts|js|mjs|cjs|md)$/.test(name)) out.push(p);
  }
}

/** Prose only: comment markers, tags, code and markup removed; undefined when little text is left. */
function clean(block: string): string | undefined {
  const text = block
    .replace(/^\s*\*+ ?/gm, "")
    .replace(/@(example|see|link)[\s\S]*/g, "")
    .replace(/\{@link ([^}]*)\}/g, "$1")
    .replace(/```[\s\S]*?```/g, " ")
    .replace(/`([^`]*)`/g, "$1")
    .replace(/<[^>]+>/g, " ")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/@\w+/g, " ")
    .replace(/[#*_|>]+/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  const words = text.split(" ").filter((w) => /^[A-Za-z][A-Za-z'-]*[.,;:!?)]?$/.test(w)).length;
  return words >= 8 && words / text.split(" ").length > 0.6 ? text : undefined;
}

const sources: Record<string, number> = {};

/** Distinct prose blocks found on this machine, in a stable order. */
export function realBlocks(): string[] {
  const files: string[] = [];
  walk(join(ROOT, "node_modules"), files);
  const seen = new Set<string>();
  const blocks: string[] = [];
  const add = (raw: string) => {
    const t = clean(raw);
    if (t === undefined) return;
    const key = t.toLowerCase();
    if (seen.has(key)) return;
    seen.add(key);
    blocks.push(t);
  };
  for (const f of files) {
    let src: string;
    try {
      src = readFileSync(f, "utf8");
    } catch {
      continue;
    }
    if (f.endsWith(".md")) for (const para of src.split(/\n\s*\n/)) add(para);
    else for (const m of src.matchAll(/\/\*\*([\s\S]*?)\*\//g)) add(m[1]!);
  }
  sources.npm = blocks.length;
  // Debian changelog items: "  * text" or "    - text", continuation lines indented further.
  const docs = "/usr/share/doc";
  let changelogItems = 0;
  for (const pkg of (() => {
    try {
      return readdirSync(docs).sort();
    } catch {
      return [];
    }
  })()) {
    for (const name of ["changelog.Debian.gz", "changelog.gz"]) {
      let text: string;
      try {
        text = gunzipSync(readFileSync(join(docs, pkg, name))).toString("utf8");
      } catch {
        continue;
      }
      let item: string[] = [];
      const flush = () => {
        if (item.length > 0) {
          const before = blocks.length;
          add(item.join(" "));
          changelogItems += blocks.length - before;
        }
        item = [];
      };
      for (const line of text.split("\n")) {
        const m = /^\s{2,6}[*+-]\s+(.*)$/.exec(line);
        if (m) {
          flush();
          item.push(m[1]!);
        } else if (item.length > 0 && /^\s{4,}\S/.test(line)) item.push(line.trim());
        else flush();
      }
      flush();
    }
  }
  sources.changelog = changelogItems;
  try {
    const log = execFileSync("git", ["log", "--format=%B%x00"], { cwd: ROOT, encoding: "utf8", maxBuffer: 64 << 20 });
    const before = blocks.length;
    for (const msg of log.split("\0")) add(msg);
    sources.git = blocks.length - before;
  } catch {
    // Not a git checkout: the packages' text is enough.
  }
  return blocks;
}

const sentences = (t: string) => t.match(/[^.!?]+[.!?]+(\s|$)|[^.!?]+$/g)?.map((s) => s.trim()).filter(Boolean) ?? [t];

export function realCorpus(o: CorpusOptions): Corpus {
  let blocks = realBlocks();
  const found = blocks.length;
  // Too few: split the longest blocks by sentence pairs until there are enough.
  if (blocks.length < o.n) {
    const more: string[] = [];
    for (const b of blocks) {
      const s = sentences(b);
      if (s.length >= 4) for (let i = 0; i + 1 < s.length; i += 2) more.push(`${s[i]} ${s[i + 1]}`);
    }
    blocks = [...blocks, ...more.filter((b) => b.split(" ").length >= 8)];
  }
  // Ordered by a hash of the text, so sources (and split blocks) interleave in time.
  const key = (t: string) => createHash("sha256").update(t).digest("hex");
  blocks = blocks.map((t) => [key(t), t] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([, t]) => t).slice(0, o.n);
  const now = o.now ?? Date.UTC(2026, 11, 1);
  const ws = o.workspaceId ?? "bench";
  const entries: BrainEntry[] = blocks.map((text, i) => {
    const h = createHash("sha256").update(text).digest();
    const s = sentences(text);
    // Within the entry limits (title 500, text 20,000 characters), as `brain record` would take them.
    const title = s[0]!.split(" ").slice(0, 14).join(" ").replace(/[.!?]$/, "").slice(0, 200);
    const conclusion = (s.length > 1 ? s[s.length - 1]! : "").slice(0, 2000);
    const rest = s[0]!.split(" ").slice(14).join(" ");
    const summary = [rest, ...(s.length > 2 ? s.slice(1, -1) : [])].filter(Boolean).join(" ").slice(0, 8000);
    const t = now - (blocks.length - i) * 60_000;
    const tags = [TAGS[h[0]! % TAGS.length]!];
    if (h[1]! < 77) tags.push(TAGS[h[2]! % TAGS.length]!);
    return {
      entryId: `e${i}`,
      workspaceId: ws,
      projectId: PROJECTS[i % PROJECTS.length]!,
      agent: AGENTS[h[3]! % AGENTS.length]!,
      kind: KINDS[i % 4]!,
      title,
      summary,
      conclusion,
      tags: [...new Set(tags)],
      refs: [],
      confidence: null,
      status: "active",
      supersededBy: null,
      createdAt: t,
      updatedAt: t,
      version: `${String(t).padStart(15, "0")}-000000-bench`,
    };
  });
  return {
    entries,
    vocabulary: [],
    description: `real text: ${entries.length} entries from ${found} distinct prose blocks on this machine (${sources.changelog ?? 0} Debian changelog items, ${sources.npm ?? 0} JSDoc/Markdown blocks in node_modules, ${sources.git ?? 0} git commit messages${found < o.n ? "; long blocks split by sentence pairs to reach the count" : ""})`,
  };
}
