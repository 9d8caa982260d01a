// The API server's clock, as seen from this process. Schedule decisions (which
// slot is due, deadlines) must not depend on this node's wall clock: a replica
// whose clock is minutes fast would run future slots early and then skip the
// real ones. Every API response carries a `Date` header (the server's time, to
// the second); each one bounds the offset between the server's clock and this
// process's *monotonic* clock from below:
//
//   serverTime(at processing) >= floor(serverTime) = header
//   monotonic(at processing)  <= monotonic(received)
//   => offset = serverTime - monotonic >= header - monotonic(received)
//
// The estimate is the largest such bound over a recent window, so it is never
// ahead of the server (a slot never runs early) and converges to within the
// network latency as samples land at different sub-second phases. Anchoring on
// the monotonic clock makes a local wall-clock jump or skew irrelevant once
// one response has been seen; before that, the local wall clock is used.

export interface ServerClockOptions {
  /** Monotonic milliseconds (performance.now). */
  monotonic?: () => number;
  /** Local wall clock, used only until the first sample. */
  wall?: () => number;
  /** Samples older than this are forgotten (the server's clock may be stepped). */
  windowMs?: number;
}

const MAX_SAMPLES = 64;

export class ServerClock {
  private readonly mono: () => number;
  private readonly wall: () => number;
  private readonly windowMs: number;
  /** [monotonic time received, lower bound of server − monotonic offset]. */
  private samples: Array<[number, number]> = [];

  constructor(options: ServerClockOptions = {}) {
    this.mono = options.monotonic ?? (() => performance.now());
    this.wall = options.wall ?? (() => Date.now());
    this.windowMs = options.windowMs ?? 10 * 60_000;
  }

  /** Records the `Date` header of a response received just now. */
  observe(dateHeader: string | undefined): void {
    if (!dateHeader) return;
    const server = Date.parse(dateHeader);
    if (!Number.isFinite(server)) return;
    const at = this.mono();
    this.samples.push([at, server - at]);
    const oldest = at - this.windowMs;
    if (this.samples.length > MAX_SAMPLES || (this.samples[0] && this.samples[0][0] < oldest)) {
      this.samples = this.samples.filter(([t]) => t >= oldest).slice(-MAX_SAMPLES);
    }
  }

  hasSample(maxAgeMs = this.windowMs): boolean {
    const last = this.samples.at(-1);
    return last !== undefined && this.mono() - last[0] <= maxAgeMs;
  }

  /** Estimated server time minus local wall time (ms); 0 before the first sample. */
  offsetFromWallMs(): number {
    return this.nowMs() - this.wall();
  }

  nowMs(): number {
    if (!this.samples.length) return this.wall();
    let best = -Infinity;
    for (const [, offset] of this.samples) if (offset > best) best = offset;
    return this.mono() + best;
  }

  now(): Date {
    return new Date(this.nowMs());
  }
}
