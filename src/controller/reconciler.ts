// reconcile(key): read the SingletonJob and its runs, make one decision, act.
// Level-based: every pass re-derives what to do from the object, the Job of
// its active run and that Job's Pods, so a pass interrupted at any point (a
// crash, a lost lease, a conflict) is finished by the next pass or the next
// leader. Safety never rests on the cache:
// - every status write carries the resourceVersion it was computed from (CAS)
//   and the leader's term, which CEL refuses to lower;
// - a run is reserved in status before its Job exists, and its Job has one
//   possible name, so a second create is AlreadyExists;
// - a run is finished (and the next one may start) only after a live list
//   shows every Pod of it terminal.
import type { BatchV1Api, CoreV1Api, CustomObjectsApi, V1Job } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, Keys, PLURAL, VERSION, singletonJobSchema } from '../api/v1alpha1/singletonjob.ts';
import type { ActiveRun, FinishedRun, SingletonJob, SingletonJobStatus } from '../api/v1alpha1/singletonjob.ts';
import type { Leadership } from '../election/index.ts';
import { isConflict, isInvalid, apiMessage } from '../kube/errors.ts';
import { deleteStrays, prune } from './cleanup.ts';
import { deleteJob, deletePods, podsTerminal, readJob, readSingletonJob, runningPods, unsuspend } from './cluster.ts';
import { leaseKey } from './contention.ts';
import type { LeaseLiveness, LeaseRef, Liveness } from './contention.ts';
import type { EventRecorder } from './events.ts';
import { belongsToRun, buildJob, isOwnedBy, jobOutcome, jobToken } from './jobs.ts';
import type { ControllerMetrics } from './metrics.ts';
import { manualRunName, scheduledRunName } from './naming.ts';
import { dueSlots, parseSchedule, ScheduleError } from './schedule.ts';
import type { DueSlots } from './schedule.ts';
import { healthyReadiness, nextToken, readyCondition, recordFinished, setCondition, setReady, toDate, TokenExhaustedError, newerThan } from './status.ts';
import type { Readiness } from './status.ts';
import { slimInPlace } from '../kube/slim.ts';

export interface Result {
  /** Reconcile again after this many ms (0 = as soon as possible); absent = wait for a change. */
  requeueAfterMs?: number;
}

export interface Cache<T> {
  get(key: string): T | undefined;
  list(): T[];
  /** Objects by the cache's index: for Jobs, the owner-uid label (the SingletonJob's UID). */
  byIndex(value: string): T[];
}

export interface ReconcilerDeps {
  custom: CustomObjectsApi;
  batch: BatchV1Api;
  core: CoreV1Api;
  events: EventRecorder;
  singletonJobs: Cache<SingletonJob>;
  jobs: Cache<V1Job>;
  leadership: Leadership;
  logger: Logger;
  metrics: ControllerMetrics;
  now: () => Date;
  /**
   * This installation's Lease and its duration: recorded in every status
   * write (status.leaderLease) so another installation knows whose object it
   * is. Absent (tests of one controller) = contention is not judged.
   */
  lease?: LeaseRef & { durationMs: number };
  /** Judges other installations' Leases; required with `lease`. */
  leases?: LeaseLiveness;
  /** First retry delay of a failed attempt (doubles per attempt, at most 6 min); default 10 s like the Job controller. */
  retryBackoffMs?: number;
  /** Monotonic clock (ms), for waiting on a term nobody follows up. */
  monotonicNow?: () => number;
}

const CONTENDED = 'Contended';

/** The object changed under us: re-read it and decide again. */
class StaleError extends Error {}

const POLL_MS = 1000;
/** While a due run is held (Forbid), the active run is re-checked live this often. */
const HOLD_POLL_MS = 2000;
/**
 * Every object is reconciled at least this often, and at least at its next due
 * slot: the leader never waits on a watch event alone (a stale cache after an
 * API-server restart or a half-open connection must not stall scheduling).
 */
const MAX_IDLE_MS = 60_000;
const MAX_ATTEMPTS = 3;

