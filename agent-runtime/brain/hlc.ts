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

export interface HlcTimestamp {
  wall: number;
  counter: number;
  node: string;
}

export function encodeHlc(t: HlcTimestamp): string {
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

  constructor(
    readonly node: string,
    private readonly now: () => number = Date.now,
  ) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(node)) throw new Error(`Invalid HLC node id ${JSON.stringify(node)}`);
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

  /** Folds in a version written elsewhere, so the next local write sorts after it. */
  observe(version: string): void {
    const remote = decodeHlc(version);
    if (remote.wall > this.wall || (remote.wall === this.wall && remote.counter > this.counter)) {
      this.wall = remote.wall;
      this.counter = remote.counter;
    }
  }

  private bumpCounter(): void {
    if (this.counter >= MAX_COUNTER) {
      // Trigger: a million writes within one logical millisecond. Why: the counter has a
      // fixed width so string order stays numeric. Outcome: borrow the next millisecond.
      this.wall += 1;
      this.counter = 0;
    } else {
      this.counter += 1;
    }
  }
}
