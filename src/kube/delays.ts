// Delayed adds for the work queue: every key is re-checked at its next slot
// (at most a minute away), so with 10,000 SingletonJobs there are 10,000
// pending delays at all times. One Node timer each would cost a Timeout, a
// closure and a place in the timer lists Node keeps per distinct duration
// (bench/results/probes.md); here each is a map entry and a heap entry, and
// one timer is armed for the earliest.
/** The timers DelayedKeys arms (src/election/clock.ts's Clock is one; tests pass a clock that moves only when told to). */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export class DelayedKeys {
  /** key → when it is due (the earliest pending add wins). */
  private readonly due = new Map<string, number>();
  /** Min-heap on `at`; entries superseded by an earlier add stay until popped (lazy deletion). */
  private readonly heap: { at: number; key: string }[] = [];
  private timer: unknown;
  private armedAt = Infinity;

  private readonly now: () => number;
  private readonly fire: (key: string) => void;
  private readonly timers: Timers;

  /** `fire(key)` is called once the key is due on the `now` clock (milliseconds), by a timer of `timers`. */
  constructor(now: () => number, fire: (key: string) => void, timers: Timers = realTimers) {
    this.now = now;
    this.fire = fire;
    this.timers = timers;
  }

  /** Adds key at `at`, unless it is already due earlier. */
  add(key: string, at: number): void {
    const pending = this.due.get(key);
    if (pending !== undefined && pending <= at) return;
    this.due.set(key, at);
    this.push({ at, key });
    if (at < this.armedAt) this.arm();
  }

  get size(): number {
    return this.due.size;
  }

  clear(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
    this.due.clear();
    this.heap.length = 0;
  }

  private arm(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
    const first = this.heap[0];
    if (!first) return;
    this.armedAt = first.at;
    this.timer = this.timers.setTimeout(() => this.release(), Math.max(0, first.at - this.now()));
  }

  private release(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    const now = this.now();
    for (let top = this.heap[0]; top && top.at <= now; top = this.heap[0]) {
      this.pop();
      // A superseded entry (the key was re-added earlier, or already fired) is skipped.
      if (this.due.get(top.key) !== top.at) continue;
      this.due.delete(top.key);
      this.fire(top.key);
    }
    this.arm();
  }

  private push(entry: { at: number; key: string }): void {
    const h = this.heap;
    let i = h.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.at <= entry.at) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = entry;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]!.at < h[l]!.at ? r : l;
      if (h[c]!.at >= last.at) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}
