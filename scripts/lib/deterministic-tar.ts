/**
 * A minimal POSIX ustar writer whose output depends only on the entries' names,
 * contents and executable bits: entries sorted by name, mtime 0, uid/gid 0, no user
 * or group names. That is what makes a release's content hash reproducible; GNU tar
 * can do the same with a long list of flags, but not identically across versions.
 */
import { createHash } from "node:crypto";

export interface TarEntry {
  /** Relative POSIX path, no leading `/`, no `.` or `..` segments. */
  path: string;
  data: Buffer;
  executable?: boolean;
}

export class TarPathError extends Error {
  constructor(path: string, why: string) {
    super(`Cannot put ${JSON.stringify(path)} in the release tarball: ${why}`);
    this.name = "TarPathError";
  }
}

const BLOCK = 512;

function assertSafePath(path: string): void {
  if (path === "" || path.startsWith("/")) throw new TarPathError(path, "paths must be relative");
  if (path.split("/").some((s) => s === "" || s === "." || s === ".."))
    throw new TarPathError(path, "empty, '.' or '..' segments are not allowed");
  if (Buffer.byteLength(path) !== path.length) throw new TarPathError(path, "only ASCII names are supported");
}

/** Splits a name into ustar's prefix (≤155) and name (≤100) fields. */
function splitName(path: string): { prefix: string; name: string } {
  if (path.length <= 100) return { prefix: "", name: path };
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== "/") continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (prefix.length <= 155 && name.length <= 100 && name.length > 0) return { prefix, name };
  }
  throw new TarPathError(path, "longer than ustar allows (100-character name, 155-character prefix)");
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function header(path: string, size: number, mode: number, type: "0" | "5"): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const { prefix, name } = splitName(path);
  h.write(name, 0, 100, "ascii");
  h.write(octal(mode, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii"); // uid
  h.write(octal(0, 8), 116, "ascii"); // gid
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(0, 12), 136, "ascii"); // mtime: fixed, so rebuilds hash the same
  h.write("        ", 148, "ascii"); // checksum placeholder
  h.write(type, 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  h.write(prefix, 345, 155, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + " ", 148, "ascii");
  return h;
}

/** Every directory that some entry lives in, so extraction never invents modes. */
function parentDirs(paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
  }
  return [...dirs];
}

export function buildTar(entries: TarEntry[]): Buffer {
  const seen = new Set<string>();
  for (const e of entries) {
    assertSafePath(e.path);
    if (seen.has(e.path)) throw new TarPathError(e.path, "duplicate entry");
    seen.add(e.path);
  }
  const dirs = parentDirs(entries.map((e) => e.path));
  for (const d of dirs) if (seen.has(d)) throw new TarPathError(d, "is both a file and a directory");
  type Item = { path: string; dir: boolean; entry?: TarEntry };
  const items: Item[] = [
    ...dirs.map((d) => ({ path: d, dir: true })),
    ...entries.map((e) => ({ path: e.path, dir: false, entry: e })),
  ];
  // Byte-wise order, independent of locale and of the order files were found in.
  items.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const chunks: Buffer[] = [];
  for (const item of items) {
    if (item.dir) {
      chunks.push(header(item.path + "/", 0, 0o755, "5"));
      continue;
    }
    const data = item.entry!.data;
    chunks.push(header(item.path, data.length, item.entry!.executable ? 0o755 : 0o644, "0"));
    chunks.push(data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad) chunks.push(Buffer.alloc(pad, 0));
  }
  chunks.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(chunks);
}

/** The release id: the first 16 hex digits of the uncompressed tar's SHA-256 (the host re-checks it). */
export const RELEASE_HASH_LENGTH = 16;
export function releaseHash(tar: Buffer): string {
  return createHash("sha256").update(tar).digest("hex").slice(0, RELEASE_HASH_LENGTH);
}