export class Reconciler {
  private readonly d: ReconcilerDeps;
  /** Our own last status write per key: the cache may not show it yet (read-your-writes). */
  private readonly written = new Map<string, SingletonJob>();
  /** Decisions already announced by an Event, so a waiting run does not repeat them every pass. */
  private readonly announced = new Map<string, string>();
  /**
   * This leader's fencing term: the acquisition's, raised to the revision of
   * its newest Lease renew when it takes an object over from a gone
   * installation whose term was higher (contention.ts). Only ever raised.
   */
  private term: number;
  /** Objects this installation stands by for (another installation acts on them): the contended gauge. */
  private readonly standingBy = new Set<string>();
  /** Monotonic ms since a term above ours with no Lease recorded was first seen, per key. */
  private readonly unclaimedSince = new Map<string, number>();

  constructor(deps: ReconcilerDeps) {
    this.d = deps;
    this.term = deps.leadership.term;
  }

  async reconcile(key: string): Promise<Result> {
    let sj = this.freshest(key);
    for (let attempt = 1; sj; attempt++) {
      if (sj.metadata?.deletionTimestamp) return {};
      try {
        return this.atLeastAtNextSlot(sj, await this.converge(key, sj));
      } catch (err) {
        if (!(err instanceof StaleError || isConflict(err)) || attempt >= MAX_ATTEMPTS) throw err;
        sj = await readSingletonJob(this.d, key);
      }
    }
    this.written.delete(key);
    this.announced.delete(key);
    this.unclaimedSince.delete(key);
    this.setStandingBy(key, false);
    return {};
  }

  /** Caps a result's requeue at the object's next slot (and MAX_IDLE_MS), so no pass ends with "wait for a change" only. */
  private atLeastAtNextSlot(sj: SingletonJob, result: Result): Result {
    let bound = MAX_IDLE_MS;
    if (sj.spec?.schedule && !sj.spec.suspend) {
      try {
        const now = this.d.now();
        bound = Math.min(bound, Math.max(0, parseSchedule(sj.spec.schedule, sj.spec.timeZone).next(now).getTime() - now.getTime()) + 5);
      } catch {
        // An invalid schedule is reported by validate(); MAX_IDLE_MS applies.
      }
    }
    return { requeueAfterMs: Math.min(bound, result.requeueAfterMs ?? Infinity) };
  }

  /** The cache has delivered `obj`: our own copy of a write it now contains is no longer needed (memory). */
  observed(key: string, obj: SingletonJob | undefined): void {
    const ours = this.written.get(key);
    if (ours && (!obj || !newerThan(ours.metadata?.resourceVersion, obj.metadata?.resourceVersion))) this.written.delete(key);
  }

  private freshest(key: string): SingletonJob | undefined {
    const cached = this.d.singletonJobs.get(key);
    const ours = this.written.get(key);
    if (!cached) return undefined;
    if (ours && ours.metadata?.uid === cached.metadata?.uid && newerThan(ours.metadata?.resourceVersion, cached.metadata?.resourceVersion)) return ours;
    if (ours) this.written.delete(key); // the cache has caught up (or the object was replaced)
    return cached;
  }

