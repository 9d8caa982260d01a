// The elector: campaigns for a Lease and, once it holds it, hands it to a
// LeaderTerm (leadership.ts) that renews and fences itself, runs the guarded
// work, and releases the Lease only after that work has stopped. Modelled on
// client-go's tools/leaderelection, with three differences:
// - standbys watch the Lease (LeaseObserver) and act on a local timer at the
//   expiry bound, or at once when the holder releases it — no polling;
// - the leader fences itself on the monotonic clock (leadership.ts);
// - each acquisition gets a fencing term (see token.ts).
import pino, { type Logger } from 'pino';
import type { KubeConfig } from '@kubernetes/client-node';
import { realClock, type Clock, type TimerHandle } from './clock.ts';
import { validateConfig, type LeaderElectionConfig, type ResolvedTimings } from './config.ts';
import {
  KubernetesLeaseLock,
  acquisitionTime,
  describeError,
  isCasFailure,
  type LeaseLock,
  type LeaseRecord,
  type LeaseSnapshot,
} from './lock.ts';
import { LeaderTerm, releaseLease, type LeaderContext, type Leadership, type LossReason } from './leadership.ts';
import { electionMetrics, type ElectionMetrics } from './metrics.ts';
import { restClientMetrics } from '../kube/client-metrics.ts';
import { LeaseObserver, sameRecord, type Observation } from './observer.ts';
import { termProblem } from './token.ts';
import type { HolderEvidence } from './evidence.ts';
import { statusCode } from '../kube/errors.ts';

/** How many of our own acquisitions (their acquireTime) we remember to tell our records from another process's. */
const OWN_ACQUISITIONS_KEPT = 16;

export interface LeaderCallbacks {
  /** Guarded work; must finish soon after leadership.signal aborts (the Lease is released only after). */
  onStartedLeading: (leadership: Leadership) => Promise<void> | void;
  /** Called once the guarded work of a leadership has stopped. */
  onStoppedLeading?: () => void;
  /** Called when this process sees a new holder of the Lease (including itself). */
  onNewLeader?: (identity: string) => void;
}

/** A won acquisition: the Lease as written, when the write was sent, and why the previous holder was judged dead (a takeover on evidence). */
interface Acquired {
  snapshot: LeaseSnapshot;
  sentAt: number;
  holderDead?: string;
}

export class LeaderElector {
  readonly identity: string;
  private readonly config: LeaderElectionConfig;
  private readonly callbacks: LeaderCallbacks;
  private readonly timings: ResolvedTimings;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly lock: LeaseLock;
  private readonly observer: LeaseObserver;
  private readonly leaderContext: LeaderContext;
  private readonly metrics: ElectionMetrics;
  private readonly releaseOnCancel: boolean;
  private readonly evidence: HolderEvidence | undefined;
  private running = false;
  private leading: LeaderTerm | undefined;
  private lastTerm: number | undefined;
  private lastObservation: Observation | undefined;
  private backoffUntil = 0;
  private reportedLeader: string | undefined;
  private wakers = new Set<() => void>();
  /**
   * acquireTime of our recent acquisitions — each one carries a random nonce
   * (lock.ts acquisitionTime) and is added only once its write landed: a record
   * with our identity and another acquireTime is not ours.
   */
  private readonly ownAcquisitions: string[] = [];
  /** The acquireTime of our acquisition in flight: a record carrying it is judged when the write is answered. */
  private pendingAcquisition: string | undefined;
  /** A write under our identity with the pending acquireTime, seen before that answer: ours if the write landed, else a conflict. */
  private deferredConflict: Observation | undefined;
  /** Set while the Lease's resourceVersions cannot be fencing terms: we neither lead nor report ready (token.ts). */
  private termless: { resourceVersion: string; problem: string } | undefined;
  /** Until when (monotonic) another process wrote the Lease under our identity: we neither lead nor report ready. */
  private conflictUntil = -Infinity;
  /** When we last saw the Lease's resourceVersion go back: nobody may be trusted to have stopped before a lease duration. */
  private resetAt: number | undefined;
  /** Whether a failure to record the LeaderElection Event was logged already (it is logged once). */
  private eventFailureLogged = false;

