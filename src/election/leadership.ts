// One leader term: from the write that made this process the holder until it
// steps down. It renews every retryPeriod and fences itself: `signal` aborts at
// sendTimeOfLastSuccessfulRenew + leaseDuration − margin at the latest, when
// the renew deadline passes, when its timers fire late (a stalled event loop),
// and when the Lease names another holder; `assertValid()` checks the same
// bound synchronously before every guarded write. The elector (elector.ts)
// decides when to lead and runs the guarded work.
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from './clock.ts';
import type { ResolvedTimings } from './config.ts';
import {
  describeError,
  formatMicroTime,
  isCasFailure,
  type LeaseLock,
  type LeaseRecord,
  type LeaseSnapshot,
} from './lock.ts';
import type { ElectionMetrics } from './metrics.ts';
import type { LeaseObserver } from './observer.ts';
import { compareResourceVersions, termFromResourceVersion } from './token.ts';
import { isTransient, statusCode } from '../kube/errors.ts';

export interface Leadership {
  identity: string;
  /** The fencing term of this acquisition (token.ts): strictly greater than every earlier acquisition's. */
  term: number;
  /** Aborted the instant leadership may be lost; its reason is a LeadershipLostError. */
  signal: AbortSignal;
  /** Synchronous self-fence check for right before a guarded write; throws LeadershipLostError. */
  assertValid(): void;
  /**
   * The etcd revision of this leadership's newest successful Lease write
   * (acquire or renew), as a term. Later than every write any other holder of
   * any Lease made before it; the controller raises its term to it to take
   * over objects a gone installation wrote with a higher term.
   */
  latestRevision?(): number;
}

export type LossReason =
  | 'shutdown' // run()'s signal aborted
  | 'renew-deadline' // could not renew within renewDeadline
  | 'expired' // the self-fence bound passed (leaseDuration − margin since the last renew was sent)
  | 'stalled' // a timer fired far too late: the event loop was stopped or starved
  | 'taken' // the Lease names another holder, or we could not re-create it
  | 'duplicate-identity' // another process wrote the Lease under our identity
  | 'reset' // the Lease's resourceVersion went back (etcd restored from a backup)
  | 'work-failed'; // onStartedLeading threw or rejected

