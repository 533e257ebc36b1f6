/**
 * The few files a chat's home gets at provisioning, as a tar stream for `tar --extract`
 * running AS the chat user, so the files are created by their owner and nothing ever
 * writes into the chat's home as root. Written by the one ustar writer (host/ustar.ts).
 */
import { writeUstar } from "../../host/ustar.js";

export interface TarEntry {
  path: string; // relative, no `..`
  mode: number;
  /** Undefined for a directory. */
  content?: string;
}

export function buildTar(entries: readonly TarEntry[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  return writeUstar(
    entries.map((e) =>
      e.content === undefined ? { path: e.path, type: "dir" as const, mode: e.mode } : { path: e.path, type: "file" as const, mode: e.mode, data: Buffer.from(e.content, "utf8") },
    ),
    mtime,
  );
}