  constructor(config: LeaderElectionConfig, callbacks: LeaderCallbacks) {
    this.timings = validateConfig(config);
    this.config = config;
    this.callbacks = callbacks;
    this.identity = config.identity;
    this.clock = config.clock ?? realClock;
    this.logger = (config.logger ?? pino({ level: 'silent' })).child({
      lease: `${config.namespace}/${config.name}`,
      identity: config.identity,
    });
    this.releaseOnCancel = config.releaseOnCancel ?? true;
    this.evidence = config.evidence;
    this.lock = config.lock ?? this.kubernetesLock(config.kubeConfig);
    this.observer = new LeaseObserver({
      lock: this.lock,
      clock: this.clock,
      logger: this.logger,
      maxBackoffMs: this.timings.retryPeriodMs,
    });
    this.metrics = electionMetrics(config.registry, config.name);
    this.leaderContext = {
      identity: this.identity,
      timings: this.timings,
      clock: this.clock,
      logger: this.logger,
      lock: this.lock,
      observer: this.observer,
      metrics: this.metrics,
    };
  }

  private kubernetesLock(kubeConfig: KubeConfig): LeaseLock {
    return new KubernetesLeaseLock({
      kubeConfig,
      namespace: this.config.namespace,
      name: this.config.name,
      requestTimeoutMs: this.timings.requestTimeoutMs,
      watchTimeoutSeconds: () => Math.round(300 + 300 * Math.random()),
      ...(this.config.registry ? { metrics: restClientMetrics(this.config.registry) } : {}),
    });
  }

  /** The resolved timings (defaults applied). */
  get settings(): Readonly<ResolvedTimings> {
    return this.timings;
  }

  /** True while this process leads and its lease is still valid on its own clock. */
  isLeader(): boolean {
    return this.leading?.valid() ?? false;
  }

  /** The holder of the Lease as last seen by this process; undefined when nobody holds it. */
  currentLeader(): string | undefined {
    return this.observer.observation()?.lease?.record.holderIdentity || undefined;
  }

  /**
   * Liveness. Unhealthy only when this process is stuck: it leads but has not
   * renewed for longer than the renew deadline allows (its timers are not
   * running), or the guarded work did not stop within a lease duration after
   * leadership was lost. A failed renew is not a reason to restart: the
   * replica steps down and campaigns again, so an API-server outage does not
   * turn into a crash loop.
   */
  healthy(): { ok: boolean; reason?: string } {
    return this.leading?.healthy() ?? { ok: true };
  }

  /**
   * Readiness. Not ready while another process writes the Lease under this
   * replica's identity (two replicas configured with the same --identity):
   * this one refuses to lead meanwhile, and a red /readyz makes it visible.
   * Not ready either while the Lease's resourceVersion cannot be a fencing
   * term (≥ 2^53, or not a decimal integer): nobody can lead then.
   */
  ready(): { ok: boolean; reason?: string } {
    if (this.clock.now() < this.conflictUntil) {
      return {
        ok: false,
        reason: `another process holds the Lease under this replica's identity ${JSON.stringify(this.identity)} (duplicate --identity); refusing to lead`,
      };
    }
    if (this.termless) return { ok: false, reason: `${this.termless.problem}; refusing to lead` };
    return { ok: true };
  }

