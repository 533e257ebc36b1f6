/** One file that lands on the host, exactly as cloud-init writes it. */
export interface HostFile {
  /** Absolute path on the host. */
  path: string;
  content: string;
  /** Octal mode as cloud-init's `permissions` wants it, e.g. "0440". */
  mode: string;
  /** `user:group`. */
  owner: string;
  /** True for files holding a secret (the Tailscale auth key): never print or write them out. */
  secret?: boolean;
}
