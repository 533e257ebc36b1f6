import { chmodSync, existsSync, readFileSync, statSync } from "node:fs";
import { generateToken } from "../http/auth.js";
import { join } from "node:path";
import { writeFileAtomic } from "./atomic-file.js";

/** Where the runtime keeps its API token; the CLIs read it from the same place. */
export function apiTokenPath(dataDir: string): string {
  return join(dataDir, "api-token");
}

/**
 * Reads a token file, creating it (0600, atomically) when missing or too short to be a
 * real secret. A file someone loosened by hand is tightened again rather than trusted
 * as is, so a token readable by others is never used silently.
 */
export function ensureTokenFile(path: string, prefix: string, minLength = 32): { token: string; created: boolean } {
  if (existsSync(path)) {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    const token = readFileSync(path, "utf8").trim();
    if (token.length >= minLength) return { token, created: false };
  }
  const token = generateToken(prefix);
  writeFileAtomic(path, token + "\n", 0o600);
  return { token, created: true };
}
