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
  private lastAt: number | undefined;

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
    this.lastAt = at;
    this.samples.push([at, server - at]);
    const oldest = at - this.windowMs;
    if (this.samples.length > MAX_SAMPLES || (this.samples[0] && this.samples[0][0] < oldest)) {
      // Keep the tightest bounds, not the latest ones: a burst of responses
      // within one second (a takeover, a stampede) would otherwise push out
      // the samples taken at other sub-second phases and leave the estimate
      // up to a second behind the server — every slot started that much late.
      const kept = this.samples.filter(([t]) => t >= oldest);
      if (kept.length > MAX_SAMPLES) kept.sort((a, b) => b[1] - a[1]).splice(MAX_SAMPLES);
      this.samples = kept.sort((a, b) => a[0] - b[0]);
    }
  }

  hasSample(maxAgeMs = this.windowMs): boolean {
    return this.lastAt !== undefined && this.mono() - this.lastAt <= maxAgeMs;
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
