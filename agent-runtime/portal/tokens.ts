import { existsSync, readFileSync, statSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { generateToken } from "../http/auth.js";
import { writeFileAtomic } from "../store/atomic-file.js";

/** Where the portal's credentials live inside the data dir (each file 0600). */
export function portalTokenPaths(dataDir: string): { readWrite: string; readOnly: string } {
  return { readWrite: join(dataDir, "portal-token"), readOnly: join(dataDir, "portal-readonly-token") };
}

export interface PortalTokens {
  /** Full access: input and resize. */
  readWrite: string;
  /** Viewer credential, present only when enabled. */
  readOnly?: string;
  created: boolean;
}

function ensureToken(path: string, prefix: string): { token: string; created: boolean } {
  if (existsSync(path)) {
    // A token file someone loosened by hand is tightened again rather than trusted as is.
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    const token = readFileSync(path, "utf8").trim();
    if (token.length >= 32) return { token, created: false };
  }
  const token = generateToken(prefix);
  writeFileAtomic(path, token + "\n", 0o600);
  return { token, created: true };
}

/** Reads the portal tokens, generating them (0600, atomically) on first start. */
export function ensurePortalTokens(dataDir: string, withReadOnly: boolean): PortalTokens {
  const paths = portalTokenPaths(dataDir);
  const rw = ensureToken(paths.readWrite, "ppt_");
  const ro = withReadOnly ? ensureToken(paths.readOnly, "ppr_") : undefined;
  return { readWrite: rw.token, readOnly: ro?.token, created: rw.created || (ro?.created ?? false) };
}