  private async converge(key: string, sj: SingletonJob): Promise<Result> {
    const { leadership, logger } = this.d;
    const now = this.d.now();
    const status = sj.status ?? {};
    const log = logger.child({ object: key, term: this.term });
    const claimed = await this.claim(key, sj, log);
    if (claimed) return claimed;
    leadership.signal.throwIfAborted();
    if (await this.clearStaleContender(key, sj)) return { requeueAfterMs: 0 };

    const problem = this.validate(sj);
    const schedule = !problem && sj.spec.schedule ? parseSchedule(sj.spec.schedule, sj.spec.timeZone) : undefined;
    const since = toDate(status.lastScheduleTime) ?? toDate(sj.metadata?.creationTimestamp) ?? now;
    const due = schedule && !sj.spec.suspend ? dueSlots(schedule, since, now, sj.spec.startingDeadlineSeconds) : undefined;
    const untilNext = due ? Math.max(0, due.next.getTime() - now.getTime()) + 5 : undefined;
    const requestId = sj.metadata?.annotations?.[Keys.runNow]?.trim().slice(0, 253);
    const manual = !problem && requestId && requestId !== status.lastManualRequestId ? requestId : undefined;
    if (status.activeRun) {
      // A run is waiting on the active one: decide from a live read of its Job,
      // never from the cache alone (a watch may be stale; waiting on it would
      // hold the slot until the watch recovers).
      const waiting = Boolean(due?.slot || manual);
      const tracked = await this.trackActiveRun(key, sj, status.activeRun, log, waiting);
      if (tracked) return tracked;
    }
    // Strays are deleted on the way; they do not hold scheduling (a stray's
    // Pod that still runs holds the next run through startRun's Pod check).
    await deleteStrays(this.d, key, sj);
    if (problem) {
      await this.updateReady(sj, problem);
      return {};
    }

    if (due && !due.slot && due.skipped > 0) return this.recordSkipped(sj, due, 'missed its starting deadline');
    const wanted = due?.slot ? { kind: 'Scheduled' as const, slot: due.slot } : manual ? { kind: 'Manual' as const, requestId: manual } : undefined;

    const active = status.activeRun;
    if (wanted && active) {
      const what = wanted.kind === 'Scheduled' ? `slot ${wanted.slot.toISOString()}` : `manual request "${wanted.requestId}"`;
      if ((sj.spec.concurrencyPolicy ?? 'Forbid') === 'Forbid') {
        await this.announceOnce(sj, `held:${active.name}:${what}`, 'Normal', 'RunHeld', `Run for ${what} waits: run ${active.name} (token ${active.token}) is still in flight (concurrencyPolicy Forbid)`);
        // Poll: the active run is re-checked live on the next pass (its end may
        // never reach a stale cache), and the held slot is re-judged at its deadline.
        const untilDeadline = due?.deadline ? due.deadline.getTime() - now.getTime() + 5 : undefined;
        return { requeueAfterMs: Math.max(0, Math.min(HOLD_POLL_MS, untilDeadline ?? HOLD_POLL_MS)) };
      }
      await this.write(key, sj, (s) => {
        s.activeRun = { ...active, replacing: true };
      });
      await this.d.events.emit(sj, 'Normal', 'RunReplacing', `Replacing run ${active.name} (token ${active.token}) for ${what}: deleting its Job and waiting until its Pods are gone (concurrencyPolicy Replace)`);
      return { requeueAfterMs: 0 };
    }
    if (wanted) return this.startRun(key, sj, wanted, due);
    if (await this.updateReady(sj, healthyReadiness(sj))) return { requeueAfterMs: 0 };
    await prune(this.d, sj, log);
    return untilNext !== undefined ? { requeueAfterMs: untilNext } : {};
  }

  /** Problems only the operator can see (the CRD schema catches the rest). */
  private validate(sj: SingletonJob): Readiness | undefined {
    const parsed = singletonJobSchema.safeParse(sj);
    if (!parsed.success) {
      const message = parsed.error.issues.map((i) => `${i.path.join('.') || 'object'}: ${i.message}`).join('; ');
      return { ready: false, reason: 'InvalidSpec', message };
    }
    if (sj.spec.schedule) {
      try {
        parseSchedule(sj.spec.schedule, sj.spec.timeZone);
      } catch (err) {
        if (err instanceof ScheduleError) return { ready: false, reason: err.reason, message: err.message };
        throw err;
      }
    }
    // A template the API server refused stays refused until the spec changes.
    const ready = sj.status ? readyCondition(sj.status) : undefined;
    if (ready?.status === 'False' && ready.reason === 'JobRejected' && ready.observedGeneration === sj.metadata?.generation) {
      return { ready: false, reason: ready.reason, message: ready.message };
    }
    return undefined;
  }

