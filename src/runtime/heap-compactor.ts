// Gives the heap back after a burst.
//
// V8 sizes the old generation by what it has seen: after a burst — a takeover
// that writes 10,000 statuses, a midnight stampede — it keeps the pages it
// grew into although what is live shrank back (well over what is live at
// 10,000 SingletonJobs: bench/results/probes.md). Only a "last resort"
// collection (what V8 does on a low-memory notification: compacting every
// fragmented page, several passes, compiled-code caches flushed) returns them.
// It blocks the event loop while it runs (probes.md: the pause at 10,000
// objects), so it runs only when the process has been quiet for a whole
// interval, only when the heap has grown well past what was live after the
// last one, and at most once a minute (backing off while it returns little).
//
// A leader fences itself when one of its timers fires more than the stall
// threshold late (default max(1 s, retryPeriod)), and the pause grows with the
// live heap (seconds at a gigabyte), so the collection runs only when its
// predicted pause fits the budget the caller gives (`pauseBudgetMs`: unlimited
// on a standby, half the stall threshold on a leader). The prediction is the
// heap in use outside the young generation (an upper bound of what is live)
// times the slowest pause per live MiB of the last few compactions (before
// any, a conservative default: 10 ms; probes.md measured 100–300 ms for ~40
// MiB live); a compaction held for it is counted and waits for a budget that
// fits (a standby's) or a smaller heap. There is no cheaper way to the same
// result: an async last-resort collection is the same pause, deferred; an
// incremental major one returns little.
//
// It needs node's --expose-gc (the image's ENTRYPOINT passes it); without it
// the compactor stays off and says so once.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import v8 from 'node:v8';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';

const MiB = 1024 * 1024;

export interface HeapSample {
  /** Bytes V8 has committed for the heap (what the process holds). */
  committed: number;
  /** Bytes in use, garbage included until the next collection. */
  used: number;
  /** Of those, bytes in the young generation (mostly garbage of the last moments; a full collection's pause hardly grows with them). */
  young?: number;
}

export interface CompactorPolicy {
  /** How often the heap and the event loop are sampled. */
  intervalMs: number;
  /** Busiest event-loop utilization (0–1) over an interval that still counts as quiet. */
  quietUtilization: number;
  /** Compact when committed > live after the last compaction × (1 + growthRatio) + minGrowthBytes. */
  growthRatio: number;
  minGrowthBytes: number;
  /** Shortest time between two compactions; doubles (up to maxGapMs) while they return less than minGrowthBytes / 2. */
  minGapMs: number;
  maxGapMs: number;
  /** Predicted pause per MiB in use outside the young generation until a compaction was measured (then the slowest of the last few, per live MiB). */
  pauseMsPerMiB: number;
}

export const defaultPolicy: CompactorPolicy = {
  intervalMs: 10_000,
  quietUtilization: 0.1,
  growthRatio: 0.25,
  minGrowthBytes: 8 * 1024 * 1024,
  minGapMs: 60_000,
  maxGapMs: 32 * 60_000,
  pauseMsPerMiB: 10,
};

/**
 * The pause budget without a `pauseBudgetMs` hook: half of the smallest stall
 * threshold the elector uses by default (1 s), since without the hook the
 * compactor cannot tell whether this process leads.
 */
export const DEFAULT_PAUSE_BUDGET_MS = 500;

/** How many measured compactions the pause prediction remembers. */
const MEASURED = 4;

/** The decision, without timers or V8: what a tick sees and what it should do. */
export class CompactionSchedule {
  private readonly policy: CompactorPolicy;
  /** Live bytes right after the last compaction (0 before the first). */
  private baseline = 0;
  private last = Number.NEGATIVE_INFINITY;
  private gapMs: number;
  /** Measured pause per live MiB (after.used) of the last MEASURED compactions. */
  private readonly rates: number[] = [];

  constructor(policy: CompactorPolicy) {
    this.policy = policy;
    this.gapMs = policy.minGapMs;
  }

  /** True when a compaction is due now. */
  due(heap: HeapSample, utilization: number, now: number): boolean {
    if (utilization > this.policy.quietUtilization) return false;
    if (now - this.last < this.gapMs) return false;
    return heap.committed > this.baseline * (1 + this.policy.growthRatio) + this.policy.minGrowthBytes;
  }

  /**
   * How long a compaction of `heap` is predicted to block the event loop: the
   * bytes in use outside the young generation (what is live, and old garbage:
   * an upper bound of what it marks and moves) times the slowest pause per
   * live MiB of the last few compactions, or the policy's default before any.
   */
  predictedPauseMs(heap: HeapSample): number {
    const rate = this.rates.length ? Math.max(...this.rates) : this.policy.pauseMsPerMiB;
    return (Math.max(0, heap.used - (heap.young ?? 0)) / MiB) * rate;
  }

  /** Records a compaction that took the heap from `before` to `after`, blocking the loop `pauseMs` (when measured). */
  compacted(before: HeapSample, after: HeapSample, now: number, pauseMs?: number): void {
    this.last = now;
    this.baseline = after.used;
    const returned = before.committed - after.committed;
    this.gapMs =
      returned < this.policy.minGrowthBytes / 2 ? Math.min(this.policy.maxGapMs, this.gapMs * 2) : this.policy.minGapMs;
    if (pauseMs !== undefined) {
      this.rates.push(pauseMs / Math.max(1, after.used / MiB));
      if (this.rates.length > MEASURED) this.rates.shift();
    }
  }