  /**
   * Campaigns until `signal` aborts. On abort: aborts the leadership, waits for
   * onStartedLeading's promise to settle, releases the Lease (when
   * releaseOnCancel), then resolves. It does not reject: a Lease whose
   * resourceVersion cannot be a fencing term makes this replica stand by, not
   * ready, until one can (see ready()), rather than exit on every replica.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error('LeaderElector.run() is already running');
    this.running = true;
    const unsubscribe = this.observer.subscribe((observation) => this.observed(observation));
    // New evidence about the holder (a Pod's status changed) may make the Lease acquirable now.
    const unsubscribeEvidence = this.evidence?.subscribe(() => this.wake());
    const onAbort = () => {
      this.leading?.stepDown('shutdown');
      this.wake();
    };
    signal.addEventListener('abort', onAbort);
    this.observer.start();
    this.logger.info(
      {
        leaseDurationMs: this.timings.leaseDurationMs,
        renewDeadlineMs: this.timings.renewDeadlineMs,
        retryPeriodMs: this.timings.retryPeriodMs,
      },
      'Started campaigning',
    );
    let needFreshView = false;
    try {
      while (!signal.aborted) {
        if (this.backoffUntil > this.clock.now()) {
          await this.waitForChange(this.backoffUntil - this.clock.now(), signal);
          continue;
        }
        if (needFreshView) {
          // After losing leadership the cached view may be stale (we may have
          // been paused): read the Lease before deciding anything, so a woken
          // zombie never writes on the strength of an old resourceVersion.
          needFreshView = !(await this.refreshQuietly(signal));
          continue;
        }
        const won = await this.campaign(signal);
        if (!won) break;
        const problem = termProblem(won.snapshot.resourceVersion);
        if (problem) {
          // Acquired, but the write's resourceVersion cannot be a term: never
          // lead with a wrong one. Give the Lease back and stand by, not ready.
          this.cannotLead(won.snapshot.resourceVersion, problem);
          await releaseLease(this.leaderContext, won.snapshot);
          continue;
        }
        if (signal.aborted) {
          await releaseLease(this.leaderContext, won.snapshot);
          break;
        }
        const reason = await this.lead(
          won.snapshot,
          Number(won.snapshot.resourceVersion),
          won.sentAt,
          signal,
          won.holderDead,
        );
        needFreshView = reason !== 'shutdown';
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      unsubscribe();
      unsubscribeEvidence?.();
      this.observer.stop();
      this.running = false;
      this.logger.info('Stopped campaigning');
    }
  }

  // ---- standby ----------------------------------------------------------------

  private async campaign(signal: AbortSignal): Promise<Acquired | undefined> {
    let backoffUntil = 0;
    while (!signal.aborted) {
      const observation = this.observer.observation();
      const now = this.clock.now();
      if (!observation || this.termless) {
        // No view yet, or no write of ours could yield a fencing term: wait for the Lease to change.
        await this.waitForChange(undefined, signal);
        continue;
      }
      const acquirable = this.acquirableAt(observation);
      const readyAt = Math.max(acquirable.at, backoffUntil);
      if (readyAt > now) {
        await this.waitForChange(readyAt - now, signal);
        continue;
      }
      // Acquirable before the holder's lease ran out only on evidence of its death: say so.
      const holderDead = acquirable.holderDead;
      if (holderDead)
        this.logger.info(
          {
            holder: observation.lease?.record.holderIdentity ?? observation.deletedHolder?.identity,
            evidence: holderDead,
          },
          'The Lease holder is dead: taking the Lease over now, before its lease expires',
        );
      const result = await this.tryAcquire(observation);
      if (result === 'retry-now') continue;
      if (result === 'backoff') {
        backoffUntil = this.clock.now() + this.timings.retryPeriodMs * (1 + 0.2 * Math.random());
        continue;
      }
      return holderDead ? { ...result, holderDead } : result;
    }
    return undefined;
  }

  /**
   * Monotonic time from which this process may try to take the Lease, on its
   * own observation only: when the holder's lease runs out, or at once when
   * there is evidence that the holder's process is dead (evidence.ts) — then
   * with that evidence, judged once per look.
   */
  private acquirableAt(observation: Observation): { at: number; holderDead?: string } {
    // After a reset the Lease's content is from the past: whoever led before
    // it may still act until its lease runs out, whatever the record now says.
    const afterReset = this.resetAt === undefined ? 0 : this.resetAt + this.timings.leaseDurationMs;
    const expires = this.expiresAt(observation);
    if (expires <= afterReset || expires <= this.clock.now()) return { at: Math.max(afterReset, expires) };
    const holderDead = this.holderDeath(observation);
    return holderDead ? { at: afterReset, holderDead } : { at: expires };
  }

