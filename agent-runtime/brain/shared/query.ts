/**
 * Turns what a person or agent typed into a safe FTS5 MATCH expression. Pure functions:
 * the rendered expression is always bound with `MATCH ?`, never spliced into SQL.
 *
 * - Trailing punctuation is stripped ("retry?" finds "retry").
 * - Every term is double-quoted, so FTS5 operators and specials (`-`, `:`, `(`, `*`,
 *   AND/OR/NOT/NEAR) are searched as text instead of parsed as syntax.
 * - Terms of three or more characters are prefix terms ("auth" finds "authentication").
 *   Shorter ones match exactly: `"i"*` or `"do"*` would expand to a large part of the
 *   vocabulary, costing ~50x on 100k entries (bench/brain) and matching nothing useful.
 * - Common English stopwords are left out when other terms remain: in the AND form they
 *   make a question ("how do I parse json?") match nothing, and in the OR form they make
 *   it match, and rank, nearly every entry.
 * - A balanced `"quoted phrase"` is searched as a phrase (words in that order, exact).
 * - Terms are AND-ed; the caller retries once with OR when that finds nothing.
 */
export type MatchMode = "and" | "or";

const TRAILING_PUNCTUATION = /[\p{P}\p{S}]+$/u;
const LEADING_PUNCTUATION = /^[\p{P}\p{S}]+/u;

/** The search terms in a query, punctuation-trimmed, empty ones dropped. */
export function queryTerms(query: string): string[] {
  return splitWords(query);
}

function splitWords(text: string): string[] {
  return text
    .split(/\s+/u)
    .map((t) => t.replace(TRAILING_PUNCTUATION, "").replace(LEADING_PUNCTUATION, ""))
    .map((t) => t.replace(/"/g, ""))
    .filter((t) => /[\p{L}\p{N}]/u.test(t))
    .slice(0, 32);
}

export const MIN_PREFIX_LENGTH = 3;

const STOPWORDS = new Set(
  ("a an and are as at be but by can do does for from had has have how i if in into is it its me my no not of on or our " +
    "should so than that the their then there these they this to was we were what when where which who why will with would you your").split(" "),
);

/** One term quoted for FTS5: a prefix term `"term"*`, or exact `"te"` when shorter than MIN_PREFIX_LENGTH. */
export function quoteTerm(term: string): string {
  const quoted = `"${term.replace(/"/g, '""')}"`;
  return [...term].length >= MIN_PREFIX_LENGTH ? `${quoted}*` : quoted;
}

/** A parsed query: loose words and `"quoted phrases"` (each a list of words). */
export interface ParsedQuery {
  terms: string[];
  phrases: string[][];
}

/** Splits out balanced double-quoted phrases; an unbalanced quote is just text. */
export function parseQuery(query: string): ParsedQuery {
  const phrases: string[][] = [];
  const rest = query.replace(/"([^"]*)"/gu, (_m, inner: string) => {
    const words = splitWords(inner);
    if (words.length > 0) phrases.push(words);
    return " ";
  });
  return { terms: splitWords(rest), phrases: phrases.slice(0, 8) };
}

/** A phrase for FTS5: its words in order, exact (no prefix), as one quoted string. */
export function quotePhrase(words: readonly string[]): string {
  return `"${words.join(" ").replace(/"/g, '""')}"`;
}

/** The MATCH expression for a query, or undefined when nothing searchable is left. */
export function buildMatchExpression(query: string, mode: MatchMode = "and"): string | undefined {
  const parsed = parseQuery(query);
  let terms = parsed.terms;
  const meaningful = terms.filter((t) => !STOPWORDS.has(t.toLowerCase()));
  if (meaningful.length > 0 || parsed.phrases.length > 0) terms = meaningful;
  const parts = [...parsed.phrases.map(quotePhrase), ...terms.map(quoteTerm)];
  if (parts.length === 0) return undefined;
  return parts.join(mode === "and" ? " AND " : " OR ");
}

/**
 * For a query of one term: the same search restricted to the heavily weighted columns,
 * whose matches are the entries BM25 ranks first. Undefined for longer queries (an entry
 * with every term in the light column can still rank first, and the intersection of
 * several terms is small enough to rank whole) and for a phrase: a phrase is checked
 * position by position over every entry holding its words, so a second pass costs as much
 * as the first, and phrase matches are few enough to rank whole (bench/brain, phrase class).
 */
export function strongMatch(query: string, columns: readonly string[]): string | undefined {
  const parsed = parseQuery(query);
  if (parsed.phrases.length > 0) return undefined;
  const meaningful = parsed.terms.filter((t) => !STOPWORDS.has(t.toLowerCase()));
  const terms = meaningful.length > 0 ? meaningful : parsed.terms;
  if (terms.length !== 1) return undefined;
  return `{${columns.join(" ")}} : ${quoteTerm(terms[0]!)}`;
}

/** FTS5 reports bad MATCH input with these messages; anything else is a real failure. */
export function isFtsSyntaxError(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /fts5: syntax error|malformed MATCH|unterminated string|no such column|unknown special query/i.test(message);
}
