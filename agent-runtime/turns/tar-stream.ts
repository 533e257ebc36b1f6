/**
 * A minimal ustar writer for the few files a chat's home gets at provisioning. The
 * runtime hands the stream to `tar --extract` running AS the chat user, so the files
 * are created by their owner and nothing ever writes into the chat's home as root.
 */
export interface TarEntry {
  path: string; // relative, no `..`
  mode: number;
  /** Undefined for a directory. */
  content?: string;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function header(entry: TarEntry, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(512, 0);
  const name = entry.content === undefined && !entry.path.endsWith("/") ? entry.path + "/" : entry.path;
  if (Buffer.byteLength(name) > 99 || name.split("/").includes("..") || name.startsWith("/")) throw new Error(`tar: unsafe entry name ${name}`);
  h.write(name, 0, "utf8");
  h.write(octal(entry.mode & 0o7777, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii");
  h.write(octal(0, 8), 116, "ascii");
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(mtime, 12), 136, "ascii");
  h.write("        ", 148, "ascii");
  h.write(entry.content === undefined ? "5" : "0", 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
  return h;
}

export function buildTar(entries: readonly TarEntry[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const body = entry.content === undefined ? Buffer.alloc(0) : Buffer.from(entry.content, "utf8");
    parts.push(header(entry, body.length, mtime), body);
    const pad = (512 - (body.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(1024, 0));
  return Buffer.concat(parts);
}
