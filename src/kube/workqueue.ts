// A work queue in the style of client-go's: a key is queued at most once, is
// never processed by two workers at once (a key added while in process is
// re-queued when done), failures back off per key exponentially, and retries
// share an overall token bucket so a burst of failures cannot flood the API.
import { DelayedKeys } from './delays.ts';
import type { Timers } from './delays.ts';
import type { QueueMetrics } from './queue-metrics.ts';

export interface WorkQueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Overall rate limit for retries: tokens per second and bucket size. */
  qps?: number;
  burst?: number;
  /** Monotonic ms, and the timers of delayed adds, for tests that move time themselves; default the real ones. */
  now?: () => number;
  timers?: Timers;
  /** workqueue_* instrumentation (metrics.ts). */
  metrics?: QueueMetrics;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed: DelayedKeys;
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  /** When each waiting key was added, and when each key in process was handed out (for the metrics). */
  private readonly addedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly metrics: QueueMetrics | undefined;
  private stopped = false;
  private tokens: number;
  private lastRefill: number;
  private readonly o: Required<Omit<WorkQueueOptions, 'metrics' | 'timers'>>;

  constructor(options: WorkQueueOptions = {}) {
    const { metrics, timers, ...rest } = options;
    this.o = { baseDelayMs: 100, maxDelayMs: 60_000, qps: 20, burst: 100, now: () => performance.now(), ...rest };
    this.metrics = metrics;
    metrics?.inProcess(() => Array.from(this.startedAt.values(), (t) => (this.o.now() - t) / 1000));
    this.tokens = this.o.burst;
    this.lastRefill = this.o.now();
    this.delayed = new DelayedKeys(this.o.now, (key) => this.add(key), timers);
  }

  add(key: string): void {
    if (this.stopped || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.metrics?.added();
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.start(key, this.o.now());
      waiter(key);
    } else {
      this.queue.push(key);
      this.addedAt.set(key, this.o.now());
      this.metrics?.depth(this.queue.length);
    }
  }

  private start(key: string, addedAt: number): void {
    const now = this.o.now();
    this.processing.add(key);
    this.startedAt.set(key, now);
    this.metrics?.queued((now - addedAt) / 1000);
  }

  /** Adds the key after `delayMs`; an earlier pending add wins over a later one. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    if (delayMs <= 0) return this.add(key);
    this.delayed.add(key, this.o.now() + delayMs);
  }

  /** Re-adds a failed key after its backoff (and the overall rate limit). */
  addRateLimited(key: string): void {
    this.metrics?.retried();
    this.addAfter(key, this.backoffMs(key));
  }

  backoffMs(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const perKey = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** n);
    return Math.max(perKey, this.bucketDelayMs());
  }

  /** Clears the key's failure history after a success. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  private bucketDelayMs(): number {
    const now = this.o.now();
    this.tokens = Math.min(this.o.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.o.qps);
    this.lastRefill = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.o.qps) * 1000;
  }

  /** The next key to process, or undefined once shut down. Call done(key) afterwards. */
  get(): Promise<string | undefined> {
    if (this.stopped) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
      this.start(key, this.addedAt.get(key) ?? this.o.now());
      this.addedAt.delete(key);
      this.metrics?.depth(this.queue.length);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    if (started !== undefined) {
      this.startedAt.delete(key);
      this.metrics?.worked((this.o.now() - started) / 1000);
    }
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.add(key);
    }
  }

  get length(): number {
    return this.queue.length;
  }

  shutDown(): void {
    this.stopped = true;
    this.delayed.clear();
    this.queue.length = 0;
    this.addedAt.clear();
    this.startedAt.clear();
    this.metrics?.depth(0);
    this.dirty.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }
}
