/**
 * Counts failed auth attempts per client address in a sliding window. Only failures
 * count, so a legitimate user is never limited; a guesser is locked out until the
 * window passes. Memory is bounded: the oldest addresses are forgotten first.
 */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Seconds until the client may try again, or 0 when it is not limited. */
  retryAfterSeconds(key: string): number {
    const recent = this.recent(key);
    if (recent.length < this.limit) return 0;
    return Math.max(1, Math.ceil((recent[0]! + this.windowMs - this.now()) / 1000));
  }

  recordFailure(key: string): void {
    const recent = this.recent(key);
    recent.push(this.now());
    this.failures.delete(key);
    this.failures.set(key, recent.slice(-this.limit));
    if (this.failures.size > this.maxKeys) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
  }

  private recent(key: string): number[] {
    const cutoff = this.now() - this.windowMs;
    return (this.failures.get(key) ?? []).filter((t) => t > cutoff);
  }
}

/**
 * The limiter bucket for a client address. Every loopback address (all of 127.0.0.0/8,
 * `::1`, their IPv4-mapped forms) is one bucket: chats, the portal's agent and anything
 * behind `tailscale serve` share loopback, and rotating the source over 127.x must not
 * buy a fresh allowance.
 */
export function clientBucket(address: string | undefined): string {
  if (!address) return "unknown";
  const a = address.startsWith("::ffff:") ? address.slice(7) : address;
  if (a === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a)) return "loopback";
  return a;
}

/**
 * Failure limiting for one kind of credential (API token, gateway chat tokens, brain
 * tokens, portal token and cookie). Check the credential first: a valid credential is
 * never refused, so one principal's failures (a chat's agent sending bad tokens over
 * loopback) can never lock out another's correct one. An invalid credential counts
 * against its kind and client bucket, and once that bucket is over the limit it is
 * answered 429 instead of 401. Guessing stays hopeless because every token is 256-bit
 * random (operator-chosen API tokens are at least 16 characters).
 */
export class CredentialLimiter {
  constructor(
    readonly kind: string,
    private readonly limiter: FailureLimiter = new FailureLimiter(30, 60_000),
  ) {}

  /**
   * For a credential that did not match: seconds the client must wait (answer 429), or
   * 0 after recording the failure (answer 401).
   */
  refuse(address: string | undefined): number {
    const key = `${this.kind}:${clientBucket(address)}`;
    const retry = this.limiter.retryAfterSeconds(key);
    if (retry > 0) return retry;
    this.limiter.recordFailure(key);
    return 0;
  }
}
