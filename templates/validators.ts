/**
 * Pure validators shared by the host renderer, the components and the stack config.
 * Each returns an actionable message (or null when the value is fine) so callers can
 * put it straight into a zod refinement or a thrown error.
 */
import { isIPv4, isIPv6 } from "node:net";

// The Linux-name rule is part of the host contract: agent-runtime/host/contract.ts (linuxNameProblem).

/** Tailscale ACL tags: `tag:` + letters, digits and dashes, starting with a letter. */
export const TAILSCALE_TAG_PATTERN = /^tag:[a-zA-Z](?:[a-zA-Z0-9-]{0,62})$/;

export function tailscaleTagProblem(tag: string): string | null {
  if (!TAILSCALE_TAG_PATTERN.test(tag)) {
    return `tailscale tag "${tag.slice(0, 70)}" is invalid: write it as "tag:<name>" where <name> starts with a letter and uses letters, digits and "-" (e.g. "tag:picortex"); the tag must also be listed in your tailnet policy's tagOwners`;
  }
  return null;
}

/** A DNS label: the tailnet (MagicDNS) host name and the server name. */
export const HOSTNAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function hostnameProblem(name: string): string | null {
  if (!HOSTNAME_PATTERN.test(name)) {
    return `host name "${name.slice(0, 70)}" is invalid: use 1-63 lowercase letters, digits and "-", not starting or ending with "-" (it becomes <name>.<tailnet>.ts.net)`;
  }
  return null;
}

const SSH_KEY_TYPES = [
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
] as const;

/**
 * An OpenSSH public key line: `<type> <base64> [comment]`. The base64 blob must decode
 * and start with the same type string (the SSH wire format), which catches truncated
 * or mixed-up pastes and private keys.
 */
export function sshPublicKeyProblem(key: string): string | null {
  const hint = 'paste one line from your ~/.ssh/id_ed25519.pub (it starts with "ssh-ed25519 AAAA")';
  if (/PRIVATE KEY/.test(key)) return `that is a PRIVATE key: never put it in stack config; ${hint}`;
  if (/[\r\n]/.test(key.trim())) return `the SSH public key must be a single line; ${hint}`;
  const parts = key.trim().split(/\s+/);
  const [type, blob] = parts;
  if (!type || !blob) return `the SSH public key is incomplete; ${hint}`;
  if (!(SSH_KEY_TYPES as readonly string[]).includes(type)) {
    return `SSH key type "${type.slice(0, 40)}" is not supported: use one of ${SSH_KEY_TYPES.join(", ")}; ${hint}`;
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return `the SSH public key's base64 part is malformed; ${hint}`;
  const raw = Buffer.from(blob, "base64");
  if (raw.length < 4) return `the SSH public key's base64 part is too short; ${hint}`;
  const len = raw.readUInt32BE(0);
  const embedded = raw.subarray(4, 4 + len).toString("latin1");
  if (embedded !== type) return `the SSH public key says "${type}" but its data is "${embedded.slice(0, 40)}": the line is damaged; ${hint}`;
  if (type === "ssh-rsa" && raw.length < 260) return `RSA keys shorter than 2048 bits are refused; use ssh-ed25519`;
  return null;
}

/** Parse an IPv6 address (node-validated) into a 128-bit integer. */
function ipv6ToBigInt(address: string): bigint {
  let text = address;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const o = v4[1].split(".").map(Number);
    text = text.slice(0, -v4[1].length) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const headParts = head ? head.split(":") : [];
  const tailParts = tail ? tail.split(":") : [];
  const missing = 8 - headParts.length - tailParts.length;
  const all = tail === undefined ? headParts : [...headParts, ...Array<string>(missing).fill("0"), ...tailParts];
  return all.reduce((acc, h) => (acc << 16n) | BigInt(parseInt(h, 16)), 0n);
}

function ipv4ToBigInt(address: string): bigint {
  return address.split(".").reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}

export interface ParsedCidr {
  family: 4 | 6;
  address: string;
  prefix: number;
}

/**
 * A CIDR block as Hetzner's firewall API accepts it: an address, a prefix length and no
 * host bits set (Hetzner rejects `10.0.0.1/24`; we say which network was meant).
 */
export function cidrProblem(cidr: string): string | null {
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(cidr);
  if (!m) return `"${cidr.slice(0, 60)}" is not a CIDR block: write an address and a prefix length, e.g. "203.0.113.7/32" or "2001:db8::/48"`;
  const address = m[1]!;
  const prefix = Number(m[2]);
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : 0;
  if (family === 0) return `"${address.slice(0, 60)}" in "${cidr.slice(0, 60)}" is not an IPv4 or IPv6 address`;
  const bits = family === 4 ? 32 : 128;
  if (prefix > bits) return `prefix /${prefix} is too long for IPv${family} in "${cidr}" (at most /${bits})`;
  const value = family === 4 ? ipv4ToBigInt(address) : ipv6ToBigInt(address);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((value & hostMask) !== 0n) {
    const network = value & ~hostMask & ((1n << BigInt(bits)) - 1n);
    return `"${cidr}" has host bits set: Hetzner needs the network address, i.e. "${formatAddress(network, family)}/${prefix}"`;
  }
  return null;
}

function formatAddress(value: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join(".");
  const hextets = [];
  for (let i = 7; i >= 0; i--) hextets.push(((value >> BigInt(i * 16)) & 0xffffn).toString(16));
  return hextets.join(":").replace(/(^|:)0(:0)+(:|$)/, "::").replace(/:{3,}/, "::");
}

/** True for a block that covers the whole internet of its family (0.0.0.0/0, ::/0). */
export function isWholeInternet(cidr: string): boolean {
  const m = /^([^/]+)\/(\d+)$/.exec(cidr);
  return m !== null && m[2] === "0";
}

/**
 * Hetzner labels: key ≤ 63 characters (optionally with a DNS-style prefix), value ≤ 63
 * characters, both alphanumeric at the ends with `-`, `_`, `.` inside; the
 * `hetzner.cloud/` prefix is reserved.
 */
const LABEL_NAME = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?)$/;
const LABEL_PREFIX = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/;

export function labelProblem(key: string, value: string): string | null {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix === "hetzner.cloud" || prefix.endsWith(".hetzner.cloud"))) {
    return `label "${key}": the "hetzner.cloud/" prefix is reserved by Hetzner; use e.g. "picortex/${name}"`;
  }
  if (prefix !== undefined && !LABEL_PREFIX.test(prefix)) return `label key prefix "${prefix}" must be a DNS subdomain (lowercase, digits, ".", "-")`;
  if (!LABEL_NAME.test(name)) {
    return `label key "${key}" is invalid: at most 63 characters, letters/digits at both ends, "-", "_" or "." inside`;
  }
  if (value !== "" && !LABEL_NAME.test(value)) {
    return `label "${key}" has invalid value "${value.slice(0, 70)}": at most 63 characters, letters/digits at both ends, "-", "_" or "." inside (or empty)`;
  }
  return null;
}

/** An absolute path we are willing to embed in sudoers regexes and unit files. */
export const SAFE_ABSOLUTE_PATH = /^(?:\/[a-z0-9_-]+)+$/;

export function safePathProblem(path: string): string | null {
  if (!SAFE_ABSOLUTE_PATH.test(path)) {
    return `"${path.slice(0, 80)}" must be an absolute path of lowercase letters, digits, "_" and "-" segments (no "..", dots, spaces or trailing "/")`;
  }
  return null;
}