  /** When the holder's lease runs out as this process saw it (0: nobody holds it, or we do). */
  private expiresAt(observation: Observation): number {
    const lease = observation.lease;
    if (!lease) {
      // Deleted under a live holder: that holder may still be acting (and will
      // re-create the Lease at its next renew); wait out its lease as we saw it.
      const gone = observation.deletedHolder;
      return gone && gone.identity !== this.identity ? gone.liveUntil : 0;
    }
    const { holderIdentity, leaseDurationSeconds } = lease.record;
    // A record under our identity that we did not write (a previous incarnation
    // of this replica, or another process configured with the same identity)
    // is treated like anyone else's: it may be live.
    if (holderIdentity === '' || this.isOwn(lease.record)) return 0;
    return observation.observedAt + leaseDurationSeconds * 1000;
  }

  /**
   * Why the holder of the observed record (or of the record deleted under it)
   * is dead, on evidence from outside the Lease; undefined without such evidence.
   * The acquisition that follows is a CAS on exactly the record judged.
   */
  private holderDeath(observation: Observation): string | undefined {
    if (!this.evidence) return undefined;
    const record =
      observation.lease?.record ??
      (observation.deletedHolder ? { holderIdentity: observation.deletedHolder.identity } : undefined);
    if (!record || record.holderIdentity === '' || record.holderIdentity === this.identity) return undefined;
    try {
      return this.evidence.deathOf(record);
    } catch (err) {
      this.logger.warn(
        { err: describeError(err) },
        'Could not judge the Lease holder from its Pod; waiting for its lease to expire',
      );
      return undefined;
    }
  }

  private isOwn(record: LeaseRecord): boolean {
    return (
      record.holderIdentity === this.identity &&
      record.acquireTime !== undefined &&
      this.ownAcquisitions.includes(record.acquireTime)
    );
  }

  private rememberAcquisition(acquireTime: string): void {
    this.ownAcquisitions.push(acquireTime);
    if (this.ownAcquisitions.length > OWN_ACQUISITIONS_KEPT) this.ownAcquisitions.shift();
  }

  private async tryAcquire(observation: Observation): Promise<Acquired | 'retry-now' | 'backoff'> {
    // A fresh nonce per acquisition, ours only once the write landed: another
    // process with our identity may send the same millisecond, and only one
    // compare-and-swap wins. Until the answer, a record carrying it that the
    // watch shows first is neither ours nor a conflict (deferredConflict).
    const now = acquisitionTime(this.clock.wallNow());
    const base = observation.lease;
    this.pendingAcquisition = now;
    this.deferredConflict = undefined;
    const record: LeaseRecord = {
      holderIdentity: this.identity,
      leaseDurationSeconds: this.timings.leaseDurationMs / 1000,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: base
        ? base.record.leaseTransitions + (base.record.holderIdentity === this.identity ? 0 : 1)
        : 0,
    };
    const sentAt = this.clock.now();
    try {
      const snapshot = base ? await this.lock.update(record, base) : await this.lock.create(record);
      this.settleAcquisition(now, true);
      this.observer.record(snapshot);
      // Our compare-and-swap won: nobody else holds the Lease under our identity now.
      this.conflictUntil = -Infinity;
      return { snapshot, sentAt };
    } catch (err) {
      // A refusal (4xx: 409 lost the race, 422, 403 …) wrote nothing; a timeout,
      // a dropped connection or a 5xx may have written our record after all.
      const code = statusCode(err);
      this.settleAcquisition(now, code === undefined || code < 400 || code >= 500);
      if (!isCasFailure(err)) {
        this.logger.warn({ err: describeError(err), transient: true }, 'Failed to acquire the Lease; retrying');
        return 'backoff';
      }
      // Someone else wrote first: look again (their write resets our expiry clock).
      this.logger.debug({ err: describeError(err) }, 'Lost the race for the Lease');
      try {
        const fresh = await this.observer.refresh();
        return fresh.lease?.resourceVersion === base?.resourceVersion ? 'backoff' : 'retry-now';
      } catch (refreshErr) {
        this.logger.warn({ err: describeError(refreshErr) }, 'Failed to read the Lease');
        return 'backoff';
      }
    }
  }

  /**
   * The answer to our acquisition came: remember its acquireTime as ours when
   * the write landed (or may have), and judge a record carrying it that the
   * watch showed first — another process's when ours did not land.
   */
  private settleAcquisition(acquireTime: string, landed: boolean): void {
    const deferred = this.deferredConflict;
    this.pendingAcquisition = undefined;
    this.deferredConflict = undefined;
    if (landed) this.rememberAcquisition(acquireTime);
    else if (deferred) this.identityConflict(deferred);
  }