  /** The current shortest gap between compactions (for tests and logs). */
  get currentGapMs(): number {
    return this.gapMs;
  }
}

type GcFunction = (options?: {
  type?: 'major' | 'minor';
  execution?: 'sync' | 'async';
  flavor?: 'regular' | 'last-resort';
}) => void;

const YOUNG_SPACES = new Set(['new_space', 'new_large_object_space']);

export function heapSample(): HeapSample {
  const s = v8.getHeapStatistics();
  const young = v8
    .getHeapSpaceStatistics()
    .filter((space) => YOUNG_SPACES.has(space.space_name))
    .reduce((sum, space) => sum + space.space_used_size, 0);
  return { committed: s.total_heap_size, used: s.used_heap_size, young };
}

export interface HeapCompactorOptions {
  logger: Logger;
  registry?: Registry;
  policy?: Partial<CompactorPolicy>;
  /** Defaults to the global gc that --expose-gc installs. */
  gc?: GcFunction;
  /**
   * How long a compaction may block the event loop right now, in ms: asked
   * before each one, which runs only when its predicted pause fits. For the
   * operator, the elector's: Infinity while this process does not lead, half
   * its stall threshold (and no more than what is left of the lease on its
   * own clock) while it leads. Without it, DEFAULT_PAUSE_BUDGET_MS.
   */
  pauseBudgetMs?: () => number;
}

export class HeapCompactor {
  private readonly o: HeapCompactorOptions;
  private readonly policy: CompactorPolicy;
  private readonly schedule: CompactionSchedule;
  private readonly gc: GcFunction | undefined;
  private timer: NodeJS.Timeout | undefined;
  private elu: EventLoopUtilization | undefined;
  private readonly count?: Counter;
  private readonly returned?: Counter;
  private readonly seconds?: Histogram;
  private readonly held?: Counter;
  /** A compaction is being held for the pause budget (logged once per episode). */
  private holding = false;

  constructor(o: HeapCompactorOptions) {
    this.o = o;
    this.policy = { ...defaultPolicy, ...o.policy };
    this.schedule = new CompactionSchedule(this.policy);
    this.gc = o.gc ?? (globalThis as { gc?: GcFunction }).gc;
    if (o.registry) {
      const registers = [o.registry];
      this.count = new Counter({
        name: 'singleton_operator_heap_compactions_total',
        help: 'Last-resort garbage collections run after a burst, when the process was quiet',
        registers,
      });
      this.returned = new Counter({
        name: 'singleton_operator_heap_compaction_returned_bytes_total',
        help: 'Committed heap bytes those compactions gave back',
        registers,
      });
      this.seconds = new Histogram({
        name: 'singleton_operator_heap_compaction_duration_seconds',
        help: 'How long each compaction blocked the event loop',
        buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers,
      });
      this.held = new Counter({
        name: 'singleton_operator_heap_compactions_held_total',
        help: 'Sampling ticks at which a due compaction did not run: its predicted pause was over what this process may block now (a leader: half its stall threshold)',
        registers,
      });
    }
  }

  /** True when node exposes gc (--expose-gc), i.e. when start() does anything. */
  get enabled(): boolean {
    return typeof this.gc === 'function';
  }

  start(): void {
    if (!this.enabled) {
      this.o.logger.info('Heap compaction after bursts is off: node runs without --expose-gc');
      return;
    }
    this.elu = performance.eventLoopUtilization();
    this.timer = setInterval(() => this.tick(), this.policy.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const now = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(now, this.elu).utilization;
    this.elu = now;
    const before = heapSample();
    if (!this.schedule.due(before, utilization, Date.now())) return;
    const budgetMs = this.o.pauseBudgetMs?.() ?? DEFAULT_PAUSE_BUDGET_MS;
    const predictedMs = this.schedule.predictedPauseMs(before);
    if (!(predictedMs <= budgetMs)) {
      this.held?.inc();
      if (!this.holding) {
        this.o.logger.debug(
          {
            committedMiB: mib(before.committed),
            usedMiB: mib(before.used),
            youngMiB: mib(before.young ?? 0),
            predictedPauseMs: Math.round(predictedMs),
            budgetMs: Math.round(budgetMs),
          },
          'Holding a heap compaction: its pause would be longer than this process may block now',
        );
      }
      this.holding = true;
      return;
    }
    this.holding = false;
    const started = performance.now();
    this.gc!({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    const ms = performance.now() - started;
    const after = heapSample();
    this.schedule.compacted(before, after, Date.now(), ms);
    // The pause is not the loop's own work: start the next interval's utilization afresh.
    this.elu = performance.eventLoopUtilization();
    const returned = Math.max(0, before.committed - after.committed);
    this.count?.inc();
    this.returned?.inc(returned);
    this.seconds?.observe(ms / 1000);
    this.o.logger.debug(
      {
        committedBeforeMiB: mib(before.committed),
        committedAfterMiB: mib(after.committed),
        liveMiB: mib(after.used),
        pauseMs: Math.round(ms),
        predictedPauseMs: Math.round(predictedMs),
        budgetMs: Math.round(budgetMs),
        nextGapS: this.schedule.currentGapMs / 1000,
      },
      'Compacted the heap after a burst',
    );
  }
}

function mib(bytes: number): number {
  return Math.round((bytes / MiB) * 10) / 10;
}