  /** Follows the active run to its end; returns a result while it still needs attention, undefined while it simply runs. */
  private async trackActiveRun(key: string, sj: SingletonJob, run: ActiveRun, log: Logger, live = false): Promise<Result | undefined> {
    const namespace = sj.metadata!.namespace!;
    const cached = live || run.replacing ? undefined : this.d.jobs.get(`${namespace}/${run.name}`);
    let job = cached ?? (await readJob(this.d, namespace, run.name));
    if (job && run.jobUID && job.metadata?.uid !== run.jobUID) {
      // The run's recorded Job was deleted (by a person, a TTL, a deposed
      // leader's cleanup) and another Job now has its name: a deposed
      // leader's delayed create, or `kubectl replace --force`. It is never
      // adopted or released — that would be a second run of the same slot
      // with the same token while the first run's Pods may still be
      // terminating. It goes, and the run ends as if its Job were gone.
      if (isOwnedBy(job, sj) && !job.metadata?.deletionTimestamp) {
        await deleteJob(this.d, job);
        await this.d.events.emit(sj, 'Warning', 'DuplicateJobDeleted', `Deleted Job ${run.name} (uid ${job.metadata?.uid}, token ${jobToken(job) ?? 'none'}): run ${run.name} (token ${run.token}) recorded Job uid ${run.jobUID}, which was deleted; a Job re-created under a run's name is never adopted`);
      }
      job = undefined;
    }
    if (!job) {
      if (!run.jobUID) {
        // Reserved, Job not created (or not yet visible). A replaced
        // reservation simply ends: a late create of it would be a stray.
        if (run.replacing) return this.finish(key, sj, run, 'Replaced');
        const wait = (toDate(run.notBefore)?.getTime() ?? 0) - this.d.now().getTime();
        if (wait > 0) return { requeueAfterMs: wait + 5 };
        return this.createReservedJob(key, sj, run, log);
      }
      // The Job is gone: the run ends once no Pod of this SingletonJob can
      // run any more — including Pods with a deletionTimestamp that are not
      // terminal yet. Replace cancels the run, so Pods of the run that the
      // Job left behind (orphaned) are deleted too.
      const running = await runningPods(this.d, sj, run);
      if (running.length) {
        // Replace never assumes the garbage collector removes them (it may
        // have missed the Job's deletion, e.g. across an etcd restart): it
        // cancels them and waits until the live list shows them terminal or
        // gone. A Job someone else deleted (maybe orphaning its Pods on
        // purpose) ends once its Pods have.
        const lingering = run.replacing ? running.filter((p) => !p.metadata?.deletionTimestamp && belongsToRun(p, run)) : [];
        if (lingering.length) {
          log.info({ run: run.name, pods: lingering.map((p) => p.metadata?.name) }, 'Deleting Pods left behind by the ended run');
          await deletePods(this.d, lingering);
        }
        return { requeueAfterMs: POLL_MS };
      }
      return this.finish(key, sj, run, run.replacing ? 'Replaced' : 'Deleted');
    }
    if (!isOwnedBy(job, sj) || jobToken(job) !== run.token) {
      // The run's name is held by a Job that is not this run's and never was
      // (its UID was never recorded): a person's Job, or one a deleted
      // predecessor object orphaned. The run cannot get its Job; it ends
      // (Failed) and the schedule goes on — a name can never wedge the object.
      const message = `Job ${run.name} already exists and does not belong to run ${run.name} (token ${run.token}): the run ended without running; delete or rename that Job`;
      await this.d.events.emit(sj, 'Warning', 'JobNameTaken', message);
      return this.finish(key, sj, run, 'Failed');
    }
    if (!run.jobUID) {
      // A predecessor created this run's Job but did not get to record it.
      // (It never ran: a Job runs only once its UID is recorded.)
      await this.write(key, sj, (s) => {
        s.activeRun = { ...run, jobUID: job.metadata!.uid! };
      });
      return { requeueAfterMs: 0 };
    }
    if (job.spec?.suspend && !run.replacing && !jobOutcome(job)) {
      // Recorded as this run's Job (by us or a predecessor that stopped before
      // unsuspending it): let it start.
      await unsuspend(this.d, job);
      return { requeueAfterMs: POLL_MS };
    }
    const outcome = jobOutcome(job);
    if (outcome) {
      if (!(await podsTerminal(this.d, sj, run))) return { requeueAfterMs: POLL_MS };
      if (outcome === 'Failed' && !run.replacing && (run.attempt ?? 1) <= (sj.spec.jobTemplate.spec?.backoffLimit ?? 0)) return this.retry(key, sj, run);
      return this.finish(key, sj, run, run.replacing ? 'Replaced' : outcome, toDate(job.status?.completionTime));
    }
    if (run.replacing) {
      if (!job.metadata?.deletionTimestamp) await deleteJob(this.d, job);
      return { requeueAfterMs: POLL_MS };
    }
    return undefined;
  }

