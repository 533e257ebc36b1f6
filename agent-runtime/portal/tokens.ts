import { join } from "node:path";
import { ensureTokenFile } from "../store/token-file.js";

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


/** Reads the portal tokens, generating them (0600, atomically) on first start. */
export function ensurePortalTokens(dataDir: string, withReadOnly: boolean): PortalTokens {
  const paths = portalTokenPaths(dataDir);
  const rw = ensureTokenFile(paths.readWrite, "ppt_");
  const ro = withReadOnly ? ensureTokenFile(paths.readOnly, "ppr_") : undefined;
  return { readWrite: rw.token, readOnly: ro?.token, created: rw.created || (ro?.created ?? false) };
}