  private async refreshQuietly(signal: AbortSignal): Promise<boolean> {
    try {
      await this.observer.refresh();
      return true;
    } catch (err) {
      this.logger.warn({ err: describeError(err) }, 'Failed to read the Lease');
      await this.waitForChange(this.timings.retryPeriodMs, signal);
      return false;
    }
  }

  private observed(observation: Observation): void {
    const previous = this.lastObservation;
    this.lastObservation = observation;
    if (observation.reset) {
      this.resetAt = this.clock.now();
      this.metrics.reset();
      this.leading?.stepDown(
        'reset',
        `the Lease resourceVersion went back from ${observation.reset.from} to ${observation.reset.to} (etcd restored from a backup without --bump-revision?)`,
      );
    } else if (previous && this.writtenUnderOurIdentity(previous.lease?.record, observation)) {
      // Carrying our acquisition in flight: ours if that write lands (settleAcquisition).
      if (this.pendingAcquisition !== undefined && observation.lease!.record.acquireTime === this.pendingAcquisition)
        this.deferredConflict ??= observation;
      else this.identityConflict(observation);
    }
    this.checkTerm(observation);
    const holder = observation.lease?.record.holderIdentity;
    if (holder && holder !== this.reportedLeader) {
      this.reportedLeader = holder;
      this.logger.info({ leader: holder }, 'Observed a new leader');
      this.safely('onNewLeader', () => this.callbacks.onNewLeader?.(holder));
    }
    this.leading?.observed(observation.lease);
    this.wake();
  }

  /** The record changed to one under our identity that we did not write. */
  private writtenUnderOurIdentity(before: LeaseRecord | undefined, observation: Observation): boolean {
    const record = observation.lease?.record;
    return record?.holderIdentity === this.identity && !(before && sameRecord(before, record)) && !this.isOwn(record);
  }

  private identityConflict(observation: Observation): void {
    const record = observation.lease!.record;
    const now = this.clock.now();
    this.metrics.identityConflict();
    if (now >= this.conflictUntil) {
      this.logger.error(
        {
          acquireTime: record.acquireTime,
          renewTime: record.renewTime,
          resourceVersion: observation.lease!.resourceVersion,
        },
        `Another process wrote the Lease under this replica's identity ${JSON.stringify(this.identity)}: two replicas are configured with the same --identity; refusing to lead while it holds the Lease (give every replica its own identity)`,
      );
    }
    this.conflictUntil = Math.max(this.conflictUntil, observation.observedAt + record.leaseDurationSeconds * 1000);
    this.leading?.stepDown('duplicate-identity', `another process wrote the Lease under our identity ${this.identity}`);
  }

  /**
   * Whether the Lease, as now seen, could still yield a fencing term: a
   * resourceVersion ≥ 2^53 or not decimal makes every later write's one
   * unusable too (revisions only grow), so nobody campaigns until one that is
   * usable shows up again (an etcd restore, another storage).
   */
  private checkTerm(observation: Observation): void {
    const resourceVersion = observation.lease?.resourceVersion ?? observation.resourceVersion;
    if (resourceVersion === undefined) return;
    const problem = termProblem(resourceVersion);
    if (problem) {
      this.cannotLead(resourceVersion, problem);
    } else if (this.termless) {
      this.logger.info(
        { resourceVersion, previousResourceVersion: this.termless.resourceVersion },
        'The Lease resourceVersion can be a fencing term again; campaigning',
      );
      this.termless = undefined;
    }
  }

  /**
   * No write of ours can yield a fencing term now: one error log per episode,
   * not ready, no campaign. A leader keeps its term (it is a right one) until it
   * loses the Lease; it cannot acquire again.
   */
  private cannotLead(resourceVersion: string, problem: string): void {
    if (!this.termless) {
      this.logger.error(
        { resourceVersion, ...(this.leading ? { term: this.leading.term } : {}) },
        `Cannot lead: ${problem}. This replica stays up, does not take the Lease and reports not ready until the Lease shows a resourceVersion that can be a term (an etcd restore, another storage); it never leads with another term`,
      );
    }
    this.termless = { resourceVersion, problem };
  }