  /**
   * A failed attempt with retry budget left: the next attempt is a new
   * reservation — a new Job name and a new, higher token — so a Pod that only
   * looked failed (a partitioned node) and its successor never share a token.
   * Recorded with the same CAS as a run; its Job is created after the backoff.
   */
  private async retry(key: string, sj: SingletonJob, run: ActiveRun): Promise<Result> {
    const attempt = (run.attempt ?? 1) + 1;
    let token: number;
    try {
      token = nextToken(sj.status ?? {}, this.term, sj.metadata?.resourceVersion);
    } catch (err) {
      if (!(err instanceof TokenExhaustedError)) throw err;
      return this.finish(key, sj, run, 'Failed', undefined, { ready: false, reason: 'TokenExhausted', message: err.message });
    }
    const now = this.d.now();
    const delay = Math.min((this.d.retryBackoffMs ?? 10_000) * 2 ** (attempt - 2), 360_000);
    const name = run.kind === 'Scheduled' ? scheduledRunName(sj.metadata!.name!, new Date(run.slot!), attempt) : manualRunName(sj.metadata!.name!, run.requestId!, token);
    const next: ActiveRun = { name, token, term: this.term, kind: run.kind, attempt, reservedTime: now.toISOString(), notBefore: new Date(now.getTime() + delay).toISOString() };
    if (run.slot) next.slot = run.slot;
    if (run.requestId !== undefined) next.requestId = run.requestId;
    await this.write(key, sj, (s) => {
      recordFinished(s, run, 'Failed', now);
      s.activeRun = next;
      s.currentToken = token;
    });
    this.d.metrics.runsFinished.inc({ outcome: 'Failed' });
    const budget = (sj.spec.jobTemplate.spec?.backoffLimit ?? 0) + 1;
    await this.d.events.emit(sj, 'Warning', 'RunRetrying', `Attempt ${attempt - 1} of run ${run.name} (token ${run.token}) failed; attempt ${attempt} of ${budget} starts in ${Math.round(delay / 1000)} s as Job ${name} with fencing token ${token}`);
    return { requeueAfterMs: delay + 5 };
  }

  private async startRun(key: string, sj: SingletonJob, wanted: { kind: 'Scheduled'; slot: Date } | { kind: 'Manual'; requestId: string }, due: DueSlots | undefined): Promise<Result> {
    const status = sj.status ?? {};
    let token: number;
    try {
      token = nextToken(status, this.term, sj.metadata?.resourceVersion);
    } catch (err) {
      if (!(err instanceof TokenExhaustedError)) throw err;
      await this.updateReady(sj, { ready: false, reason: 'TokenExhausted', message: err.message });
      return {};
    }
    // Forbid across all runs, not just the last one: a Pod left by any earlier
    // or stray run of this namespace/name — also of a deleted predecessor
    // object with the same name — that can still run holds the new run.
    if (!(await podsTerminal(this.d, sj))) return { requeueAfterMs: POLL_MS };
    const name = wanted.kind === 'Scheduled' ? scheduledRunName(sj.metadata!.name!, wanted.slot) : manualRunName(sj.metadata!.name!, wanted.requestId, token);
    const run: ActiveRun = { name, token, term: this.term, kind: wanted.kind, reservedTime: this.d.now().toISOString() };
    if (wanted.kind === 'Scheduled') run.slot = wanted.slot.toISOString();
    else run.requestId = wanted.requestId;
    const skipped = wanted.kind === 'Scheduled' && due ? due.skipped : 0;
    // Reserve first: once this CAS succeeds the run exists, whoever creates its Job.
    const reserved = await this.write(key, sj, (s) => {
      s.activeRun = run;
      s.currentToken = token;
      if (run.slot) s.lastScheduleTime = run.slot;
      if (run.requestId) s.lastManualRequestId = run.requestId;
      if (skipped > 0) s.skippedSlots = (s.skippedSlots ?? 0) + skipped;
      if (skipped > 0 && due?.lastSkipped) s.lastSkippedSlot = due.lastSkipped.toISOString();
      setReady(s, healthyReadiness(sj), sj.metadata?.generation, this.d.now());
    });
    this.d.logger.info({ object: key, run: name, token, term: this.term }, 'Reserved run');
    if (skipped > 0) {
      this.d.metrics.slotsSkipped.inc(skipped);
      await this.d.events.emit(sj, 'Warning', 'SlotsSkipped', `Skipped ${skipped}${due?.skippedAtLeast ? '+' : ''} missed slot(s) before ${run.slot}: only the latest due slot runs`);
    }
    await testPauseAfterReserve(this.d.logger, key, name);
    return this.createReservedJob(key, reserved, run, this.d.logger.child({ object: key }), true);
  }

