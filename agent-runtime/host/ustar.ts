/**
 * The one POSIX ustar writer: release tarballs (scripts/lib/deterministic-tar.ts, which
 * fixes order and times so a release hashes the same on every machine) and the few files
 * a chat's home gets at provisioning (streamed to `tar --extract` running as the chat
 * user, so nothing writes into a chat's home as root). Entries are written in the order
 * given, uid/gid 0 and no user or group names.
 */
import { PicortexError } from "../errors.js";

export interface UstarEntry {
  /** Relative POSIX path: no leading "/", no empty, "." or ".." segments, ASCII only. */
  path: string;
  type: "file" | "dir";
  mode: number;
  /** File contents (files only). */
  data?: Buffer;
}

export class TarPathError extends PicortexError {
  constructor(path: string, why: string) {
    super("invalid_input", "tar_path", `Cannot put ${JSON.stringify(path)} in a tarball: ${why}`);
  }
}

const BLOCK = 512;

export function assertSafeTarPath(path: string): void {
  if (path === "" || path.startsWith("/")) throw new TarPathError(path, "paths must be relative");
  if (path.split("/").some((s) => s === "" || s === "." || s === "..")) throw new TarPathError(path, "empty, '.' or '..' segments are not allowed");
  if (!/^[\x20-\x7e]+$/.test(path)) throw new TarPathError(path, "only printable ASCII names are supported");
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

function header(entry: UstarEntry, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const { prefix, name } = splitName(entry.type === "dir" ? `${entry.path}/` : entry.path);
  h.write(name, 0, 100, "ascii");
  h.write(octal(entry.mode & 0o7777, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii"); // uid
  h.write(octal(0, 8), 116, "ascii"); // gid
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(mtime, 12), 136, "ascii");
  h.write("        ", 148, "ascii"); // checksum placeholder
  h.write(entry.type === "dir" ? "5" : "0", 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  h.write(prefix, 345, 155, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + " ", 148, "ascii");
  return h;
}

/** The whole archive, entries in the order given, with the closing two zero blocks. */
export function writeUstar(entries: readonly UstarEntry[], mtime: number): Buffer {
  const chunks: Buffer[] = [];
  for (const entry of entries) {
    assertSafeTarPath(entry.path);
    const data = entry.type === "file" ? (entry.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    chunks.push(header(entry, data.length, mtime));
    if (data.length === 0) continue;
    chunks.push(data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad) chunks.push(Buffer.alloc(pad, 0));
  }
  chunks.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(chunks);
}
