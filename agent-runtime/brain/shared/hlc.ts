/**
 * Hybrid logical clock (Kulkarni et al.): a wall-clock millisecond, a counter, and the
 * writer's node id, encoded as a fixed-width string so that plain string comparison is
 * the total order used for newest-wins on every replica.
 *
 * Why not `Date.now()`: with skewed clocks a causally later write can carry an older
 * timestamp and lose, and two writes in the same millisecond tie (each replica then
 * keeps its own copy forever). The HLC never goes backwards, advances past every
 * version it has seen (so an edit made after pulling always wins over what was
 * pulled), and the node id breaks every remaining tie.
 */
export const HLC_PATTERN = /^\d{15}-\d{6}-[A-Za-z0-9_-]{1,64}$/;

const MAX_COUNTER = 999_999;
/** The largest wall time the fixed 15-digit encoding holds; one more would sort lower. */
const MAX_WALL = 999_999_999_999_999;

/**
 * How far ahead of the receiving clock a version's physical part may be. A server
 * refuses pushes beyond it, and a clock never advances to a version beyond it: one
 * writer with a clock set to 2100 (or a hostile token pushing the maximum value) can
 * otherwise drag every replica's clock there for good.
 */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/**
 * The greatest well-formed version a clock reading `now` accepts: a version is poisoned
 * when it sorts above this (or is not a well-formed version at all).
 */
export function versionCeiling(now: number): string {
  return `${String(Math.min(MAX_WALL, now + MAX_CLOCK_SKEW_MS)).padStart(15, "0")}-${MAX_COUNTER}-~`;
}

/** Why a version is unacceptable at `now` (too far in the future, or malformed), or undefined when it is fine. */
export function versionProblem(version: string, now: number): string | undefined {
  if (!HLC_PATTERN.test(version)) return `${JSON.stringify(version)} is not a hybrid logical clock value`;
  const { wall } = decodeHlc(version);
  if (wall > now + MAX_CLOCK_SKEW_MS) {
    const when = wall <= 8.64e15 ? new Date(wall).toISOString() : `${wall} ms`;
    return `version ${version} is dated ${when}, more than ${MAX_CLOCK_SKEW_MS / 60_000} minutes ahead of this clock (${new Date(now).toISOString()})`;
  }
  return undefined;
}

/** True when a stored version is beyond the skew bound (or malformed): any acceptable version replaces it. */
export function isPoisoned(version: string, now: number): boolean {
  return versionProblem(version, now) !== undefined;
}

export interface HlcTimestamp {
  wall: number;
  counter: number;
  node: string;
}

export function encodeHlc(t: HlcTimestamp): string {
  // The order is plain string order of fixed-width fields: refuse what would not fit.
  if (!Number.isSafeInteger(t.wall) || t.wall < 0 || t.wall > MAX_WALL) throw new RangeError(`HLC wall time ${t.wall} does not fit the 15-digit encoding`);
  if (!Number.isSafeInteger(t.counter) || t.counter < 0 || t.counter > MAX_COUNTER) throw new RangeError(`HLC counter ${t.counter} does not fit the 6-digit encoding`);
  return `${String(t.wall).padStart(15, "0")}-${String(t.counter).padStart(6, "0")}-${t.node}`;
}

export function decodeHlc(value: string): HlcTimestamp {
  if (!HLC_PATTERN.test(value)) throw new Error(`Not a hybrid logical clock value: ${JSON.stringify(value)}`);
  const [wall, counter, ...node] = value.split("-");
  return { wall: Number(wall), counter: Number(counter), node: node.join("-") };
}

/** Total order over encoded versions: -1, 0 or 1. */
export function compareVersions(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class HybridLogicalClock {
  private wall = 0;
  private counter = 0;
  /** How far the sync server's clock is ahead of this one (0 when behind or unknown). */
  private serverAheadMs = 0;

  constructor(
    readonly node: string,
    private readonly now: () => number = Date.now,
  ) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(node)) throw new Error(`Invalid HLC node id ${JSON.stringify(node)}`);
  }

  /**
   * Takes the sync server's clock as the reference for the skew bound when it is ahead of
   * this one. Why: the server accepts versions up to ITS clock + MAX_CLOCK_SKEW_MS; a
   * replica trailing it by a second would otherwise refuse to follow such a version, stamp
   * its next edit below it and lose that edit for good. `offsetMs` is server minus local.
   */
  followServer(offsetMs: number): void {
    this.serverAheadMs = Number.isFinite(offsetMs) ? Math.max(0, Math.min(offsetMs, MAX_CLOCK_SKEW_MS * 100)) : 0;
  }

  /** The time the skew bound is measured from: this clock, or the server's when it is ahead. */
  boundNow(): number {
    return this.now() + this.serverAheadMs;
  }

  /** A new version for a local write, strictly greater than every version seen so far. */
  tick(): string {
    const physical = this.now();
    if (physical > this.wall) {
      this.wall = physical;
      this.counter = 0;
    } else {
      this.bumpCounter();
    }
    return encodeHlc({ wall: this.wall, counter: this.counter, node: this.node });
  }

  /**
   * Folds in a version written elsewhere, so the next local write sorts after it. A
   * version beyond the skew bound (see MAX_CLOCK_SKEW_MS) is not followed: the clock
   * stays sane and the caller is told (false), so a poisoned entry cannot poison it.
   * `leewayMs` widens the bound for a version the sync server reports holding (it accepted
   * it against its own clock, which may lead ours by an amount we could not measure).
   */
  observe(version: string, leewayMs = 0): boolean {
    if (isPoisoned(version, this.boundNow() + Math.max(0, Math.min(leewayMs, MAX_CLOCK_SKEW_MS)))) return false;
    const remote = decodeHlc(version);
    if (remote.wall > this.wall || (remote.wall === this.wall && remote.counter > this.counter)) {
      this.wall = remote.wall;
      this.counter = remote.counter;
    }
    return true;
  }

  private bumpCounter(): void {
    if (this.counter >= MAX_COUNTER) {
      // Trigger: a million writes within one logical millisecond. Why: the counter has a
      // fixed width so string order stays numeric. Outcome: borrow the next millisecond.
      if (this.wall >= MAX_WALL) throw new RangeError("HLC wall time is at the end of its encoding");
      this.wall += 1;
      this.counter = 0;
    } else {
      this.counter += 1;
    }
  }
}