  /** Creates the Job of a reserved run: ours just now, or one a predecessor reserved and did not create. */
  private async createReservedJob(key: string, sj: SingletonJob, run: ActiveRun, log: Logger, justReserved = false): Promise<Result> {
    if (!justReserved) {
      // Someone else's reservation, seen through a cache: make sure it is
      // still the current state before acting on it (the run may have ended
      // and its Job been pruned since).
      const live = await readSingletonJob(this.d, key);
      if (!live || live.metadata?.resourceVersion !== sj.metadata?.resourceVersion) throw new StaleError();
    }
    let job: V1Job;
    try {
      job = await this.d.batch.createNamespacedJob({ namespace: sj.metadata!.namespace!, body: buildJob(sj, run, { suspended: true }) });
      this.d.metrics.runsStarted.inc();
      await this.d.events.emit(sj, 'Normal', 'RunStarted', `Started run ${run.name} with fencing token ${run.token} (${run.slot ? `slot ${run.slot}` : `manual request "${run.requestId}"`}, leader term ${run.term})`);
    } catch (err) {
      if (isInvalid(err)) {
        const message = `The API server refused Job ${run.name}: ${apiMessage(err)}`;
        await this.d.events.emit(sj, 'Warning', 'JobRejected', message);
        return this.finish(key, sj, run, 'Failed', undefined, { ready: false, reason: 'JobRejected', message });
      }
      if (!isConflict(err)) throw err;
      // AlreadyExists: the next pass adopts it if it is this run's Job.
      log.info({ run: run.name }, 'Job of the reserved run already exists');
      return { requeueAfterMs: 0 };
    }
    // Record the Job as this run's (CAS, fenced by the term), and only then
    // let it start: a Job nobody recorded never gets a Pod.
    await this.write(key, sj, (s) => {
      s.activeRun = { ...run, jobUID: job.metadata!.uid! };
    });
    await unsuspend(this.d, job);
    return {};
  }

  private async finish(key: string, sj: SingletonJob, run: ActiveRun, outcome: FinishedRun['outcome'], completion?: Date, readiness?: Readiness): Promise<Result> {
    await this.write(key, sj, (s) => {
      recordFinished(s, run, outcome, this.d.now(), completion);
      if (readiness) setReady(s, readiness, sj.metadata?.generation, this.d.now());
    });
    this.d.metrics.runsFinished.inc({ outcome });
    const verb = { Succeeded: 'succeeded', Failed: 'failed', Replaced: 'was replaced', Deleted: 'ended because its Job was deleted' }[outcome];
    await this.d.events.emit(sj, outcome === 'Succeeded' || outcome === 'Replaced' ? 'Normal' : 'Warning', 'RunFinished', `Run ${run.name} (token ${run.token}) ${verb}`);
    return { requeueAfterMs: 0 };
  }

  private async recordSkipped(sj: SingletonJob, due: DueSlots, why: string): Promise<Result> {
    const key = `${sj.metadata!.namespace}/${sj.metadata!.name}`;
    await this.write(key, sj, (s) => {
      s.lastScheduleTime = due.latest!.toISOString();
      s.lastSkippedSlot = (due.lastSkipped ?? due.latest!).toISOString();
      s.skippedSlots = (s.skippedSlots ?? 0) + due.skipped;
    });
    this.d.metrics.slotsSkipped.inc(due.skipped);
    await this.d.events.emit(sj, 'Warning', 'SlotsSkipped', `Skipped ${due.skipped}${due.skippedAtLeast ? '+' : ''} slot(s), the latest ${due.latest!.toISOString()}: it ${why} (startingDeadlineSeconds ${sj.spec.startingDeadlineSeconds})`);
    return { requeueAfterMs: 0 };
  }

  /** Writes Ready when it changed; returns whether it wrote. */
  private async updateReady(sj: SingletonJob, r: Readiness): Promise<boolean> {
    const probe: SingletonJobStatus = structuredClone(sj.status ?? {});
    const generationSeen = sj.status?.observedGeneration === sj.metadata?.generation;
    if (!setReady(probe, r, sj.metadata?.generation, this.d.now()) && generationSeen) return false;
    const key = `${sj.metadata!.namespace}/${sj.metadata!.name}`;
    await this.write(key, sj, (s) => void setReady(s, r, sj.metadata?.generation, this.d.now()));
    if (!r.ready) await this.d.events.emit(sj, 'Warning', r.reason, r.message);
    return true;
  }

