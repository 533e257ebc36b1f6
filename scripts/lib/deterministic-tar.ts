/**
 * Release tarballs whose bytes depend only on the entries' names, contents and executable
 * bits: entries sorted by name, parent directories listed, mtime 0, uid/gid 0, no user or
 * group names (written by the one ustar writer, agent-runtime/host/ustar.ts). That is what
 * makes a release's content hash reproducible; GNU tar can do the same with a long list
 * of flags, but not identically across versions.
 */
import { createHash } from "node:crypto";
import { assertSafeTarPath, TarPathError, writeUstar, type UstarEntry } from "../../agent-runtime/host/ustar.js";

export interface TarEntry {
  /** Relative POSIX path, no leading `/`, no `.` or `..` segments. */
  path: string;
  data: Buffer;
  executable?: boolean;
}

export { TarPathError };

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
    assertSafeTarPath(e.path);
    if (seen.has(e.path)) throw new TarPathError(e.path, "duplicate entry");
    seen.add(e.path);
  }
  const dirs = parentDirs(entries.map((e) => e.path));
  for (const d of dirs) if (seen.has(d)) throw new TarPathError(d, "is both a file and a directory");
  const items: UstarEntry[] = [
    ...dirs.map((d) => ({ path: d, type: "dir" as const, mode: 0o755 })),
    ...entries.map((e) => ({ path: e.path, type: "file" as const, mode: e.executable ? 0o755 : 0o644, data: e.data })),
  ];
  // Byte-wise order, independent of locale and of the order files were found in; mtime 0,
  // so rebuilds hash the same.
  items.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  return writeUstar(items, 0);
}

/** The release id: the first 16 hex digits of the uncompressed tar's SHA-256 (the host re-checks it). */
export const RELEASE_HASH_LENGTH = 16;
export function releaseHash(tar: Buffer): string {
  return createHash("sha256").update(tar).digest("hex").slice(0, RELEASE_HASH_LENGTH);
}
