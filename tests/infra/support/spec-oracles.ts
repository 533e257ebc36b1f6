/**
 * Oracles for the config validators, written from the providers' documented rules one
 * character at a time (no regular expressions), so a property test compares two
 * independent readings of the rule instead of a regex with a copy of itself. The
 * generators build valid values constructively and then apply one mutation, so about
 * half of the cases are accepted ones and the rest sit right at the edge.
 */
import fc from "fast-check";

const LOWER = "abcdefghijklmnopqrstuvwxyz";
const UPPER = LOWER.toUpperCase();
const DIGITS = "0123456789";

const isLower = (c: string) => c.length === 1 && c >= "a" && c <= "z";
const isUpper = (c: string) => c.length === 1 && c >= "A" && c <= "Z";
const isDigit = (c: string) => c.length === 1 && c >= "0" && c <= "9";
const isAlnum = (c: string) => isLower(c) || isUpper(c) || isDigit(c);

/** Tailscale: "tag:" then a name that starts with a letter; letters, digits, "-"; name ≤ 63. */
export function tagIsValid(s: string): boolean {
  if (!s.startsWith("tag:")) return false;
  const name = [...s.slice(4)];
  if (name.length < 1 || name.length > 63) return false;
  if (!isLower(name[0]!) && !isUpper(name[0]!)) return false;
  return name.every((c) => isAlnum(c) || c === "-");
}

/** A DNS label (RFC 1123, lowercase as Hetzner/MagicDNS show it): 1-63, [a-z0-9-], no "-" at either end. */
export function hostnameIsValid(s: string): boolean {
  const cs = [...s];
  if (cs.length < 1 || cs.length > 63) return false;
  if (cs[0] === "-" || cs[cs.length - 1] === "-") return false;
  return cs.every((c) => isLower(c) || isDigit(c) || c === "-");
}

/** Hetzner label name or value: ≤ 63, alphanumeric at both ends, "-", "_", "." inside. */
function labelPartIsValid(s: string): boolean {
  const cs = [...s];
  if (cs.length < 1 || cs.length > 63) return false;
  if (!isAlnum(cs[0]!) || !isAlnum(cs[cs.length - 1]!)) return false;
  return cs.every((c) => isAlnum(c) || c === "-" || c === "_" || c === ".");
}

/** Hetzner label key prefix: a DNS subdomain (lowercase, digits, ".", "-"), ≤ 253, alnum ends. */
function labelPrefixIsValid(s: string): boolean {
  const cs = [...s];
  if (cs.length < 1 || cs.length > 253) return false;
  const alnumLower = (c: string) => isLower(c) || isDigit(c);
  if (!alnumLower(cs[0]!) || !alnumLower(cs[cs.length - 1]!)) return false;
  return cs.every((c) => alnumLower(c) || c === "." || c === "-");
}

/** A whole label: [prefix/]name = value, with the hetzner.cloud prefix reserved. */
export function labelIsValid(key: string, value: string): boolean {
  const slash = key.indexOf("/");
  if (slash >= 0) {
    const prefix = key.slice(0, slash);
    if (prefix === "hetzner.cloud" || prefix.endsWith(".hetzner.cloud")) return false;
    if (!labelPrefixIsValid(prefix)) return false;
  }
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (!labelPartIsValid(name)) return false;
  return value === "" || labelPartIsValid(value);
}

const chars = (alphabet: string) => fc.constantFrom(...alphabet.split(""));
const word = (first: string, middle: string, last: string, max: number) =>
  fc.oneof(
    chars(first),
    fc.tuple(chars(first), fc.array(chars(middle), { maxLength: max - 2 }), chars(last)).map(([a, m, z]) => a + m.join("") + z),
  );

/** One edit at a random place: a character from a hostile set inserted, one removed, or the value stretched past its limit. */
function mutate(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const hostile = chars("-_.:/ AZaz09é\u0000\n");
  return fc.oneof(
    valid,
    fc.tuple(valid, fc.nat(), hostile).map(([s, i, c]) => s.slice(0, i % (s.length + 1)) + c + s.slice(i % (s.length + 1))),
    fc.tuple(valid, fc.nat()).map(([s, i]) => s.slice(0, i % (s.length + 1)) + s.slice((i % (s.length + 1)) + 1)),
    valid.map((s) => s + s.slice(-1).repeat(64)),
  );
}

export const tagCandidates = mutate(word(LOWER + UPPER, LOWER + UPPER + DIGITS + "-", LOWER + UPPER + DIGITS + "-", 63).map((n) => `tag:${n}`));
export const hostnameCandidates = mutate(word(LOWER + DIGITS, LOWER + DIGITS + "-", LOWER + DIGITS, 63));
const labelPart = word(LOWER + UPPER + DIGITS, LOWER + UPPER + DIGITS + "-_.", LOWER + UPPER + DIGITS, 63);
const labelKey = fc.oneof(
  labelPart,
  fc.tuple(fc.constantFrom("picortex", "example.com", "hetzner.cloud", "a.hetzner.cloud", "Upper.Case", "-bad"), labelPart).map(([p, n]) => `${p}/${n}`),
);
export const labelCandidates = fc.tuple(mutate(labelKey), fc.oneof(fc.constant(""), mutate(labelPart)));
