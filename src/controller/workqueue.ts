// A work queue in the style of client-go's: a key is queued at most once, is
// never processed by two workers at once (a key added while in process is
// re-queued when done), failures back off per key exponentially, and retries
// share an overall token bucket so a burst of failures cannot flood the API.
import { DelayedKeys } from './delays.ts';

export interface WorkQueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Overall rate limit for retries: tokens per second and bucket size. */
  qps?: number;
  burst?: number;
  now?: () => number;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed: DelayedKeys;
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private stopped = false;
  private tokens: number;
  private lastRefill: number;
  private readonly o: Required<WorkQueueOptions>;

  constructor(options: WorkQueueOptions = {}) {
    this.o = { baseDelayMs: 100, maxDelayMs: 60_000, qps: 20, burst: 100, now: () => performance.now(), ...options };
    this.tokens = this.o.burst;
    this.lastRefill = this.o.now();
    this.delayed = new DelayedKeys(this.o.now, (key) => this.add(key));
  }

  add(key: string): void {
    if (this.stopped || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
    } else this.queue.push(key);
  }

  /** Adds the key after `delayMs`; an earlier pending add wins over a later one. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    if (delayMs <= 0) return this.add(key);
    this.delayed.add(key, this.o.now() + delayMs);
  }

  /** Re-adds a failed key after its backoff (and the overall rate limit). */
  addRateLimited(key: string): void {
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
      this.processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
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
    this.dirty.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }
}
