import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildMatchExpression, isFtsSyntaxError, queryTerms, quoteTerm } from "../../agent-runtime/brain/shared/query.js";

// The sanitizer's output is run against a real FTS5 table: a rendering that looks right
// but that FTS5 rejects or misreads fails here.
describe("query sanitizer against a real FTS5 table", () => {
  const db = new Database(":memory:");
  beforeAll(() => {
    db.exec("CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'porter unicode61 remove_diacritics 2')");
    const ins = db.prepare("INSERT INTO t (rowid, body) VALUES (?, ?)");
    ins.run(1, "Retry with jitter cut 5xx errors in the sync client");
    ins.run(2, "Authentication tokens are hashed with sha256");
    ins.run(3, "We standardized on Zod for request validation");
    ins.run(4, "NOT a keyword: near-duplicate detection AND OR");
    ins.run(5, "100% of C++ builds use ccache; file_name_with_underscores");
    ins.run(6, "Indexing is done in batches");
  });
  afterAll(() => db.close());
  const match = (q: string, mode: "and" | "or" = "and") => {
    const expr = buildMatchExpression(q, mode);
    if (expr === undefined) return [];
    return (db.prepare("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid").all(expr) as Array<{ rowid: number }>).map((r) => r.rowid);
  };

  it("strips trailing punctuation so a question still matches", () => {
    expect(queryTerms("retry?")).toEqual(["retry"]);
    expect(match("retry?")).toEqual([1]);
    expect(match("jitter!!!")).toEqual([1]);
  });

  it("makes every term a prefix term", () => {
    expect(match("auth")).toEqual([2]);
    expect(match("valid zod")).toEqual([3]);
  });

  it("matches terms shorter than three characters exactly, not as prefixes", () => {
    expect(quoteTerm("in")).toBe('"in"');
    expect(match("in")).toEqual([1, 6]);
    expect(match("inde")).toEqual([6]);
  });

  it("leaves stopwords out when other terms remain, so a question neither misses nor matches everything", () => {
    expect(buildMatchExpression("how do I use zod?", "or")).toBe('"use"* OR "zod"*');
    expect(buildMatchExpression("how do I use zod?", "and")).toBe('"use"* AND "zod"*');
    expect(buildMatchExpression("the of", "or")).toBe('"the"* OR "of"');
    expect(match("how do I validate with zod?")).toEqual([3]);
  });

  it("ANDs the terms: each must appear, not the whole string as one substring", () => {
    // LIKE '%sync retry%' would find nothing: the words are apart and in the other order.
    expect(match("sync retry")).toEqual([1]);
    expect(match("sync zod")).toEqual([]);
  });

  it("OR mode matches any term (the fallback)", () => {
    expect(match("sync zod", "or")).toEqual([1, 3]);
    expect(match("zod jitter", "or")).toEqual([1, 3]);
  });

  it("searches FTS5 operators and specials as text instead of syntax", () => {
    for (const q of ['"unbalanced', "a:b", "(paren", "NOT", "near-duplicate", "AND OR", "col:*", "-minus", "^caret", "x) OR (y", "*"]) {
      expect(() => match(q)).not.toThrow();
    }
    expect(match("NOT")).toEqual([4]);
    expect(match("near-duplicate")).toEqual([4]);
  });

  it("does not treat % and _ as wildcards (the LIKE bug)", () => {
    expect(match("100%")).toEqual([5]);
    expect(match("%")).toEqual([]);
    expect(match("file_name")).toEqual([5]);
    expect(match("_")).toEqual([]);
  });

  it("renders nothing for a query with no searchable words", () => {
    expect(buildMatchExpression("  ?! ... ")).toBeUndefined();
    expect(buildMatchExpression("")).toBeUndefined();
  });

  it("quotes embedded double quotes safely", () => {
    expect(quoteTerm('a"b')).toBe('"a""b"*');
    expect(() => db.prepare("SELECT rowid FROM t WHERE t MATCH ?").all(quoteTerm('a"b'))).not.toThrow();
  });

  it("recognises FTS5 syntax errors and nothing else", () => {
    let err: unknown;
    try {
      db.prepare("SELECT rowid FROM t WHERE t MATCH ?").all('"unterminated');
    } catch (e) {
      err = e;
    }
    expect(err).toBeDefined();
    expect(isFtsSyntaxError(err)).toBe(true);
    expect(isFtsSyntaxError(new Error("database is locked"))).toBe(false);
  });
});
