import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** Processes whose root directory or cwd lies under `dir` (a container or chroot left running). */
export function processesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const root = readlinkSync(`/proc/${pid}/root`);
      if (root === dir || root.startsWith(dir + "/")) {
        const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
        found.push(`process ${pid} (${comm}) rooted in ${root}`);
      }
    } catch {
      // the process exited while we looked
    }
  }
  return found;
}

/** Mount points at or under `dir` in this mount namespace, in mount order. */
export function mountsUnder(dir: string): Array<{ mountPoint: string; toString(): string }> {
  const found: Array<{ mountPoint: string; toString(): string }> = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const mountPoint = line.split(" ")[4];
    if (mountPoint && (mountPoint === dir || mountPoint.startsWith(dir + "/"))) {
      found.push({ mountPoint, toString: () => `mount ${mountPoint}` });
    }
  }
  return found;
}

/** Processes whose argv contains `needle` (e.g. a qemu started with this boot's QMP socket). */
export function processesWithArg(needle: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (argv.some((a) => a.includes(needle))) found.push(`process ${pid} (${argv[0]}) still running`);
    } catch {
      // exited
    }
  }
  return found;
}
