// Keeps this process's view of the Lease current without polling: one list,
// then a watch resumed from the last resourceVersion; after an error the watch
// restarts with backoff and lists again. It also records WHEN this process saw
// the lease record change, on the monotonic clock — the only time a standby may
// use to judge expiry (client-go's rule; the renewTime written in the Lease is
// another machine's wall clock and is never compared with ours).
//
// resourceVersions are etcd revisions and only grow — until etcd is restored
// from a backup without --bump-revision; then they go back. A fresh read (list
// or get) that returns a lower resourceVersion than one already seen can only
// mean that, and is recorded as a reset instead of being ignored; so is a
// watch stream whose events go back. A late response to a write is not a read
// and is still ignored when older.
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from './clock.ts';
import type { LeaseLock, LeaseRecord, LeaseSnapshot, LeaseWatch } from './lock.ts';
import { compareResourceVersions } from './token.ts';
import { describeError, statusCode } from '../kube/errors.ts';

export interface Observation {
  /** The Lease as last seen; undefined when it does not exist. */
  lease: LeaseSnapshot | undefined;
  /** Monotonic time at which this process saw the record change (or appear, or disappear). */
  observedAt: number;
  /** When the Lease does not exist: the resourceVersion at which that was seen (the list's or the deletion's), when known. */
  resourceVersion?: string;
  /**
   * Set when the Lease was deleted while someone held it: that holder may still
   * believe it leads until its lease would have expired, judged from when we
   * last saw it renew.
   */
  deletedHolder?: { identity: string; liveUntil: number };
  /**
   * Set on the observation that showed the Lease's resourceVersion going back
   * (etcd restored from a backup without --bump-revision): what was seen before
   * says nothing about who acts now.
   */
  reset?: { from: string; to: string };
}

/** Where a state of the Lease came from: a fresh read, a watch event, or the response to our own write. */
type Source = 'read' | 'watch' | 'write';

export function sameRecord(a: LeaseRecord, b: LeaseRecord): boolean {
  return (
    a.holderIdentity === b.holderIdentity &&
    a.leaseDurationSeconds === b.leaseDurationSeconds &&
    a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime &&
    a.leaseTransitions === b.leaseTransitions
  );
}

export interface LeaseObserverOptions {
  lock: LeaseLock;
  clock: Clock;
  logger: Logger;
  /** Longest wait between watch restarts after errors. */
  maxBackoffMs: number;
}

export class LeaseObserver {
  private readonly options: LeaseObserverOptions;
  private current: Observation | undefined;
  private latestVersion: string | undefined;
  private listeners = new Set<(observation: Observation) => void>();
  private running = false;
  private watch: LeaseWatch | undefined;
  private retryTimer: TimerHandle | undefined;
  private failures = 0;

  constructor(options: LeaseObserverOptions) {
    this.options = options;
  }

  /** The current observation; undefined until the first list or get succeeded. */
  observation(): Observation | undefined {
    return this.current;
  }

  subscribe(listener: (observation: Observation) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.listAndWatch();
  }

  stop(): void {
    this.running = false;
    this.options.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const watch = this.watch;
    this.watch = undefined;
    watch?.stop();
  }

  /**
   * Reads the Lease now (after a failed compare-and-swap) and records what it
   * saw; the result is the observation afterwards (which may be newer than the
   * read, when the watch overtook it).
   */
  async refresh(): Promise<Observation> {
    const floor = this.latestVersion;
    const lease = await this.options.lock.get();
    if (lease) {
      this.apply(lease, 'read', undefined, floor);
    } else {
      // A 404 carries no resourceVersion; the (empty) list's tells a reset apart from a delete.
      const listed = await this.options.lock.list();
      this.apply(listed.lease, 'read', listed.lease ? undefined : listed.resourceVersion, floor);
    }
    return this.current!;
  }

  /**
   * Records the response to our own write. An older resourceVersion than the
   * newest seen is ignored, so a late response cannot undo a newer watch event.
   */
  record(lease: LeaseSnapshot): void {
    this.apply(lease, 'write');
  }

