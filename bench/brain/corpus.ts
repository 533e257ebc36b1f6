/**
 * Realistic agent-memory text for the brain benchmark and the relevance test, generated
 * (deterministic, no download): words drawn from a Zipf distribution over a vocabulary of
 * common English words, engineering words, people's first names and a long tail of rarer
 * words, as real notes are. A few words are therefore in a large share of entries
 * ("the project", "meeting", a first name) and most are in a handful, which is exactly
 * what makes recall of common words the hard case.
 */
import type { BrainEntry } from "../../agent-runtime/brain/shared/entry.js";

/** Mulberry32: a small seeded PRNG, so every run builds the same corpus. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const COMMON = (
  "the of and to a in is that for it with as was on be at by this are from or have an not but we they which one you were all " +
  "their there been has will more when can if no out so what up about into than them some could time only new would other " +
  "then these may its also after two first use how our work well way even because any most us over should need make"
).split(" ");

/** Mid-frequency engineering and office words: the "common" query words live here. */
export const TOPICAL = (
  "project meeting team release deploy deployment server client database query index cache latency error errors bug fix " +
  "test tests build pipeline config configuration service services api endpoint request response timeout retry user users " +
  "customer data model training dataset experiment result results metric metrics dashboard alert incident outage review " +
  "design decision plan roadmap sprint ticket issue branch merge commit migration schema table column backup restore " +
  "memory cpu disk network latency throughput queue worker job scheduler cron token auth authentication authorization " +
  "password secret key certificate proxy gateway load balancer cluster node pod container image registry version upgrade " +
  "rollback feature flag launch customer support docs documentation note notes summary insight conclusion benchmark " +
  "performance regression profile trace logging log logs monitor monitoring storage bucket region zone host hosts terminal " +
  "browser page mobile phone session cookie login signup billing invoice payment email notification webhook event events " +
  "stream batch import export report reports budget cost estimate deadline owner handoff onboarding interview hiring"
).split(" ");

export const NAMES = (
  "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert sybil trent victor walter " +
  "yusuf zara amir bea chen dmitri elena farah goran hana igor jonas kenji lena marco nadia oscar priya quinn rosa " +
  "sanjay tomas uma vera wei xenia yara zoltan"
).split(" ");

const SYLLABLES = "ka lo mi ran te su vo pel dar qui zen bro fla gri mon tor ves yul hex nor pri sta lin cor".split(" ");

/** A long tail of made-up but pronounceable words (product names, jargon, identifiers). */
function tailWords(n: number, r: () => number): string[] {
  const out = new Set<string>();
  while (out.size < n) {
    const k = 2 + Math.floor(r() * 3);
    let w = "";
    for (let i = 0; i < k; i++) w += SYLLABLES[Math.floor(r() * SYLLABLES.length)];
    out.add(w);
  }
  return [...out];
}

export interface CorpusOptions {
  n: number;
  seed?: number;
  workspaceId?: string;
  /** Newest entry's updatedAt; entries go back one minute each. */
  now?: number;
}

export const TAGS = "infra api web ml ops billing mobile security data oncall design hiring perf release docs".split(" ");
export const AGENTS = ["claude", "codex", "alice", "bob", "ci-bot", "planner", "reviewer", "scout"];
const PROJECTS = ["github.com/acme/api", "github.com/acme/web", "github.com/acme/infra", "github.com/acme/ml"];
const KINDS = ["experiment", "decision", "insight", "note"] as const;

export interface Corpus {
  entries: BrainEntry[];
  vocabulary: string[];
  description: string;
}

/**
 * Builds n entries. The vocabulary is ranked common words first, then topical words and
 * names interleaved, then the tail; a word's probability falls as 1/rank^1.05 (Zipf).
 */
export function generateCorpus(o: CorpusOptions): Corpus {
  const r = rng(o.seed ?? 42);
  const tail = tailWords(40_000, r);
  const vocab: string[] = [...COMMON];
  const mid = [...TOPICAL, ...NAMES];
  // Shuffle the middle so topical words and names get a spread of frequencies.
  for (let i = mid.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [mid[i], mid[j]] = [mid[j]!, mid[i]!];
  }
  vocab.push(...mid, ...tail);
  const weights = vocab.map((_, i) => 1 / Math.pow(i + 1, 1.05));
  const cdf: number[] = [];
  let acc = 0;
  for (const w of weights) cdf.push((acc += w));
  const word = (): string => {
    const x = r() * acc;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (cdf[m]! < x) lo = m + 1;
      else hi = m;
    }
    return vocab[lo]!;
  };
  const sentence = (min: number, max: number): string => {
    const k = min + Math.floor(r() * (max - min + 1));
    const ws: string[] = [];
    for (let i = 0; i < k; i++) ws.push(word());
    const s = ws.join(" ");
    return s.charAt(0).toUpperCase() + s.slice(1) + ".";
  };
  const now = o.now ?? Date.UTC(2026, 11, 1);
  const ws = o.workspaceId ?? "bench";
  const entries: BrainEntry[] = [];
  for (let i = 0; i < o.n; i++) {
    const t = now - (o.n - i) * 60_000;
    const paragraphs = 1 + Math.floor(r() * 4);
    const summary: string[] = [];
    for (let p = 0; p < paragraphs; p++) summary.push(sentence(8, 30));
    const tags = [TAGS[Math.floor(r() * TAGS.length)]!];
    if (r() < 0.3) tags.push(TAGS[Math.floor(r() * TAGS.length)]!);
    entries.push({
      entryId: `e${i}`,
      workspaceId: ws,
      projectId: PROJECTS[i % PROJECTS.length]!,
      agent: AGENTS[Math.floor(r() * AGENTS.length)]!,
      kind: KINDS[i % 4]!,
      title: sentence(4, 10).slice(0, -1),
      summary: summary.join(" "),
      conclusion: sentence(6, 16),
      tags: [...new Set(tags)],
      refs: [],
      confidence: null,
      status: "active",
      supersededBy: null,
      createdAt: t,
      updatedAt: t,
      version: `${String(t).padStart(15, "0")}-000000-bench`,
    });
  }
  return {
    entries,
    vocabulary: vocab,
    description: `generated text: Zipf(1.05) over ${COMMON.length} common words, ${TOPICAL.length} engineering words, ${NAMES.length} first names and ${tail.length} tail words (seed ${o.seed ?? 42})`,
  };
}