  private async announceOnce(sj: SingletonJob, id: string, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const key = `${sj.metadata!.namespace}/${sj.metadata!.name}`;
    if (this.announced.get(key) === id) return;
    this.announced.set(key, id);
    await this.d.events.emit(sj, type, reason, message);
  }

  /**
   * Whose object is this? Returns a result when this leader must not act on
   * it now (see contention.ts for the rule); undefined when it may.
   */
  private async claim(key: string, sj: SingletonJob, log: Logger): Promise<Result | undefined> {
    const status = sj.status ?? {};
    const theirTerm = status.leaderTerm ?? 0;
    const theirs = status.leaderLease;
    const mine = this.d.lease ? leaseKey(this.d.lease) : undefined;
    if (mine && theirs && theirs !== mine && this.d.leases) {
      const other = await this.d.leases.check(theirs);
      if (other.alive) return this.standBy(key, sj, theirs, other, log);
      this.setStandingBy(key, false);
      return this.takeOver(key, sj, theirTerm, `the installation of Lease ${theirs} that last wrote it has gone: ${other.why}`, log);
    }
    this.setStandingBy(key, false);
    if (theirTerm <= this.term) {
      this.unclaimedSince.delete(key);
      return undefined;
    }
    if (!mine || theirs === mine) {
      // A newer leader of this installation has written: we are deposed, and
      // anything we wrote would be refused anyway.
      log.warn({ leaderTerm: theirTerm }, 'Left alone: a newer leader has written this object');
      return {};
    }
    // A term above ours and no Lease named (written before status.leaderLease
    // existed, or by hand): if a newer leader of ours wrote it we lose our
    // Lease within one lease duration; if we still lead after that, nobody
    // live wrote it and we take it over.
    const now = (this.d.monotonicNow ?? (() => performance.now()))();
    const since = this.unclaimedSince.get(key) ?? now;
    this.unclaimedSince.set(key, since);
    const left = this.d.lease!.durationMs - (now - since);
    if (left > 0) return { requeueAfterMs: left + 5 };
    return this.takeOver(key, sj, theirTerm, `status.leaderTerm ${theirTerm} names no Lease, and no newer leader of this installation has appeared for a lease duration`, log);
  }

