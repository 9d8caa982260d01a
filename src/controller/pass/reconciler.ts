// reconcile(key): read the SingletonJob and its runs, make one decision, act.
// Level-based: every pass re-derives what to do from the object, the Job of
// its active run and that Job's Pods, so a pass interrupted at any point (a
// crash, a lost lease, a conflict) is finished by the next pass or the next
// leader. Safety never rests on the cache:
// - every status write carries the resourceVersion it was computed from (CAS)
//   and the leader's term, which CEL refuses to lower;
// - a run's Job has one possible name, so a second create is AlreadyExists;
//   it is created suspended and released only once a CAS'd status write has
//   recorded its UID (start-run.ts);
// - a run is finished (and the next one may start) only once every Pod of
//   its namespace/name is terminal: from a live Pod list, or from the Job
//   controller's own terminal condition where that proves it.
// The cluster is reached through the ports (ports.ts) only; the decisions
// about a run in flight live in active-run.ts, those about which installation
// acts in claims.ts.
import type { Logger } from 'pino';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import type { ActiveRun, FinishedRun, SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import {
  apiMessage,
  describeError,
  isConflict,
  isNamespaceTerminating,
  isRefusal,
  statusCode,
} from '../../kube/errors.ts';
import { objectKey } from '../../kube/object-key.ts';
import { trackActiveRun } from './active-run.ts';
import { checkPredecessorPods, PodSnapshots, startRun } from './start-run.ts';
import type { Starter } from './start-run.ts';
import { Claims } from './claims.ts';
import { deleteStrays, prune } from './cleanup.ts';
import { buildJob } from '../rules/jobs.ts';
import { scheduledRunName } from '../rules/naming.ts';
import { chooseAction, HOLD_POLL_MS, manualRequest, specProblem } from '../rules/action.ts';
import * as changes from '../rules/changes.ts';
import { StaleError } from './pass.ts';
import type { ReconcilerDeps, Result } from './pass.ts';
import { dueAt, nextScheduleTime, nextSlotAt, REQUEUE_MARGIN_MS, settlePrepared, untilMs } from '../rules/timing.ts';
import type { Due } from '../rules/timing.ts';
import {
  acceptTemplate,
  clearRunStalled,
  Conditions,
  fitMessage,
  migrateConditions,
  setObjectStalled,
  healthyReadiness,
  recordFinished,
  rejectTemplate,
  setCondition,
  setReady,
  templateCondition,
  toDate,
  annotationId,
} from '../rules/status.ts';
import type { Readiness } from '../rules/status.ts';

export type { ReconcilerDeps, Result } from './pass.ts';

/**
 * Every object is reconciled at least this often, and at least at its next due
 * slot: the leader never waits on a watch event alone (a stale cache after an
 * API-server restart or a half-open connection must not stall scheduling).
 */
const MAX_IDLE_MS = 60_000;
const MAX_ATTEMPTS = 3;
/** A template the API server refused is asked about again after this long, doubling per refusal up to TEMPLATE_PROBE_MAX_MS. */
const TEMPLATE_PROBE_MS = 10_000;
const TEMPLATE_PROBE_MAX_MS = 300_000;

export class Reconciler implements Starter {
  readonly d: ReconcilerDeps;
  private readonly claims: Claims;
  /** Decisions already announced by an Event, so a waiting run does not repeat them every pass. */
  private readonly announced = new Map<string, string>();
  /** Generations whose template a dry run accepted, recorded (TemplateAccepted) by the next status write. */
  private readonly templateAccepted = new Map<string, number | undefined>();
  /** When a template's dry run is due again after a refusal or a failure to answer (per key and generation). */
  private readonly templateProbes = new Map<
    string,
    { generation: number | undefined; failures: number; nextAt: number }
  >();
  readonly podSnapshots: PodSnapshots;
  readonly unpreparable = new Map<string, string>();

  constructor(deps: ReconcilerDeps) {
    this.d = deps;
    this.claims = new Claims(deps);
    this.podSnapshots = new PodSnapshots(deps.pods, deps.now);
  }

  term(): number {
    return this.claims.term;
  }

  async reconcile(key: string): Promise<Result> {
    let sj = this.d.status.cached(key);
    for (let attempt = 1; sj; attempt++) {
      if (sj.metadata?.deletionTimestamp) return {};
      try {
        return this.atLeastAtNextSlot(sj, await this.converge(key, migrateConditions(sj)));
      } catch (err) {
        if (!(err instanceof StaleError || isConflict(err)) || attempt >= MAX_ATTEMPTS) throw err;
        sj = await this.d.status.read(key);
      }
    }
    this.d.status.forget(key);
    this.announced.delete(key);
    this.templateAccepted.delete(key);
    this.templateProbes.delete(key);
    this.unpreparable.delete(key);
    this.claims.forget(key);
    return {};
  }

  /** Caps a result's requeue at the object's next slot (and MAX_IDLE_MS), so no pass ends with "wait for a change" only. */
  private atLeastAtNextSlot(sj: SingletonJob, result: Result): Result {
    let bound = MAX_IDLE_MS;
    try {
      const now = this.d.now();
      const next = sj.spec ? nextSlotAt(sj, now) : undefined;
      if (next) bound = Math.min(bound, untilMs(next, now));
    } catch {
      // An invalid schedule is reported by specProblem(); MAX_IDLE_MS applies.
    }
    return { requeueAfterMs: Math.min(bound, result.requeueAfterMs ?? Infinity) };
  }

  private async converge(key: string, sj: SingletonJob): Promise<Result> {
    const { leadership, logger } = this.d;
    const now = this.d.now();
    const status = sj.status ?? {};
    const log = logger.child({ object: key, term: this.term() });
    const claimed = await this.claims.claim(this, key, sj, log);
    if (claimed) return claimed;
    leadership.signal.throwIfAborted();
    if (await this.claims.clearStaleContender(this, key, sj)) return { requeueAfterMs: 0 };

    const problem = specProblem(sj);
    // History first, whatever the pass decides next: finished Jobs filling a
    // Job quota must not refuse the very create (or dry run) that would let
    // them be pruned. (Not for a spec zod refuses: its limits mean nothing.)
    if (problem?.reason !== 'InvalidSpec') await prune(this.d.jobs, sj, log);
    const due = problem ? undefined : dueAt(sj, now);
    const manual = manualRequest(sj, problem);
    if (status.activeRun) {
      // A run is waiting on the active one: decide from a live read of its Job,
      // never from the cache alone (a watch may be stale; waiting on it would
      // hold the slot until the watch recovers).
      const waiting = Boolean(due?.slot || manual);
      const followed = await trackActiveRun(this, key, sj, status.activeRun, log, waiting, manual);
      if (followed.change) await this.apply(key, sj, followed.change, {});
      if (followed.kind === 'ends') return followed.result;
      // The run simply runs, or waits for its Pod to start: decide as usual
      // (Replace may cancel it), and look at it again when it asked to be.
      if (followed.recheckInMs !== undefined)
        return soonest({ requeueAfterMs: followed.recheckInMs }, await this.decide(key, sj, log, due, manual, problem));
    }
    return this.decide(key, sj, log, due, manual, problem);
  }

  /** The pass once the active run (if any) has been followed: acts on its action (rules/action.ts). */
  private async decide(
    key: string,
    sj: SingletonJob,
    log: Logger,
    due: Due | undefined,
    manual: string | undefined,
    problem: Readiness | undefined,
  ): Promise<Result> {
    const now = this.d.now();
    // Strays are deleted on the way; they do not hold scheduling (a stray's
    // Pod that still runs holds the next run through startRun's Pod check).
    await deleteStrays(this.d, key, sj);
    const action = chooseAction({ sj, now, due, manual, problem });
    switch (action.kind) {
      case 'reportProblem':
        await this.updateReady(sj, action.problem);
        return {};
      case 'resume':
        return this.apply(key, sj, changes.resume(sj, action.id, now), { requeueAfterMs: 0 });
      case 'recordBackfill':
        return this.apply(key, sj, changes.recordBackfill(action.request), { requeueAfterMs: 0 });
      case 'afterTemplateCheck':
        break;
    }
    const template = await this.checkTemplate(key, sj, log, action.starting);
    if (template) return template;
    const next = action.then;
    switch (next.kind) {
      case 'recordSkipped':
        return this.apply(key, sj, changes.recordSkipped(sj, next.due, 'missed its starting deadline'), {
          requeueAfterMs: 0,
        });
      case 'skipQueued':
        return this.apply(key, sj, changes.skipQueued(next.slot, next.why), { requeueAfterMs: 0 });
      case 'startQueued':
        return startRun(this, key, sj, { kind: 'Scheduled', slot: next.slot }, undefined);
      case 'queue':
        return this.apply(key, sj, changes.queueSlot(sj, next.active, next.due), { requeueAfterMs: HOLD_POLL_MS });
      case 'hold':
        await this.announceOnce(
          sj,
          `held:${next.active.name}:${next.what}`,
          'Normal',
          'RunHeld',
          `Run for ${next.what} waits: run ${next.active.name} (token ${next.active.token}) is still in flight (concurrencyPolicy ${next.policy})`,
        );
        return { requeueAfterMs: next.requeueAfterMs };
      case 'replace':
        return this.apply(key, sj, changes.replaceRun(next.active, next.what), { requeueAfterMs: 0 });
      case 'start':
        return startRun(this, key, sj, next.wanted, next.due);
      case 'completeBackfill':
        return this.apply(key, sj, changes.completeBackfill(sj), { requeueAfterMs: 0 });
      case 'prepare':
        if (this.unpreparable.get(key) !== next.slot.toISOString())
          return startRun(this, key, sj, { kind: 'Scheduled', slot: next.slot }, due, { releaseAt: next.releaseAt });
        break;
      case 'idle':
        break;
    }
    const prepareAt = next.kind === 'idle' ? next.prepareAt : undefined;
    const predecessors = await checkPredecessorPods(this, key, sj);
    if (predecessors.wrote) return { requeueAfterMs: 0 };
    if (await this.updateReady(sj, healthyReadiness(sj))) return { requeueAfterMs: 0 };
    const probe = this.templateProbes.get(key);
    const untilNext = due ? untilMs(due.nextAt, now) : undefined;
    return soonest(
      soonest(
        untilNext !== undefined ? { requeueAfterMs: untilNext } : {},
        predecessors.retryInMs !== undefined ? { requeueAfterMs: predecessors.retryInMs } : {},
      ),
      soonest(
        probe ? { requeueAfterMs: Math.max(0, probe.nextAt - now.getTime()) + REQUEUE_MARGIN_MS } : {},
        prepareAt ? { requeueAfterMs: untilMs(prepareAt, now) } : {},
      ),
    );
  }

  /**
   * The Job template is checked when the spec changes, not at the first slot:
   * a server-side dry-run create of the Job a run would get (schema,
   * admission webhooks, policies, quotas that check Jobs), once per generation
   * — also for a change made while a run is in flight. Which generation was
   * checked, and the answer, is the TemplateAccepted condition (a run's own
   * create counts too, so a start does not dry-run first). A refusal holds new
   * runs (Ready=False JobRejected) and is asked again with backoff — a quota
   * frees up, a policy is fixed — not only on the next spec change. A dry run
   * the API server fails to answer (5xx, a timeout) holds nothing: it is only
   * a check, tried again later; a run's own create is the real one.
   * Returns a result when the pass ends here.
   */
  private async checkTemplate(
    key: string,
    sj: SingletonJob,
    log: Logger,
    starting: boolean,
  ): Promise<Result | undefined> {
    const generation = sj.metadata?.generation;
    const recorded = templateCondition(sj);
    if (recorded?.status === 'True') {
      this.templateAccepted.delete(key);
      this.templateProbes.delete(key);
      return undefined;
    }
    if (this.templateAccepted.get(key) === generation) return undefined; // accepted; the next write records it
    const rejected = recorded?.status === 'False';
    // Not checked yet, and a run is about to start: its own create asks the same question.
    if (!rejected && starting) return undefined;
    const now = this.d.now().getTime();
    let probe = this.templateProbes.get(key);
    if (probe && probe.generation !== generation) probe = undefined;
    // After a refusal recorded by another pass (a run's create, another leader): from when it was recorded.
    const dueAt =
      probe?.nextAt ?? (rejected ? (toDate(recorded.lastTransitionTime)?.getTime() ?? now) + TEMPLATE_PROBE_MS : now);
    if (now < dueAt) return rejected ? this.holdRejected(sj, dueAt - now) : undefined;

    const dryRun: ActiveRun = {
      name: scheduledRunName(sj.metadata!.name!, new Date(0)),
      token: Math.max(1, sj.status?.currentToken ?? 1),
      term: Math.max(1, this.term()),
      kind: 'Scheduled',
      slot: new Date(0).toISOString(),
      reservedTime: this.d.now().toISOString(),
    };
    const backoff = () => {
      const failures = (probe?.failures ?? 0) + 1;
      const delay = Math.min(TEMPLATE_PROBE_MS * 2 ** (failures - 1), TEMPLATE_PROBE_MAX_MS);
      this.templateProbes.set(key, { generation, failures, nextAt: now + delay });
      return delay;
    };
    try {
      await this.d.jobs.create(buildJob(sj, dryRun, { suspended: true }), { dryRun: true });
    } catch (err) {
      if (isNamespaceTerminating(err)) throw err;
      if (isRefusal(err) && !dryRunUnsupported(err)) {
        const delay = backoff();
        const message = fitMessage(
          `The API server refuses the Job this SingletonJob would create (dry run): ${apiMessage(err)}`,
        );
        const record = (s: SingletonJobStatus) =>
          rejectTemplate(s, sj, message, this.d.now()) ||
          setReady(s, healthyReadiness({ ...sj, status: s }), generation, this.d.now());
        if (record(structuredClone(sj.status ?? {}))) {
          await this.write(key, sj, (s) => {
            rejectTemplate(s, sj, message, this.d.now());
            setReady(s, healthyReadiness({ ...sj, status: s }), generation, this.d.now());
          });
          await this.d.events.emit(sj, 'Warning', 'JobRejected', message);
        }
        return { requeueAfterMs: delay + REQUEUE_MARGIN_MS };
      }
      if (!isRefusal(err)) {
        // Not answered: nothing is known about this generation; runs are not held for it.
        const delay = backoff();
        log.warn({ err: describeError(err), retryInMs: delay }, 'The template dry run failed; trying again later');
        return rejected ? this.holdRejected(sj, delay) : undefined;
      }
      // A webhook with side effects refuses dry runs: this template cannot be checked so.
      this.templateProbes.delete(key);
      await this.write(key, sj, (s) => {
        acceptTemplate(s, sj, 'DryRunUnsupported', this.d.now(), apiMessage(err));
        setReady(s, healthyReadiness({ ...sj, status: s }), generation, this.d.now());
      });
      return { requeueAfterMs: 0 };
    }
    this.templateProbes.delete(key);
    if (!rejected) {
      this.templateAccepted.set(key, generation);
      return undefined;
    }
    // Accepted again without a spec change: runs go on.
    await this.write(key, sj, (s) => {
      acceptTemplate(s, sj, 'DryRunAccepted', this.d.now());
      setReady(s, healthyReadiness({ ...sj, status: s }), generation, this.d.now());
    });
    await this.d.events.emit(
      sj,
      'Normal',
      'JobAccepted',
      `The API server accepts the Job this SingletonJob creates again (dry run): runs go on`,
    );
    return { requeueAfterMs: 0 };
  }

  /** A refused template waiting for its re-probe: Ready says so (written when it changed); nothing starts. */
  private async holdRejected(sj: SingletonJob, untilProbeMs: number): Promise<Result> {
    if (await this.updateReady(sj, healthyReadiness(sj))) return { requeueAfterMs: 0 };
    return { requeueAfterMs: untilProbeMs + REQUEUE_MARGIN_MS };
  }

  async finish(
    key: string,
    sj: SingletonJob,
    run: ActiveRun,
    outcome: FinishedRun['outcome'],
    completion?: Date,
    readiness?: Readiness,
  ): Promise<Result> {
    const now = this.d.now();
    const failed = outcome === 'Failed' || outcome === 'Stalled';
    const limit = sj.spec.suspendAfterFailures;
    const failures = outcome === 'Succeeded' ? 0 : (sj.status?.consecutiveFailures ?? 0) + (failed ? 1 : 0);
    const pausing = limit !== undefined && failed && failures === limit;
    const written = await this.write(key, sj, (s) => {
      recordFinished(s, run, outcome, now, completion);
      s.consecutiveFailures = failures;
      clearRunStalled(s);
      if (pausing) {
        // Resuming takes a new value of the annotation: the current one must not count.
        const current = annotationId(sj, Keys.resume);
        if (current) s.lastResumeId = current;
        setCondition(
          s,
          { type: Conditions.paused, status: 'True', reason: 'TooManyFailures', message: pauseMessage(sj, failures) },
          sj.metadata?.generation,
          now,
        );
      }
      if (outcome === 'Succeeded' && s.conditions?.some((c) => c.type === Conditions.paused && c.status === 'True')) {
        setCondition(
          s,
          { type: Conditions.paused, status: 'False', reason: 'RunSucceeded', message: `Run ${run.name} succeeded` },
          sj.metadata?.generation,
          now,
        );
      }
      setReady(s, readiness ?? healthyReadiness({ ...sj, status: s }), sj.metadata?.generation, now);
    });
    this.d.metrics.runsFinished.inc({ outcome });
    const verb = {
      Succeeded: 'succeeded',
      Failed: 'failed',
      Replaced: 'was replaced',
      Deleted: 'ended because its Job was deleted',
      Stalled: `was ended: its Pod never ran (${run.stalled ?? 'stalled'})`,
      Withdrawn: 'was withdrawn before its release',
    }[outcome];
    await this.d.events.emit(
      sj,
      outcome === 'Succeeded' || outcome === 'Replaced' ? 'Normal' : 'Warning',
      'RunFinished',
      `Run ${run.name} (token ${run.token}) ${verb}`,
    );
    if (pausing) await this.d.events.emit(written, 'Warning', 'PausedAfterFailures', pauseMessage(sj, failures));
    return { requeueAfterMs: 0 };
  }

  /** Writes a status change (rules/changes.ts) — the pass's one write — then counts and says it. */
  private async apply(key: string, sj: SingletonJob, change: changes.StatusChange, result: Result): Promise<Result> {
    await this.write(key, sj, change.status);
    if (change.skippedSlots) this.d.metrics.slotsSkipped.inc(change.skippedSlots);
    for (const e of change.events) {
      if (e.once) await this.announceOnce(sj, e.once, e.type, e.reason, e.message);
      else await this.d.events.emit(sj, e.type, e.reason, e.message);
    }
    return result;
  }

  /** Writes Ready when it changed; returns whether it wrote. */
  async updateReady(sj: SingletonJob, r: Readiness): Promise<boolean> {
    const probe: SingletonJobStatus = structuredClone(sj.status ?? {});
    const generationSeen = sj.status?.observedGeneration === sj.metadata?.generation;
    const unrecorded =
      this.templateAccepted.get(objectKey(sj)) === sj.metadata?.generation && templateCondition(sj)?.status !== 'True';
    if (!setReady(probe, r, sj.metadata?.generation, this.d.now()) && generationSeen && !unrecorded) return false;
    const key = objectKey(sj);
    await this.write(key, sj, (s) => void setReady(s, r, sj.metadata?.generation, this.d.now()));
    if (!r.ready || r.warning) await this.d.events.emit(sj, 'Warning', r.reason, r.message);
    return true;
  }

  async announceOnce(
    sj: SingletonJob,
    id: string,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const key = objectKey(sj);
    if (this.announced.get(key) === id) return;
    this.announced.set(key, id);
    await this.d.events.emit(sj, type, reason, message);
  }

  announcedFor(key: string): string | undefined {
    return this.announced.get(key);
  }

  /**
   * One compare-and-swap status write: the body carries the resourceVersion
   * the decision was made from (409 = decide again) and this leader's term
   * and Lease (the CRD refuses a lower term once a successor has written).
   */
  async write(key: string, sj: SingletonJob, mutate: (status: SingletonJobStatus) => void): Promise<SingletonJob> {
    const status: SingletonJobStatus = structuredClone(sj.status ?? {});
    // A prepared run whose time has come has started: before the change, so that its end (or its skip) builds on it.
    settlePrepared(status, this.d.now());
    mutate(status);
    setObjectStalled(status, sj.metadata?.generation, this.d.now());
    // A dry run of this generation accepted earlier in the pass (or a pass that wrote nothing since).
    if (this.templateAccepted.get(key) === sj.metadata?.generation && !templateCondition(sj, status))
      acceptTemplate(status, sj, 'DryRunAccepted', this.d.now());
    this.claims.stamp(status);
    const next = nextScheduleTime(sj, status, this.d.now());
    if (next) status.nextScheduleTime = next;
    else delete status.nextScheduleTime;
    if (sj.metadata?.generation !== undefined) status.observedGeneration = sj.metadata.generation;
    return this.d.status.replaceStatus({ ...sj, status });
  }
}

function pauseMessage(sj: SingletonJob, failures: number): string {
  return `Scheduled runs are paused: ${failures} runs failed in a row (suspendAfterFailures ${sj.spec.suspendAfterFailures}). Manual requests still run. Resume: kubectl annotate singletonjob ${sj.metadata?.name} -n ${sj.metadata?.namespace} ${Keys.resume}="$(date +%s)" --overwrite`;
}

/**
 * A dry run refused because an admission webhook with side effects is not
 * called for dry runs (400 "admission webhook … does not support dry run"):
 * says nothing about the Job itself.
 */
function dryRunUnsupported(err: unknown): boolean {
  return statusCode(err) === 400 && /does not support dry run/.test(apiMessage(err));
}

/** The earlier of two requeues (a result without one waits for a change). */
function soonest(a: Result, b: Result): Result {
  const ms = Math.min(a.requeueAfterMs ?? Infinity, b.requeueAfterMs ?? Infinity);
  return ms === Infinity ? {} : { requeueAfterMs: ms };
}
