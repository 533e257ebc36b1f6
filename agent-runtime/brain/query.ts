/**
 * Turns what a person or agent typed into a safe FTS5 MATCH expression. Pure functions:
 * the rendered expression is always bound with `MATCH ?`, never spliced into SQL.
 *
 * - Trailing punctuation is stripped ("retry?" finds "retry").
 * - Every term is double-quoted, so FTS5 operators and specials (`-`, `:`, `(`, `*`,
 *   AND/OR/NOT/NEAR) are searched as text instead of parsed as syntax.
 * - Every term is a prefix term ("auth" finds "authentication").
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

/** One term as a quoted FTS5 prefix term: `"term"*`. */
export function quoteTerm(term: string): string {
  return `"${term.replace(/"/g, '""')}"*`;
}

/** The MATCH expression for a query, or undefined when nothing searchable is left. */
export function buildMatchExpression(query: string, mode: MatchMode = "and"): string | undefined {
  const terms = queryTerms(query);
  if (terms.length === 0) return undefined;
  return terms.map(quoteTerm).join(mode === "and" ? " AND " : " OR ");
}

/** FTS5 reports bad MATCH input with these messages; anything else is a real failure. */
export function isFtsSyntaxError(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /fts5: syntax error|malformed MATCH|unterminated string|no such column|unknown special query/i.test(message);
}