  /** Another installation acts on it: leave it, and say so on the object once. */
  private async standBy(key: string, sj: SingletonJob, theirs: string, other: Liveness, log: Logger): Promise<Result> {
    const mine = leaseKey(this.d.lease!);
    if (!this.standingBy.has(key)) log.warn({ otherLease: theirs, otherHolder: other.holder }, 'Another installation claims this object; leaving it to that installation while its Lease is alive');
    this.setStandingBy(key, true);
    const status = sj.status ?? {};
    const message = `Also claimed by the installation of Lease ${mine} (leader ${this.d.leadership.identity}), which leaves it to the installation of Lease ${theirs} that acts on it (${other.why}). Run one installation per namespace: give installations disjoint --watch-namespaces.`;
    const noted = status.conditions?.find((c) => c.type === CONTENDED);
    if (status.contender !== mine || noted?.status !== 'True' || noted.message !== message) {
      // A bystander's note: leaderTerm and leaderLease stay as they are (the
      // CEL rule allows an equal term), run state is not touched, and the CAS
      // makes it harmless to the actor (it re-reads on 409).
      const next: SingletonJobStatus = structuredClone(status);
      next.contender = mine;
      setCondition(next, { type: CONTENDED, status: 'True', reason: 'ClaimedByAnotherInstallation', message }, sj.metadata?.generation, this.d.now());
      const [namespace, name] = key.split('/') as [string, string];
      try {
        await this.d.custom.replaceNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name, body: { ...sj, status: next } });
      } catch (err) {
        if (!isConflict(err) && !isInvalid(err)) throw err;
      }
      await this.announceOnce(sj, `contended:${theirs}`, 'Warning', 'ClaimedByAnotherInstallation', message);
    }
    return { requeueAfterMs: Math.max(POLL_MS, other.recheckMs) };
  }

  /** Acts on an object another (gone) installation or an unknown writer last wrote, raising our term above theirs. */
  private async takeOver(key: string, sj: SingletonJob, theirTerm: number, why: string, log: Logger): Promise<Result | undefined> {
    if (theirTerm >= this.term) {
      const latest = this.d.leadership.latestRevision?.();
      if (latest !== undefined && latest > this.term) this.term = latest;
    }
    if (theirTerm >= this.term) {
      // Our next renew is later than any real term; a term above every
      // revision this cluster has issued never will be (written by hand).
      await this.announceOnce(
        sj,
        `term-above:${theirTerm}`,
        'Warning',
        'TermAboveLeader',
        `Cannot act yet: status.leaderTerm ${theirTerm} is above this leader's newest Lease revision ${this.term} (${why}). A real term is passed at this leader's next Lease renew; if this persists, the term was not written by a leader of this cluster — delete and re-create the SingletonJob (tokens stay increasing per namespace/name).`,
      );
      return { requeueAfterMs: 2000 };
    }
    if (this.announced.get(key) !== `takeover:${sj.status?.leaderLease}`) {
      log.info({ leaderTerm: theirTerm, term: this.term, why }, 'Taking this object over');
      await this.announceOnce(sj, `takeover:${sj.status?.leaderLease}`, 'Normal', 'TakenOver', `The installation of Lease ${leaseKey(this.d.lease!)} (term ${this.term}) takes this object over: ${why}`);
    }
    this.unclaimedSince.delete(key);
    return undefined;
  }

  /** We act on the object; a contender named in it that has gone leaves a stale Contended condition: remove it. */
  private async clearStaleContender(key: string, sj: SingletonJob): Promise<boolean> {
    const contender = sj.status?.contender;
    if (!contender || !this.d.leases || (this.d.lease && contender === leaseKey(this.d.lease))) return false;
    if ((await this.d.leases.check(contender)).alive) return false;
    await this.write(key, sj, clearContention);
    return true;
  }

  private setStandingBy(key: string, on: boolean): void {
    const had = this.standingBy.has(key);
    if (on && !had) this.standingBy.add(key);
    else if (!on && had) this.standingBy.delete(key);
    else return;
    this.d.metrics.contended.set(this.standingBy.size);
  }

  /**
   * One compare-and-swap status write: the body carries the resourceVersion
   * the decision was made from (409 = decide again) and this leader's term
   * (the CRD refuses a lower term once a successor has written).
   */
  private async write(key: string, sj: SingletonJob, mutate: (status: SingletonJobStatus) => void): Promise<SingletonJob> {
    const status: SingletonJobStatus = structuredClone(sj.status ?? {});
    mutate(status);
    status.leaderTerm = this.term;
    if (this.d.lease) {
      const mine = leaseKey(this.d.lease);
      status.leaderLease = mine;
      // We act on it now: a stand-by notice we wrote as a bystander is over.
      if (status.contender === mine) clearContention(status);
    }
    if (sj.metadata?.generation !== undefined) status.observedGeneration = sj.metadata.generation;
    const [namespace, name] = key.split('/') as [string, string];
    const body = { ...sj, status };
    const updated = slimInPlace((await this.d.custom.replaceNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name, body })) as SingletonJob); // as the cache keeps it
    this.written.set(key, updated);
    // The watch may have delivered this write before its response: then the cache already holds it.
    const cached = this.d.singletonJobs.get(key);
    if (cached) this.observed(key, cached);
    return updated;
  }
}

function clearContention(status: SingletonJobStatus): void {
  delete status.contender;
  status.conditions = status.conditions?.filter((c) => c.type !== CONTENDED);
}

/**
 * Chaos-test hook, inert unless SINGLETON_TEST_PAUSE_AFTER_RESERVE_MS is set:
 * logs, then waits between the reservation write and the Job create, so the
 * chaos suite can SIGSTOP a leader at exactly that point (fencing's
 * adversarial case).
 */
async function testPauseAfterReserve(logger: Logger, key: string, run: string): Promise<void> {
  const ms = Number(process.env.SINGLETON_TEST_PAUSE_AFTER_RESERVE_MS ?? 0);
  if (!(ms > 0)) return;
  logger.info({ object: key, run, pauseMs: ms }, 'Test hook: paused after reserving run');
  await new Promise((resolve) => setTimeout(resolve, ms));
}
