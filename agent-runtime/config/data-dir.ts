import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/** The folder name of a runtime data dir when none is given. */
export const DATA_DIR_NAME = ".picortex";

/**
 * The one data dir rule, shared by `serve` and every client command (chat, brain, portal):
 *
 *   1. `--data-dir DIR`, else
 *   2. `$PICORTEX_DATA_DIR`, else
 *   3. `dataDir` in the config file, else
 *   4. the nearest `.picortex` folder in the current folder or one of its parents (as git
 *      finds `.git`, so a client run in a subfolder of the clone finds `npm start`'s), else
 *   5. `./.picortex` (which only `serve` and `portal start` create).
 *
 * Steps 1-3 are merged by loadRuntimeConfig; this function is steps 4 and 5.
 */
export function defaultDataDir(cwd: string = process.cwd()): string {
  return findDataDir(cwd) ?? resolve(cwd, DATA_DIR_NAME);
}

/**
 * Files only a runtime data dir holds. `~/.picortex` may exist for the brain client alone
 * (brain.sqlite, brain.json, brain-token): that is not a runtime's data dir and is skipped.
 */
const RUNTIME_MARKERS = ["api-token", "runtime.sqlite", "endpoint.json", "portal-token"];

/** Whether `dir` is a data dir a runtime (serve or portal start) has used. */
export function isRuntimeDataDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory() && RUNTIME_MARKERS.some((m) => existsSync(join(dir, m)));
  } catch {
    return false;
  }
}

/** The nearest `.picortex` folder at or above `cwd` that a runtime created, or undefined. */
export function findDataDir(cwd: string = process.cwd()): string | undefined {
  let dir = resolve(cwd);
  for (;;) {
    const candidate = join(dir, DATA_DIR_NAME);
    if (isRuntimeDataDir(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