  /**
   * Records a state of the Lease. A watch event or write response older than
   * the newest resourceVersion seen is ignored. A fresh read older than the
   * newest resourceVersion seen *before the read was sent* (`floor`) is a reset
   * (see the top of this file): recorded, flagged, its record counted as just
   * changed; one older than something seen while it was in flight is stale.
   */
  private apply(lease: LeaseSnapshot | undefined, source: Source, deletedVersion?: string, floor?: string): void {
    const now = this.options.clock.now();
    const version = lease?.resourceVersion ?? deletedVersion;
    let reset: Observation['reset'];
    if (version && this.latestVersion) {
      const order = compareResourceVersions(version, this.latestVersion);
      if (order !== undefined && order < 0) {
        const belowFloor =
          source === 'read' && floor !== undefined && (compareResourceVersions(version, floor) ?? 0) < 0;
        if (!belowFloor) return;
        reset = { from: this.latestVersion, to: version };
      }
      if (order === 0 && lease && this.current?.lease?.resourceVersion === version) return;
    }
    if (reset) {
      this.options.logger.warn(
        { lease: this.options.lock.describe(), resourceVersion: reset.to, previousResourceVersion: reset.from },
        'The Lease resourceVersion went back (etcd restored from a backup without --bump-revision?); treating the Lease as new',
      );
    }
    if (version) this.latestVersion = version;
    const previous = this.current;
    let next: Observation;
    if (lease) {
      const changed = !previous?.lease || !sameRecord(previous.lease.record, lease.record) || reset !== undefined;
      next = { lease, observedAt: changed || !previous ? now : previous.observedAt };
      if (reset) next.reset = reset;
    } else {
      if (previous && !previous.lease && !reset) return;
      next = { lease: undefined, observedAt: now };
      if (version) next.resourceVersion = version;
      if (reset) next.reset = reset;
      const held = previous?.lease?.record;
      if (previous && held && held.holderIdentity !== '') {
        next.deletedHolder = {
          identity: held.holderIdentity,
          liveUntil: previous.observedAt + held.leaseDurationSeconds * 1000,
        };
      }
    }
    this.current = next;
    for (const listener of [...this.listeners]) listener(next);
  }

  private async listAndWatch(): Promise<void> {
    if (!this.running) return;
    let from: string;
    try {
      const floor = this.latestVersion;
      const { lease, resourceVersion } = await this.options.lock.list();
      if (!this.running) return;
      this.apply(lease, 'read', lease ? undefined : resourceVersion, floor);
      from = resourceVersion;
    } catch (err) {
      this.retryLater(err, 'list');
      return;
    }
    this.watchFrom(from);
  }

  private watchFrom(resourceVersion: string): void {
    if (!this.running) return;
    let last = resourceVersion;
    const watch = this.options.lock.watch(
      resourceVersion,
      (event) => {
        if (this.watch !== watch) return;
        this.failures = 0;
        const version = event.type === 'upsert' ? event.lease.resourceVersion : event.resourceVersion;
        if (version && (compareResourceVersions(version, last) ?? 0) < 0) {
          // One stream is ordered: going back means the store was reset under it. List afresh.
          this.watch = undefined;
          watch.stop();
          this.options.logger.warn(
            { lease: this.options.lock.describe(), resourceVersion: version, previousResourceVersion: last },
            'The Lease watch went back in resourceVersion; listing again',
          );
          void this.listAndWatch();
          return;
        }
        switch (event.type) {
          case 'upsert':
            last = event.lease.resourceVersion;
            this.apply(event.lease, 'watch');
            break;
          case 'deleted':
            if (event.resourceVersion) last = event.resourceVersion;
            this.apply(undefined, 'watch', event.resourceVersion || undefined);
            break;
          case 'bookmark':
            last = event.resourceVersion;
            break;
        }
      },
      (err) => {
        if (this.watch !== watch) return;
        this.watch = undefined;
        if (!this.running) return;
        if (err === undefined) {
          // The server ended the watch (its timeout): resume where we were.
          this.watchFrom(last);
        } else if (statusCode(err) === 410) {
          this.options.logger.debug({ lease: this.options.lock.describe() }, 'Lease watch expired; listing again');
          void this.listAndWatch();
        } else {
          this.retryLater(err, 'watch');
        }
      },
    );
    this.watch = watch;
  }

  private retryLater(err: unknown, what: string): void {
    if (!this.running) return;
    this.failures++;
    const base = Math.min(this.options.maxBackoffMs, 100 * 2 ** Math.min(this.failures, 10));
    const delay = base * (1 + 0.2 * Math.random());
    this.options.logger.warn(
      { lease: this.options.lock.describe(), err: describeError(err), retryInMs: Math.round(delay) },
      `Lease ${what} failed; retrying`,
    );
    this.retryTimer = this.options.clock.setTimeout(() => {
      this.retryTimer = undefined;
      void this.listAndWatch();
    }, delay);
  }
}