export class LeadershipLostError extends Error {
  override name = 'LeadershipLostError';
  readonly reason: LossReason;
  constructor(reason: LossReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** What a term shares with the elector that won it. */
export interface LeaderContext {
  identity: string;
  timings: ResolvedTimings;
  clock: Clock;
  logger: Logger;
  lock: LeaseLock;
  observer: LeaseObserver;
  metrics: ElectionMetrics;
}

export class LeaderTerm {
  readonly term: number;
  readonly leadership: Leadership;
  /** Resolves when leadership is lost. */
  readonly lost: Promise<void>;
  /** Set by the elector once onStartedLeading's promise has settled. */
  workSettled = false;
  private readonly ctx: LeaderContext;
  private readonly controller = new AbortController();
  private readonly markLost: () => void;
  private readonly tickMs: number;
  /** Monotonic send time of the request that last renewed (or acquired) the Lease. */
  private lastRenewSentAt: number;
  /** Our newest write of the Lease: the base of the next compare-and-swap. */
  private cache: LeaseSnapshot;
  private lossReason: LossReason | undefined;
  private lostAt: number | undefined;
  private renewing = false;
  private renewDue = 0;
  private renewTimer: TimerHandle | undefined;
  private deadlineDue = 0;
  private deadlineTimer: TimerHandle | undefined;
  private tickDue = 0;
  private tickTimer: TimerHandle | undefined;

  constructor(ctx: LeaderContext, term: number, snapshot: LeaseSnapshot, sentAt: number) {
    this.ctx = ctx;
    this.term = term;
    this.cache = snapshot;
    this.lastRenewSentAt = sentAt;
    this.tickMs = Math.min(250, ctx.timings.retryPeriodMs / 4);
    let markLost = () => {};
    this.lost = new Promise<void>((resolve) => (markLost = resolve));
    this.markLost = markLost;
    this.leadership = {
      identity: ctx.identity,
      term,
      signal: this.controller.signal,
      assertValid: () => this.assertValid(),
      latestRevision: () => {
        try {
          return Math.max(this.term, termFromResourceVersion(this.cache.resourceVersion));
        } catch {
          return this.term;
        }
      },
    };
  }

  /** Why leadership was lost; undefined while it lasts. */
  get reason(): LossReason | undefined {
    return this.lossReason;
  }

  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  /** Starts the renew loop and the self-fence timers. `holderDead`: why the previous holder was judged dead (a takeover on evidence, evidence.ts). */
  start(holderDead?: string): void {
    const { metrics, logger, timings } = this.ctx;
    metrics.setLeader(true);
    metrics.acquired(holderDead ? 'holder-dead' : '');
    logger.info(
      {
        term: this.term,
        leaseTransitions: this.cache.record.leaseTransitions,
        resourceVersion: this.cache.resourceVersion,
        ...(holderDead ? { takeover: 'holder-dead', evidence: holderDead } : {}),
      },
      'Started leading',
    );
    this.scheduleRenew(timings.retryPeriodMs);
    this.scheduleDeadline();
    this.scheduleTick();
  }

  /** True while leadership lasts and the lease is still valid on our own clock. */
  valid(): boolean {
    return !this.aborted && this.withinLease(this.ctx.clock.now());
  }

  /** See LeaderElector.healthy(). */
  healthy(): { ok: boolean; reason?: string } {
    const { clock, timings } = this.ctx;
    const now = clock.now();
    if (!this.aborted) {
      const since = now - this.lastRenewSentAt;
      if (since > timings.leaseDurationMs)
        return { ok: false, reason: `leader has not renewed the Lease for ${Math.round(since)} ms` };
      return { ok: true };
    }
    if (!this.workSettled && this.lostAt !== undefined && now - this.lostAt > timings.leaseDurationMs) {
      return {
        ok: false,
        reason: `guarded work has not stopped ${Math.round(now - this.lostAt)} ms after leadership was lost`,
      };
    }
    return { ok: true };
  }

  /** Reacts to the watch: `lease` is the Lease as now seen, undefined when deleted. */
  observed(lease: LeaseSnapshot | undefined): void {
    if (this.aborted) return;
    if (!lease) {
      // Deleted under us: re-create it at once rather than at the next renew.
      this.scheduleRenew(0);
    } else if (
      lease.record.holderIdentity !== this.ctx.identity &&
      (compareResourceVersions(lease.resourceVersion, this.cache.resourceVersion) ?? 1) > 0
    ) {
      this.stepDown('taken', `the Lease is now held by ${lease.record.holderIdentity || 'nobody'}`);
    }
  }

  stepDown(reason: LossReason, detail?: string): void {
    if (this.aborted) return;
    const { clock, lock, metrics, logger } = this.ctx;
    this.lossReason = reason;
    this.lostAt = clock.now();
    for (const timer of [this.renewTimer, this.deadlineTimer, this.tickTimer]) clock.clearTimeout(timer);
    const message = `stopped leading Lease ${lock.describe()} (term ${this.term}): ${detail ?? reason}`;
    this.controller.abort(new LeadershipLostError(reason, message));
    metrics.setLeader(false);
    metrics.lost(reason);
    const log = reason === 'shutdown' ? logger.info.bind(logger) : logger.warn.bind(logger);
    log({ term: this.term, reason, detail }, 'Stopped leading');
    this.markLost();
  }

  /**
   * Releases the Lease, but only while it is still ours on our own clock: past
   * that bound a successor may hold it, and it lapses within the margin anyway.
   */
  async releaseIfStillOurs(): Promise<void> {
    if (!this.withinLease(this.ctx.clock.now())) return;
    const seen = this.ctx.observer.observation()?.lease;
    await releaseLease(this.ctx, seen && this.ours(seen) ? seen : this.cache);
  }

  /** Our own acquisition's record: our identity and the acquireTime we wrote (another process with our identity writes its own). */
  private ours(lease: LeaseSnapshot): boolean {
    return (
      lease.record.holderIdentity === this.ctx.identity && lease.record.acquireTime === this.cache.record.acquireTime
    );
  }

  private withinLease(now: number): boolean {
    return now - this.lastRenewSentAt < this.ctx.timings.leaseDurationMs - this.ctx.timings.safetyMarginMs;
  }

  private assertValid(): void {
    if (!this.aborted && !this.withinLease(this.ctx.clock.now())) {
      this.stepDown('expired', 'the lease may have expired: no renew was sent recently enough');
    }
    if (this.aborted) {
      const reason: unknown = this.controller.signal.reason;
      throw reason instanceof LeadershipLostError
        ? reason
        : new LeadershipLostError(this.lossReason ?? 'shutdown', 'leadership was lost');
    }
  }

  /** Fires late ⇒ the event loop stalled; leadership cannot be trusted any more. */
  private checkLate(due: number): boolean {
    const late = this.ctx.clock.now() - due;
    if (late > this.ctx.timings.stallThresholdMs) {
      this.stepDown('stalled', `a timer fired ${Math.round(late)} ms late (event loop stalled)`);
      return true;
    }
    return false;
  }

  private scheduleTick(): void {
    const { clock } = this.ctx;
    this.tickDue = clock.now() + this.tickMs;
    this.tickTimer = clock.setTimeout(() => {
      if (this.aborted || this.checkLate(this.tickDue)) return;
      if (!this.withinLease(clock.now())) return this.stepDown('expired');
      this.scheduleTick();
    }, this.tickMs);
  }

  /** The latest instant at which leadership must be dropped without a new renew. */
  private scheduleDeadline(): void {
    const { clock, timings } = this.ctx;
    clock.clearTimeout(this.deadlineTimer);
    const bound = Math.min(timings.renewDeadlineMs, timings.leaseDurationMs - timings.safetyMarginMs);
    this.deadlineDue = this.lastRenewSentAt + bound;
    this.deadlineTimer = clock.setTimeout(() => {
      if (this.aborted || this.checkLate(this.deadlineDue)) return;
      const since = clock.now() - this.lastRenewSentAt;
      if (since >= bound) {
        const reason = since >= timings.renewDeadlineMs ? 'renew-deadline' : 'expired';
        this.stepDown(reason, `could not renew the Lease for ${Math.round(since)} ms`);
      } else {
        this.scheduleDeadline();
      }
    }, this.deadlineDue - clock.now());
  }

  private scheduleRenew(delayMs: number): void {
    const { clock } = this.ctx;
    clock.clearTimeout(this.renewTimer);
    this.renewDue = clock.now() + delayMs;
    this.renewTimer = clock.setTimeout(() => {
      this.renewTimer = undefined;
      void this.renew();
    }, delayMs);
  }

  private async renew(): Promise<void> {
    if (this.aborted || this.renewing) return;
    if (this.checkLate(this.renewDue)) return;
    const { identity, timings, clock, logger, lock, observer, metrics } = this.ctx;
    if (!this.withinLease(clock.now())) return this.stepDown('expired');
    this.renewing = true;
    let sentAt = clock.now();
    try {
      const seen = observer.observation()?.lease;
      // A newer copy of our own record (someone changed only the Lease's metadata) is a better base.
      const base =
        seen && this.ours(seen) && (compareResourceVersions(seen.resourceVersion, this.cache.resourceVersion) ?? -1) > 0
          ? seen
          : this.cache;
      const record: LeaseRecord = {
        ...base.record,
        holderIdentity: identity,
        leaseDurationSeconds: timings.leaseDurationMs / 1000,
        acquireTime: this.cache.record.acquireTime ?? formatMicroTime(clock.wallNow()),
        renewTime: formatMicroTime(clock.wallNow()),
      };
      let snapshot: LeaseSnapshot;
      try {
        snapshot = await lock.update(record, base);
      } catch (err) {
        if (!isCasFailure(err) || this.aborted) throw err;
        // Slow path (as client-go): read the Lease, then renew from what we read.
        metrics.slowPath();
        // Through the observer, so a reset or a write under our identity by
        // another process reaches the elector, which steps us down.
        const fresh = (await observer.refresh()).lease;
        if (this.aborted) return;
        if (fresh && fresh.record.holderIdentity !== identity) {
          return this.stepDown('taken', `the Lease is now held by ${fresh.record.holderIdentity || 'nobody'}`);
        }
        if (fresh && !this.ours(fresh)) {
          return this.stepDown(
            'duplicate-identity',
            `the Lease was written under our identity ${identity} by another process`,
          );
        }
        if (!this.withinLease(clock.now())) return this.stepDown('expired');
        sentAt = clock.now();
        if (fresh) {
          snapshot = await lock.update({ ...record, renewTime: formatMicroTime(clock.wallNow()) }, fresh);
        } else {
          logger.warn({ term: this.term }, 'The Lease was deleted while this process led; re-creating it');
          snapshot = await lock
            .create({ ...record, renewTime: formatMicroTime(clock.wallNow()) })
            .catch((createErr: unknown) => {
              if (statusCode(createErr) === 409)
                this.stepDown('taken', 'the Lease was deleted and re-created by someone else');
              throw createErr;
            });
        }
      }
      metrics.renewDuration((clock.now() - sentAt) / 1000, 'success');
      if (compareResourceVersions(snapshot.resourceVersion, this.cache.resourceVersion) !== -1) this.cache = snapshot;
      observer.record(snapshot);
      if (this.aborted) return;
      this.lastRenewSentAt = Math.max(this.lastRenewSentAt, sentAt);
      this.scheduleDeadline();
    } catch (err) {
      metrics.renewDuration((clock.now() - sentAt) / 1000, 'error');
      if (!this.aborted) {
        // Every renew failure is retried until the renew deadline. A 401/403
        // right after an API-server restart (authn/RBAC caches not loaded yet)
        // is as transient as a 5xx: logged as such, never as a hard failure.
        const code = statusCode(err);
        const authzNotReady = code === 401 || code === 403;
        logger.warn(
          {
            term: this.term,
            err: describeError(err),
            transient: isTransient(err) || authzNotReady,
            ...(authzNotReady
              ? { hint: 'authorization not ready (API server restarting?); retrying until the renew deadline' }
              : {}),
          },
          'Failed to renew the Lease',
        );
      }
    } finally {
      this.renewing = false;
      if (!this.aborted) {
        this.scheduleRenew(Math.max(0, sentAt + timings.retryPeriodMs - clock.now()));
      }
    }
  }
}

/**
 * Gives the Lease up (holder "", duration 1 s, transitions kept), as client-go; only while it still
 * holds `base`'s acquisition (not one made under our identity by another process).
 */
export async function releaseLease(ctx: LeaderContext, base: LeaseSnapshot): Promise<void> {
  const { identity, clock, logger, lock, observer } = ctx;
  let current: LeaseSnapshot | undefined = base;
  for (let attempt = 0; attempt < 3 && current; attempt++) {
    if (current.record.holderIdentity !== identity || current.record.acquireTime !== base.record.acquireTime) return;
    const now = formatMicroTime(clock.wallNow());
    try {
      const released = await lock.update(
        {
          holderIdentity: '',
          leaseDurationSeconds: 1,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: current.record.leaseTransitions,
        },
        current,
      );
      observer.record(released);
      logger.info('Released the Lease');
      return;
    } catch (err) {
      if (!isCasFailure(err)) {
        logger.warn({ err: describeError(err) }, 'Failed to release the Lease; it will expire');
        return;
      }
      current = await lock.get().catch(() => undefined);
    }
  }
}