  // ---- leader -----------------------------------------------------------------

  private async lead(
    snapshot: LeaseSnapshot,
    termNumber: number,
    sentAt: number,
    runSignal: AbortSignal,
    holderDead?: string,
  ): Promise<LossReason> {
    if (this.lastTerm !== undefined && termNumber <= this.lastTerm) {
      // Only possible when resourceVersions went back (etcd restored without
      // --bump-revision). Refusing would gain nothing — a restarted process
      // remembers no previous term — so lead, loudly: the new term is above
      // every term recorded in the restored data, not above ones issued since
      // the backup (docs/concepts.md: "After an etcd restore").
      if (this.resetAt === undefined) this.metrics.reset();
      this.logger.warn(
        { term: termNumber, previousTerm: this.lastTerm },
        'Leading with a lower fencing term than this process had before: the Lease resourceVersion went back (etcd restored from a backup without --bump-revision?)',
      );
    }
    this.lastTerm = termNumber;
    const term = new LeaderTerm(this.leaderContext, termNumber, snapshot, sentAt);
    this.leading = term;
    term.start(holderDead);
    this.recordBecameLeader(snapshot, termNumber);
    if (runSignal.aborted) term.stepDown('shutdown');

    let work: Promise<void>;
    try {
      work = Promise.resolve(this.callbacks.onStartedLeading(term.leadership));
    } catch (err) {
      work = Promise.reject(err);
    }
    const settled = work.then(
      () => this.logger.debug({ term: termNumber }, 'Guarded work returned'),
      (err: unknown) => {
        this.logger.error({ term: termNumber, err: describeError(err) }, 'Guarded work failed');
        term.stepDown('work-failed', `guarded work failed: ${describeError(err)}`);
      },
    );
    await term.lost;
    await settled;
    term.workSettled = true;
    this.logger.info({ term: termNumber, reason: term.reason }, 'Guarded work stopped');
    this.safely('onStoppedLeading', () => this.callbacks.onStoppedLeading?.());
    // After a failure of the guarded work, let another replica try first.
    const release = (term.reason === 'shutdown' && this.releaseOnCancel) || term.reason === 'work-failed';
    if (term.reason === 'work-failed') this.backoffUntil = this.clock.now() + this.timings.leaseDurationMs;
    if (release) await term.releaseIfStillOurs();
    this.leading = undefined;
    return term.reason ?? 'shutdown';
  }

  /**
   * The Event client-go records on the Lease ("<identity> became leader",
   * reason LeaderElection), fire and forget: never awaited, so it can neither
   * delay nor fail leadership. The first failure is logged as a warning (a
   * missing RBAC rule, typically), later ones at debug level.
   */
  private recordBecameLeader(snapshot: LeaseSnapshot, term: number): void {
    const recordEvent = this.lock.recordEvent?.bind(this.lock);
    if (!recordEvent) return;
    let pending: Promise<void>;
    try {
      pending = recordEvent(snapshot, this.identity, 'became leader');
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      () => this.logger.debug({ term }, 'Recorded the LeaderElection Event on the Lease'),
      (err: unknown) => {
        const first = !this.eventFailureLogged;
        this.eventFailureLogged = true;
        const log = first ? this.logger.warn.bind(this.logger) : this.logger.debug.bind(this.logger);
        log(
          { term, err: describeError(err) },
          'Could not record the LeaderElection Event on the Lease (needs create on events in its namespace); leadership is not affected',
        );
      },
    );
  }

  // ---- plumbing ---------------------------------------------------------------

  private wake(): void {
    const wakers = [...this.wakers];
    this.wakers.clear();
    for (const w of wakers) w();
  }

  /** Resolves on the next observation, after `ms` (if given), or on abort. */
  private waitForChange(ms: number | undefined, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let timer: TimerHandle | undefined;
      const done = () => {
        this.clock.clearTimeout(timer);
        this.wakers.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      if (ms !== undefined) timer = this.clock.setTimeout(done, ms);
      this.wakers.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private safely(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err: describeError(err) }, `${what} callback threw`);
    }
  }
}
