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
 * - Terms are AND-ed; the caller retries once with OR when that finds nothing.
 */
export type MatchMode = "and" | "or";

const TRAILING_PUNCTUATION = /[\p{P}\p{S}]+$/u;
const LEADING_PUNCTUATION = /^[\p{P}\p{S}]+/u;

/** The search terms in a query, punctuation-trimmed, empty ones dropped. */
export function queryTerms(query: string): string[] {
  return query
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

/** The MATCH expression for a query, or undefined when nothing searchable is left. */
export function buildMatchExpression(query: string, mode: MatchMode = "and"): string | undefined {
  let terms = queryTerms(query);
  const meaningful = terms.filter((t) => !STOPWORDS.has(t.toLowerCase()));
  if (meaningful.length > 0) terms = meaningful;
  if (terms.length === 0) return undefined;
  return terms.map(quoteTerm).join(mode === "and" ? " AND " : " OR ");
}

/** FTS5 reports bad MATCH input with these messages; anything else is a real failure. */
export function isFtsSyntaxError(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /fts5: syntax error|malformed MATCH|unterminated string|no such column|unknown special query/i.test(message);
}
