// The start of a run, in three requests, each a fence:
//
// 1. Create the run's Job, suspended. Its name is the only one the run can
//    have (slot, or request id + token), so the API server's name uniqueness
//    is the slot's mutex: a second create is AlreadyExists. Suspended, it gets
//    no Pod: nothing has happened yet that a successor must honour.
// 2. Record it: one CAS status write (the resourceVersion the decision was
//    made from, and this leader's term, which CEL refuses to lower) that
//    takes the token, the slot and the Job's UID together. A deposed or
//    stale leader's write fails here, and its Job stays suspended for good.
// 3. Release it (unsuspend, with the UID as a precondition). Only a Job whose
//    UID a run recorded is ever released: one re-created under the run's name
//    later (a deposed leader's delayed create, `kubectl replace --force`) is
//    never adopted.
//
// A suspended, never-released Job of ours left by an attempt whose record
// failed (a conflict, a lost Lease, a crash) is adopted by the next attempt at
// the same name when its token is still above the recorded one, and deleted
// otherwise (cleanup.ts deletes the ones no attempt comes back for).
//
// The live Pod list before a start is skipped only when the Job controller
// itself proves no earlier Pod can run (see mayHaveLivePods).
//
// A create the API server refuses (400, 403: RBAC, a quota, a webhook or
// policy; 422) ends the run as Failed with its message, and TemplateAccepted
// =False holds new runs until a re-probe is accepted (reconciler.ts). A create
// it fails to answer (5xx: a webhook it cannot call; a timeout) leaves the run
// reserved without its Job, retried until the reservation's deadline
// (podStartDeadlineSeconds after it could first be created), when it ends as
// Stalled. A terminating namespace's 403 is nobody's fault: it is thrown
// (isNamespaceTerminating) and the run left as it is.
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import type { ActiveRun, SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import {
  apiMessage,
  describeError,
  isAlreadyExists,
  isNamespaceTerminating,
  isRefusal,
  statusCode,
} from '../../kube/errors.ts';
import { DEFAULT_POD_START_DEADLINE_SECONDS } from '../rules/run-state.ts';
import {
  belongsTo,
  buildJob,
  isPendingAttempt,
  isPodTerminal,
  jobGeneration,
  jobToken,
  mayStillRunPods,
  predecessorJobs,
} from '../rules/jobs.ts';
import { runningPods } from './pods.ts';
import { objectKey } from '../../kube/object-key.ts';
import { releaseRun } from './release.ts';
import { runName } from '../rules/naming.ts';
import { POLL_MS, StaleError } from './pass.ts';
import type { Pass, Result } from './pass.ts';
import type { PodControl } from '../cluster/ports.ts';
import { REQUEUE_MARGIN_MS, untilMs } from '../rules/timing.ts';
import { RELEASE_ARM_MS } from '../rules/prepare.ts';
import type { Due } from '../rules/timing.ts';
import type { Wanted } from '../rules/action.ts';
import {
  acceptTemplate,
  clearRunStalled,
  Conditions,
  fitMessage,
  healthyReadiness,
  nextToken,
  rejectTemplate,
  runStalledCondition,
  setCondition,
  setReady,
  toDate,
  TokenExhaustedError,
} from '../rules/status.ts';
import type { Readiness } from '../rules/status.ts';

/** What the start needs of the reconciler beyond a pass. */
export interface Starter extends Pass {
  updateReady(sj: SingletonJob, r: Readiness): Promise<boolean>;
  readonly podSnapshots: PodSnapshots;
  /** Slots (per key) whose run cannot be prepared (its name is held by a Job not ours): started at their time instead. */
  readonly unpreparable: Map<string, string>;
}

/**
 * Starts a run — or, with `prepared`, prepares it (rules/prepare.ts): the same
 * create and record, without the release, which is left for `releaseAt`
 * (active-run.ts releases it then).
 */
export async function startRun(
  p: Starter,
  key: string,
  sj: SingletonJob,
  wanted: Wanted,
  due: Due | undefined,
  prepared?: { releaseAt: Date },
): Promise<Result> {
  const status = sj.status ?? {};
  let token: number;
  try {
    token = nextToken(status, p.term(), sj.metadata?.resourceVersion);
  } catch (err) {
    if (!(err instanceof TokenExhaustedError)) throw err;
    await p.updateReady(sj, { ready: false, reason: 'TokenExhausted', message: err.message });
    return {};
  }
  // A deleted predecessor's Job that may still get a Pod holds the start
  // until it is gone — even one with no Pod yet (see predecessorJobs).
  const predecessors = predecessorJobs(p.d.jobs, sj);
  if (predecessors.length) return deletePredecessorJobs(p, sj, predecessors);
  let predecessorPodsChecked = false;
  if (prepared) {
    // The Pods that may still run are asked about at the release, not now:
    // here only a new object's one check for a deleted predecessor's Pods,
    // from a namespace list shared by many objects (so the release needs none).
    const checked = await checkPredecessorPodsFor(p, sj);
    if (checked.retryInMs !== undefined) return { requeueAfterMs: checked.retryInMs };
    if (checked.clear) {
      p.d.jobs.podsChecked(key);
      predecessorPodsChecked = true;
    }
  } else if (mayHaveLivePods(p, sj)) {
    // Forbid across all runs, not just the last one: a Pod left by any earlier
    // or stray run of this namespace/name — also of a deleted predecessor
    // object with the same name — that can still run holds the new run.
    if ((await runningPods(p.d.pods, sj)).length) return { requeueAfterMs: POLL_MS };
    p.d.jobs.podsChecked(key);
  }
  const slot = wanted.kind === 'Manual' ? undefined : wanted.slot.toISOString();
  const requestId = wanted.kind === 'Manual' ? wanted.requestId : undefined;
  const name = runName(sj.metadata!.name!, { kind: wanted.kind, slot, requestId, token });
  let run: ActiveRun = { name, token, term: p.term(), kind: wanted.kind, reservedTime: p.d.now().toISOString() };
  if (slot) run.slot = slot;
  if (requestId !== undefined) run.requestId = requestId;
  if (prepared) {
    run.releaseTime = prepared.releaseAt.toISOString();
    if (sj.metadata?.generation !== undefined) run.generation = sj.metadata.generation;
  }
  const log = p.d.logger.child({ object: key });

  // 1. The Job, suspended.
  let job: V1Job;
  let adopted = false;
  try {
    job = await p.d.jobs.create(buildJob(sj, run, { suspended: true }));
  } catch (err) {
    if (isNamespaceTerminating(err)) throw err;
    if (isRefusal(err)) {
      // Nothing was created: the run is recorded as failed without a Job, and the schedule goes on.
      const message = await jobRejected(p, sj, run, err);
      const reserved = await p.write(key, sj, (s) => {
        recordStart(s, sj, run, due, p.d.now());
        rejectTemplate(s, sj, message, p.d.now());
      });
      return p.finish(key, reserved, run, 'Failed');
    }
    if (!isAlreadyExists(err)) {
      if (!unanswered(err)) throw err; // 408/429 (come back later), 401, …: the workqueue's backoff; nothing is held meanwhile
      if (prepared) {
        // Nothing recorded: tried again shortly, and at the slot it starts as any run does.
        log.warn({ run: run.name, err: describeError(err) }, "A prepared run's Job could not be created; trying again");
        return { requeueAfterMs: Math.min(5000, untilMs(prepared.releaseAt, p.d.now())) };
      }
      // Not answered (a 5xx, a timeout; maybe even created): reserved without
      // its Job, which createReservedJob retries — or adopts, had this create
      // landed — until the reservation's deadline.
      log.warn({ run: run.name, err: describeError(err) }, "A run's Job could not be created; retrying");
      const reserved = await p.write(key, sj, (s) => {
        recordStart(s, sj, run, due, p.d.now());
        createFailedCondition(s, sj, run, err, p.d.now());
      });
      const stalled = runStalledCondition(reserved.status);
      if (stalled)
        await p.announceOnce(
          reserved,
          `create-failed:${run.name}:${stalled.message}`,
          'Warning',
          'RunStalled',
          stalled.message,
        );
      await announceSkipped(p, sj, run, due);
      return createRetry(sj, run, p.d.now());
    }
    const taken = await p.d.jobs.read(sj.metadata!.namespace!, name);
    if (!taken) return { requeueAfterMs: 0 };
    // On its way out (an attempt deleted as spent): the name is free soon.
    if (taken.metadata?.deletionTimestamp) return { requeueAfterMs: POLL_MS };
    const pending = isPendingAttempt(taken, sj);
    const theirToken = jobToken(taken);
    // A prepared run adopts only a Job built from the current spec (a prepared Job never runs an outdated template).
    const current = !prepared || jobGeneration(taken) === run.generation;
    if (pending && current && theirToken !== undefined && theirToken > (status.currentToken ?? 0)) {
      // An earlier attempt at this very run (ours or a predecessor's) that was
      // never recorded, so never released: it becomes the run, with its token.
      log.info({ run: name, token: theirToken }, 'Adopting the unrecorded Job of an earlier attempt at this run');
      job = taken;
      adopted = true;
      run = { ...run, token: theirToken, term: Number(taken.metadata?.annotations?.[Keys.term] ?? run.term) };
    } else if (pending) {
      // Its token was spent meanwhile (or, for a prepared run, its spec is not the current one): it never ran; it goes.
      await p.d.jobs.delete(taken);
      return { requeueAfterMs: 0 };
    } else if (prepared) {
      // Not ours to adopt: this slot is not prepared; at its time it starts as any run (and ends as JobNameTaken).
      p.unpreparable.set(key, run.slot ?? '');
      return { requeueAfterMs: untilMs(prepared.releaseAt, p.d.now()) };
    } else {
      // The name is held by a Job that is not an attempt at this run (a
      // person's, or one a deleted predecessor object orphaned). Recorded
      // without its UID, the run then ends as JobNameTaken (active-run.ts):
      // a name can never wedge the object.
      await p.write(key, sj, (s) => recordStart(s, sj, run, due, p.d.now()));
      return { requeueAfterMs: 0 };
    }
  }
  // The chaos suite's pause between this leader's own reservation and its record. Not for an
  // adopted attempt: that record is a successor fencing the run a deposed leader reserved, and
  // holding it back would only widen the window in which the deposed leader's delayed record lands first.
  if (!adopted) await p.d.hooks?.afterReserve?.(key, run.name);

  // 2. Recorded: token, slot and the Job's UID in one CAS.
  const uid = job.metadata!.uid!;
  await p.write(key, sj, (s) => {
    recordStart(s, sj, { ...run, jobUID: uid }, due, p.d.now());
    if (predecessorPodsChecked) s.predecessorPodsChecked = true;
    // This generation's Job was just accepted (an adopted Job may be of an older one).
    if (!adopted) acceptTemplate(s, sj, 'JobCreated', p.d.now());
  });
  if (prepared) {
    // 3. is left for its time (active-run.ts): the release, after the check that nothing of it can still run.
    p.d.metrics.runsPrepared.inc();
    log.info({ run: run.name, token: run.token, term: run.term, job: uid, releaseAt: run.releaseTime }, 'Prepared run');
    // Back just before its time, to release it at the instant (active-run.ts).
    return { requeueAfterMs: untilMs(new Date(prepared.releaseAt.getTime() - RELEASE_ARM_MS), p.d.now()) };
  }
  p.d.metrics.runsStarted.inc();
  log.info({ run: run.name, token: run.token, term: run.term, job: uid }, 'Recorded run');

  // 3. Released (unless the Job changed since its create: the next pass reads it live and releases it then).
  const released = await releaseRun(p, sj, run, job);
  await announceStarted(p, sj, run, job);
  await announceSkipped(p, sj, run, due);
  return released ? {} : { requeueAfterMs: 0 };
}

/** The slots a scheduled start skipped (older due ones): counted and said. */
async function announceSkipped(p: Pass, sj: SingletonJob, run: ActiveRun, due: Due | undefined): Promise<void> {
  const skipped = run.kind === 'Scheduled' && due ? due.skipped : 0;
  if (skipped <= 0) return;
  p.d.metrics.slotsSkipped.inc(skipped);
  await p.d.events.emit(
    sj,
    'Warning',
    'SlotsSkipped',
    `Skipped ${skipped}${due?.skippedAtLeast ? '+' : ''} missed slot(s) before ${run.slot}: only the latest due slot runs`,
  );
}

/**
 * Creates the Job of a run already recorded without one (reserved by an
 * earlier version of the operator, a run that ended as JobNameTaken, or a
 * retry attempt): create suspended, record the UID, release.
 */
export async function createReservedJob(
  p: Pass,
  key: string,
  sj: SingletonJob,
  run: ActiveRun,
  log: Logger,
): Promise<Result> {
  // A reservation seen through a cache: make sure it is still the current
  // state before acting on it (the run may have ended and its Job been pruned since).
  const live = await p.d.status.read(key);
  if (!live || live.metadata?.resourceVersion !== sj.metadata?.resourceVersion) throw new StaleError();
  let job: V1Job;
  try {
    job = await p.d.jobs.create(buildJob(sj, run, { suspended: true }));
  } catch (err) {
    if (isNamespaceTerminating(err)) throw err;
    if (isRefusal(err)) {
      const message = await jobRejected(p, sj, run, err);
      const written = await p.write(key, sj, (s) => void rejectTemplate(s, sj, message, p.d.now()));
      return p.finish(key, written, run, 'Failed');
    }
    if (!isAlreadyExists(err)) return createFailed(p, key, sj, run, err, log);
    // AlreadyExists: the next pass adopts it if it is this run's Job.
    log.info({ run: run.name }, 'Job of the reserved run already exists');
    return { requeueAfterMs: 0 };
  }
  p.d.metrics.runsStarted.inc();
  await p.write(key, sj, (s) => {
    s.activeRun = { ...run, jobUID: job.metadata!.uid! };
    clearRunStalled(s, CREATE_FAILED);
    acceptTemplate(s, sj, 'JobCreated', p.d.now());
    setReady(s, healthyReadiness({ ...sj, status: s }), sj.metadata?.generation, p.d.now());
  });
  const released = await releaseRun(p, sj, run, job);
  await announceStarted(p, sj, run, job);
  return released ? {} : { requeueAfterMs: 0 };
}

/** The API server refused a run's Job (400, 403, 422): says so; returns the message (TemplateAccepted=False, and so Ready=False, carry it). */
async function jobRejected(p: Pass, sj: SingletonJob, run: ActiveRun, err: unknown): Promise<string> {
  const message = fitMessage(`The API server refused Job ${run.name}: ${apiMessage(err)}`);
  await p.d.events.emit(sj, 'Warning', 'JobRejected', message);
  return message;
}

/** The RunStalled reason of a run whose Job the API server failed to create (5xx, a timeout). */
const CREATE_FAILED = 'JobCreateFailed';
/** Longest wait between two creates of a reserved run's Job that failed. */
const CREATE_RETRY_MAX_MS = 30_000;

/** When a reserved run whose Job cannot be created is ended: podStartDeadlineSeconds after its Job could first be created. */
function reservationDeadline(sj: SingletonJob, run: ActiveRun, now: Date): Date {
  const since = toDate(run.notBefore) ?? toDate(run.reservedTime) ?? now;
  return new Date(since.getTime() + (sj.spec.podStartDeadlineSeconds ?? DEFAULT_POD_START_DEADLINE_SECONDS) * 1000);
}

/** RunStalled=True saying why the run's Job is not there (stable wording: written once per error, not every retry). */
function createFailedCondition(
  s: SingletonJobStatus,
  sj: SingletonJob,
  run: ActiveRun,
  err: unknown,
  now: Date,
): boolean {
  const deadline = reservationDeadline(sj, run, now);
  const message = `Run ${run.name} has not started — its Job could not be created: ${describeError(err)}. The create is retried; the run is ended at ${deadline.toISOString()} (podStartDeadlineSeconds) unless its Job is created by then.`;
  const changed = setCondition(
    s,
    { type: Conditions.runStalled, status: 'True', reason: CREATE_FAILED, message },
    sj.metadata?.generation,
    now,
  );
  setReady(s, healthyReadiness({ ...sj, status: s }), sj.metadata?.generation, now);
  return changed;
}

/**
 * A reserved run's Job create the API server failed to answer (5xx: a
 * webhook it cannot call; a timeout): retried with a growing delay while the
 * RunStalled condition says why, and at the reservation's deadline the run ends
 * as Stalled — it never holds later slots for good. (Had a failed create
 * landed after all, its suspended Job is adopted on the next pass, or deleted
 * as a stray once the run has ended: never released.)
 */
async function createFailed(
  p: Pass,
  key: string,
  sj: SingletonJob,
  run: ActiveRun,
  err: unknown,
  log: Logger,
): Promise<Result> {
  const now = p.d.now();
  const deadline = reservationDeadline(sj, run, now);
  const why = `its Job could not be created: ${describeError(err)}`;
  if (now < deadline && !unanswered(err)) throw err; // 408/429 (come back later), 401, …: the workqueue's backoff, no alarm
  if (now >= deadline) {
    log.warn({ run: run.name, err: describeError(err) }, 'Ending a run whose Job could not be created');
    const seconds = sj.spec.podStartDeadlineSeconds ?? DEFAULT_POD_START_DEADLINE_SECONDS;
    await p.d.events.emit(
      sj,
      'Warning',
      'RunStalled',
      fitMessage(
        `Ending run ${run.name} (token ${run.token}): ${why}, retried for podStartDeadlineSeconds (${seconds} s)`,
        1024,
      ),
    );
    return p.finish(key, sj, { ...run, stalled: fitMessage(why, 4096) }, 'Stalled');
  }
  log.warn({ run: run.name, err: describeError(err) }, "A run's Job could not be created; retrying");
  const probe = structuredClone(sj.status ?? {});
  if (createFailedCondition(probe, sj, run, err, now)) {
    const condition = runStalledCondition(probe)!;
    const written = await p.write(key, sj, (s) => void createFailedCondition(s, sj, run, err, now));
    await p.announceOnce(
      written,
      `create-failed:${run.name}:${condition.message}`,
      'Warning',
      'RunStalled',
      condition.message,
    );
  }
  return createRetry(sj, run, now);
}

/**
 * The API server failed to answer a create (5xx: a webhook it cannot call,
 * etcd trouble; no status at all: a timeout, a reset connection) — as opposed
 * to a refusal, or an answer to come back later (408, 429 from API Priority
 * and Fairness), which are retried with the workqueue's backoff without alarm.
 */
function unanswered(err: unknown): boolean {
  const code = statusCode(err);
  return code === undefined || code >= 500;
}

/** When to create a reserved run's Job again: after half the time it has waited (1 s to 30 s), never past its deadline. */
function createRetry(sj: SingletonJob, run: ActiveRun, now: Date): Result {
  const since = toDate(run.notBefore) ?? toDate(run.reservedTime) ?? now;
  const untilDeadline = reservationDeadline(sj, run, now).getTime() - now.getTime() + REQUEUE_MARGIN_MS;
  return {
    requeueAfterMs: Math.round(
      Math.min(Math.max(1000, (now.getTime() - since.getTime()) / 2), CREATE_RETRY_MAX_MS, untilDeadline),
    ),
  };
}

export async function announceStarted(p: Pass, sj: SingletonJob, run: ActiveRun, job: V1Job): Promise<void> {
  const what = run.slot ? `slot ${run.slot}` : `manual request "${run.requestId}"`;
  await p.d.events.emit(
    sj,
    'Normal',
    'RunStarted',
    `Started run ${run.name} with fencing token ${run.token} (${what}, leader term ${run.term})`,
    {
      name: job.metadata!.name!,
      uid: job.metadata!.uid!,
    },
  );
}

/**
 * The status of a started run: it is the active run, its token the current
 * one, its slot or request taken into account. A prepared run (releaseTime)
 * has not started: its slot and start time are settled once its time has come
 * (timing.ts settlePrepared), until then the slot is taken by the run's record.
 */
function recordStart(s: SingletonJobStatus, sj: SingletonJob, run: ActiveRun, due: Due | undefined, now: Date): void {
  const skipped = run.kind === 'Scheduled' && due ? due.skipped : 0;
  s.activeRun = run;
  s.currentToken = run.token;
  if (run.releaseTime) {
    setReady(s, healthyReadiness(sj), sj.metadata?.generation, now);
    return;
  }
  s.lastRunTime = run.reservedTime;
  if (run.kind === 'Scheduled' && s.queuedSlot === run.slot) delete s.queuedSlot;
  // A queued slot may be older than the latest one already taken into account: never go back.
  const last = toDate(s.lastScheduleTime);
  if (run.kind === 'Scheduled' && (!last || last <= new Date(run.slot!))) s.lastScheduleTime = run.slot;
  if (run.kind === 'Backfill' && s.backfill)
    s.backfill = { ...s.backfill, cursor: run.slot, runs: (s.backfill.runs ?? 0) + 1 };
  if (run.requestId) s.lastManualRequestId = run.requestId;
  if (skipped > 0) s.skippedSlots = (s.skippedSlots ?? 0) + skipped;
  if (skipped > 0 && due?.lastSkipped) s.lastSkippedSlot = due.lastSkipped.toISOString();
  setReady(s, healthyReadiness(sj), sj.metadata?.generation, now);
}

/**
 * Whether a Pod of an earlier run of this namespace/name could still run,
 * which only a live Pod list can then rule out. It cannot when all of these hold:
 * - the Job controller sets Complete/Failed only once every Pod of the Job is
 *   terminal (Kubernetes 1.31 and later: `jobsFinishAfterPods`);
 * - a live list has ruled out Pods of a deleted predecessor with the same
 *   name: once, when the operator first saw the object idle
 *   (`status.predecessorPodsChecked`, checkPredecessorPods), or at its first run;
 * - every Job it owns is finished or was never released (a suspended Job
 *   that never started has no Pod). Its runs' Jobs are released only once
 *   recorded, and a recorded run is followed to its end before another starts;
 * - no Job of it was deleted while its Pods might still run (by us as a
 *   stray, or by anyone: the Job informer's delete events) since Pods were
 *   last listed — such a Job's Pods outlive it in the cache.
 */
export function mayHaveLivePods(p: Pass, sj: SingletonJob): boolean {
  if (!p.d.jobsFinishAfterPods) return true;
  if (!sj.status?.recentRuns?.length && !sj.status?.predecessorPodsChecked) return true;
  const key = objectKey(sj);
  if (p.d.jobs.deletedWhileRunning(key)) return true;
  return p.d.jobs.ofName(key).some((job) => mayStillRunPods(job));
}

/**
 * Jobs of a deleted predecessor with this namespace/name that may still get
 * a Pod — left by `kubectl delete sj --cascade=orphan`, or not collected yet,
 * maybe with no Pod so far because the Job controller cannot create it (a
 * missing ServiceAccount, a quota) and keeps trying: each is deleted (UID
 * precondition: only the Job seen) and the start waits until it is gone and
 * its Pods have ended (our delete marks the name for a live Pod list).
 */
async function deletePredecessorJobs(p: Starter, sj: SingletonJob, jobs: V1Job[]): Promise<Result> {
  for (const cached of jobs) {
    if (cached.metadata?.deletionTimestamp) continue;
    const job = await p.d.jobs.read(cached.metadata!.namespace!, cached.metadata!.name!);
    if (!job || job.metadata?.uid !== cached.metadata?.uid || job.metadata?.deletionTimestamp || !mayStillRunPods(job))
      continue;
    await p.d.jobs.delete(job);
    await p.announceOnce(
      sj,
      `predecessor-job:${job.metadata?.uid}`,
      'Warning',
      'PredecessorJobDeleted',
      `Deleted Job ${job.metadata?.name} (uid ${job.metadata?.uid}, token ${jobToken(job) ?? 'none'}) of an earlier SingletonJob named ${sj.metadata?.name}, deleted without its Jobs: it could still start a Pod beside this object's runs. The next run starts once its Pods have ended`,
    );
  }
  return { requeueAfterMs: POLL_MS };
}

/**
 * Once per object, while it is idle and before its first run: a live Pod list
 * rules out Pods of a deleted predecessor with the same namespace/name (they
 * hold the first run otherwise), recorded as status.predecessorPodsChecked so
 * that no start has to list Pods for it again (see mayHaveLivePods). One list
 * of the namespace serves every object created at least a second before it
 * was sent (PodSnapshots): 10,000 new objects cost a few lists, not 10,000.
 * `retryInMs`: the object is too new for the latest list; look again then.
 */
export async function checkPredecessorPods(
  p: Starter,
  key: string,
  sj: SingletonJob,
): Promise<{ wrote: boolean; retryInMs?: number }> {
  if (sj.status?.activeRun) return { wrote: false };
  const checked = await checkPredecessorPodsFor(p, sj);
  if (checked.retryInMs !== undefined) return { wrote: false, retryInMs: checked.retryInMs };
  if (!checked.clear) return { wrote: false };
  p.d.jobs.podsChecked(key);
  await p.write(key, sj, (st) => {
    st.predecessorPodsChecked = true;
    setReady(st, healthyReadiness(sj), sj.metadata?.generation, p.d.now());
  });
  return { wrote: true };
}

/**
 * checkPredecessorPods's question, for an object not checked yet: `clear`
 * when a shared namespace list sent after its creation shows no Pod of it
 * running; `retryInMs` while it is too new for the latest list.
 */
async function checkPredecessorPodsFor(p: Starter, sj: SingletonJob): Promise<{ clear: boolean; retryInMs?: number }> {
  const s = sj.status ?? {};
  if (!p.d.jobsFinishAfterPods || s.predecessorPodsChecked || s.recentRuns?.length) return { clear: false };
  // creationTimestamp has whole seconds: a list sent a second later surely came after the object.
  const created = sj.metadata?.creationTimestamp ? new Date(sj.metadata.creationTimestamp).getTime() : 0;
  const notBefore = (Number.isFinite(created) ? created : 0) + 1000;
  const running = await p.podSnapshots.runningSince(sj.metadata!.namespace!, notBefore);
  if (running === undefined) return { clear: false, retryInMs: Math.max(50, notBefore - p.d.now().getTime() + 50) };
  return { clear: !running.some((pod) => belongsTo(pod, sj)) };
}

/** Live Pod lists of a namespace, shared by the objects a list can answer for (checkPredecessorPods only). */
export class PodSnapshots {
  private readonly lists = new Map<string, { sentAt: number; running: V1Pod[] }>();
  private readonly pods: PodControl;
  private readonly now: () => Date;
  private readonly maxAgeMs: number;

  constructor(pods: PodControl, now: () => Date, maxAgeMs = 10_000) {
    this.pods = pods;
    this.now = now;
    this.maxAgeMs = maxAgeMs;
  }

  /** The namespace's Pods that may still run, from a list sent at or after `notBefore` (server ms); undefined before then. */
  async runningSince(namespace: string, notBefore: number): Promise<V1Pod[] | undefined> {
    const now = this.now().getTime();
    const last = this.lists.get(namespace);
    if (last && last.sentAt >= notBefore && now - last.sentAt <= this.maxAgeMs) return last.running;
    if (now < notBefore) return undefined;
    const running = (await this.pods.list(namespace)).filter((pod) => !isPodTerminal(pod)).map(podIdentity);
    // Kept only while it can serve (maxAgeMs): a namespace listed once is not pinned for good.
    for (const [ns, l] of this.lists) if (now - l.sentAt > this.maxAgeMs) this.lists.delete(ns);
    this.lists.set(namespace, { sentAt: now, running });
    return running;
  }
}

/** What a snapshot keeps of a Pod: what belongsTo and isPodTerminal read — not its spec and status (kilobytes each, thousands in a busy namespace). */
function podIdentity(pod: V1Pod): V1Pod {
  const m = pod.metadata ?? {};
  const annotation = m.annotations?.[Keys.singletonJob];
  return {
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
      labels: Object.fromEntries(Object.entries(m.labels ?? {}).filter(([k]) => k === Keys.ownerUid || k === Keys.run)),
      ...(annotation !== undefined ? { annotations: { [Keys.singletonJob]: annotation } } : {}),
      ...(m.ownerReferences ? { ownerReferences: m.ownerReferences } : {}),
    },
    status: { phase: pod.status?.phase },
  };
}
