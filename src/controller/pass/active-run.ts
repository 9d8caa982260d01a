// Following the active run to its end: create its reserved Job, record it,
// release it, notice it finished (or was deleted, or replaced), retry a
// failed attempt with a new token — deciding from live reads, never from a
// cache that may be stale.
import type { CoreV1Event, V1Job } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import type { ActiveRun, SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { jobToken, wasReleased } from '../rules/jobs.ts';
import { runningPods } from './pods.ts';
import { apiMessage, statusCode } from '../../kube/errors.ts';
import { runName } from '../rules/naming.ts';
import { hasRetryBudget, runState, START_GRACE_MS } from '../rules/run-state.ts';
import type { RunView } from '../rules/run-state.ts';
import { REQUEUE_MARGIN_MS } from '../rules/timing.ts';
import * as changes from '../rules/changes.ts';
import { POLL_MS } from './pass.ts';
import type { Followed, Pass, Result } from './pass.ts';
import { admissionWait, everEvicted, KueueNotServed, queueOf } from '../cluster/kueue.ts';
import { releaseRun } from './release.ts';
import { announceStarted, createReservedJob, mayHaveLivePods } from './start-run.ts';
import { isPrepared, prepareAheadMs, RELEASE_ARM_MS } from '../rules/prepare.ts';
import { buildJob } from '../rules/jobs.ts';
import { isNamespaceTerminating } from '../../kube/errors.ts';
import {
  awaitingAdmissionCondition,
  clearAwaitingAdmission,
  Conditions,
  healthyReadiness,
  nextToken,
  recordFinished,
  setCondition,
  setReady,
  TokenExhaustedError,
} from '../rules/status.ts';

/** Largest retry delay (the Job controller's cap). */
const MAX_RETRY_DELAY_MS = 360_000;

/**
 * Follows the active run one step (its state: rules/run-state.ts). `live`:
 * never trust the Job cache (a run is waiting on this one).
 */
export async function trackActiveRun(
  p: Pass,
  key: string,
  sj: SingletonJob,
  run: ActiveRun,
  log: Logger,
  live = false,
  manual?: string,
): Promise<Followed> {
  const { jobs, pods, events } = p.d;
  const namespace = sj.metadata!.namespace!;
  const cached = live || run.replacing ? undefined : jobs.cached(namespace, run.name);
  const view: RunView = { sj, run, job: cached ?? (await jobs.read(namespace, run.name)), now: p.d.now() };
  view.kueue = Boolean(view.job && p.d.kueue && queueOf(view.job));
  if (manual !== undefined) view.manual = manual;
  if (isPrepared(run)) view.podsMayRun = mayHaveLivePods(p, sj);
  let rereads = 0;
  let armed = false;
  for (;;) {
    const state = runState(view);
    switch (state.kind) {
      case 'duplicate': {
        // The run's recorded Job was deleted (by a person, a TTL, a deposed
        // leader's cleanup) and another Job now has its name: a deposed
        // leader's delayed create, or `kubectl replace --force`. It is never
        // adopted or released — that would be a second run of the same slot
        // with the same token while the first run's Pods may still be
        // terminating. It goes, and the run ends as if its Job were gone.
        const { job } = state;
        if (state.deleteIt) {
          await jobs.delete(job);
          await events.emit(
            sj,
            'Warning',
            'DuplicateJobDeleted',
            `Deleted Job ${run.name} (uid ${job.metadata?.uid}, token ${jobToken(job) ?? 'none'}): run ${run.name} (token ${run.token}) recorded Job uid ${run.jobUID}, which was deleted; a Job re-created under a run's name is never adopted`,
          );
        }
        view.job = undefined;
        view.kueue = false;
        continue;
      }
      case 'needsPods':
        view.pods = await runningPods(pods, sj, run);
        if (isPrepared(run) && !view.pods.length) jobs.podsChecked(key);
        continue;
      case 'needsJobEvents':
        view.jobEvents = await jobEventsOrNone(p, view.job!, log);
        continue;
      case 'kueueAdmission': {
        const admission = await followAdmission(p, key, sj, run, state.job);
        if (admission) return admission;
        view.kueue = false;
        continue;
      }
      case 'reservationReplaced':
        return ends(await p.finish(key, sj, run, 'Replaced'));
      case 'backingOff':
        return ends({ requeueAfterMs: state.recheckInMs });
      case 'jobToCreate':
        return ends(await createReservedJob(p, key, sj, run, log));
      case 'podsLeftBehind':
        // Replace cancels the run, so Pods of the run that the Job left behind
        // (orphaned) are deleted too; it never assumes the garbage collector
        // removes them (it may have missed the Job's deletion, e.g. across an
        // etcd restart).
        log.info(
          { run: run.name, pods: state.pods.map((pod) => pod.metadata?.name) },
          'Deleting Pods left behind by the ended run',
        );
        await pods.delete(state.pods);
        return ends({ requeueAfterMs: POLL_MS });
      case 'podsOutliveJob': {
        // Say once why the schedule waits: a Job deleted with
        // --cascade=orphan leaves Pods that hold it until they end.
        const names = state.pods.map((pod) => pod.metadata?.name).join(', ');
        await p.announceOnce(
          sj,
          `job-gone:${run.name}:${run.jobUID}`,
          'Warning',
          'RunJobDeleted',
          `Job ${run.name} of run ${run.name} (token ${run.token}) was deleted while its Pods still run (${names}): the run ends, and the next one starts, once they have ended; delete them to go on sooner`,
        );
        return ends({ requeueAfterMs: POLL_MS });
      }
      case 'ended':
        return ends(await p.finish(key, sj, run, state.outcome, state.completion));
      case 'staleAttempt':
        // Its record lost to this reservation, never released: it goes; this run's Job follows.
        await jobs.delete(state.job);
        return ends({ requeueAfterMs: POLL_MS });
      case 'nameTaken':
        // The run cannot get its Job; it ends (Failed) and the schedule goes
        // on — a name can never wedge the object.
        await events.emit(
          sj,
          'Warning',
          'JobNameTaken',
          `Job ${run.name} already exists and does not belong to run ${run.name} (token ${run.token}): the run ended without running; delete or rename that Job`,
        );
        return ends(await p.finish(key, sj, run, 'Failed'));
      case 'unrecordedJob':
        return { ...ends({ requeueAfterMs: 0 }), change: changes.recordJobUID(run, state.uid) };
      case 'resuspended':
        return ends(await suspendedByOther(p, key, sj, run, state.job));
      case 'toRelease': {
        // Recorded as this run's Job (prepared, or by a predecessor that stopped before unsuspending it): let it start.
        const released = await releaseRun(p, sj, run, state.job);
        if (released && isPrepared(run)) await announcePreparedRelease(p, sj, run, state.job, log);
        // Released: nothing to look at before its Pod may be late (START_GRACE_MS), unless its Job changes —
        // at a midnight of many prepared runs, no pass competes with the releases still to come.
        return ends({ requeueAfterMs: released ? (isPrepared(run) ? START_GRACE_MS : POLL_MS) : 0 });
      }
      case 'prepared': {
        // Far from its time: come back just before it. Within RELEASE_ARM_MS:
        // stay, and at the instant only the patch is left to send — after a
        // look at the cache, should the object or its Job have changed meanwhile.
        if (armed || state.untilReleaseMs > RELEASE_ARM_MS)
          return ends({ requeueAfterMs: Math.max(0, state.untilReleaseMs - RELEASE_ARM_MS) + REQUEUE_MARGIN_MS });
        armed = true;
        await (p.d.sleep ?? sleep)(state.untilReleaseMs + 1);
        const current = p.d.status.cached(key);
        if (current?.metadata?.resourceVersion !== sj.metadata?.resourceVersion) return ends({ requeueAfterMs: 0 });
        view.now = p.d.now();
        view.job = jobs.cached(namespace, run.name) ?? (await jobs.read(namespace, run.name));
        continue;
      }
      case 'withdraw': {
        // The Job first, with its resourceVersion as precondition: deleted only
        // as it was seen, suspended and never released — so no release, by
        // anyone, can come between. Changed meanwhile: judged again from a live read.
        if (!(await jobs.withdraw(state.job))) {
          if (++rereads > 2) return ends({ requeueAfterMs: POLL_MS });
          view.job = await jobs.read(namespace, run.name);
          view.kueue = Boolean(view.job && p.d.kueue && queueOf(view.job));
          continue;
        }
        log.info({ run: run.name, reason: state.withdrawal.reason }, 'Withdrew a prepared run');
        p.d.metrics.runsWithdrawn.inc({ reason: state.withdrawal.reason });
        return {
          ...ends({ requeueAfterMs: 0 }),
          change: changes.withdrawPrepared(sj, run, state.withdrawal, view.now),
        };
      }
      case 'releaseHeld': {
        const names = state.pods.map((pod) => pod.metadata?.name).join(', ');
        await p.announceOnce(
          sj,
          `release-held:${run.name}`,
          'Normal',
          'RunHeld',
          `Prepared run ${run.name} (token ${run.token}) waits for Pods of an earlier run of this namespace/name to end before its release: ${names}`,
        );
        return ends({ requeueAfterMs: POLL_MS });
      }
      case 'podsEnding':
        return ends({ requeueAfterMs: POLL_MS });
      case 'failedAttempt':
        return ends(await retry(p, key, sj, run));
      case 'jobToDelete':
        if (!state.deleting) await jobs.delete(state.job);
        return ends({ requeueAfterMs: POLL_MS });
      case 'running':
        return { kind: 'goesOn' };
      case 'starting':
        return { kind: 'goesOn', recheckInMs: state.recheckInMs };
      case 'stallOver':
        return { kind: 'goesOn', change: changes.stallOver(sj, view.now) };
      case 'startDeadline':
        log.warn({ run: run.name, why: state.why }, 'Ending a run whose Pod never ran');
        return { ...ends({ requeueAfterMs: 0 }), change: changes.markStalled(run, state.why, state.deadlineSeconds) };
      case 'stalled':
        if (!state.changed) return { kind: 'goesOn', recheckInMs: state.recheckInMs };
        return {
          ...ends({ requeueAfterMs: 0 }),
          change: changes.noteStall(sj, run, state.stall, state.message, view.now),
        };
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A prepared run released at its time: it starts now (counted and said as any start). */
async function announcePreparedRelease(
  p: Pass,
  sj: SingletonJob,
  run: ActiveRun,
  job: V1Job,
  log: Logger,
): Promise<void> {
  p.d.metrics.runsStarted.inc();
  log.info({ run: run.name, token: run.token, job: job.metadata?.uid }, 'Released prepared run');
  await announceStarted(p, sj, run, job);
}

function ends(result: Result): Followed {
  return { kind: 'ends', result };
}

/**
 * A run's Job released once and suspended again by someone else (`kubectl
 * patch … suspend: true`, Kueue preemption): the Job controller has deleted
 * its Pods, and releasing it again would give new Pods the token of the ones
 * it killed — one token, two lives. A Job is released once, ever. The attempt
 * ends once its Pods are gone, as a failed one: the next attempt (within
 * backoffLimit) is a new Job with a new token; the suspended Job goes.
 */
async function suspendedByOther(
  p: Pass,
  key: string,
  sj: SingletonJob,
  run: ActiveRun,
  job: V1Job,
  why?: string,
): Promise<Result> {
  const message =
    why ??
    `Job ${run.name} of run ${run.name} (token ${run.token}) was suspended by someone else after the operator released it: a run's Job is never released twice (new Pods would carry the token of the Pods suspension killed). The attempt ends once its Pods are gone; to stop scheduled runs, suspend the SingletonJob instead`;
  await p.announceOnce(sj, `resuspended:${run.name}:${run.jobUID}`, 'Warning', 'RunJobSuspended', message);
  if ((await runningPods(p.d.pods, sj, run)).length) return { requeueAfterMs: POLL_MS };
  const result = hasRetryBudget(sj, run) ? await retry(p, key, sj, run) : await p.finish(key, sj, run, 'Failed');
  // Recorded as ended first; a Job this delete misses is deleted as a stray (cleanup.ts).
  await p.d.jobs.delete(job);
  return result;
}

/** How often a run waiting for Kueue's admission is looked at (live: its Workload). */
const ADMISSION_POLL_MS = 5_000;

/**
 * A run whose Job Kueue manages (kueue.ts): handed to Kueue once — the release
 * marker and the Workload's UID on the Job, the operator's admission check
 * Ready on that Workload — and then Kueue's to admit. While it waits the
 * object says so (AwaitingAdmission). A Workload evicted after the hand-out
 * (preempted: its checks were reset to Pending), or replaced by another, is
 * never made Ready again: the attempt ends as a Job suspended by someone else
 * does (its Pods gone first; next attempt a new Job with a new token).
 * Undefined once Kueue has unsuspended the Job: it is followed like any run.
 */
async function followAdmission(
  p: Pass,
  key: string,
  sj: SingletonJob,
  run: ActiveRun,
  job: V1Job,
): Promise<Followed | undefined> {
  const kueue = p.d.kueue!;
  const now = p.d.now();
  const generation = sj.metadata?.generation;
  if (!job.spec?.suspend) {
    // Admitted and running: no longer waiting.
    if (!awaitingAdmissionCondition(sj.status)) return undefined;
    await p.write(key, sj, (s) => {
      clearAwaitingAdmission(s);
      setReady(s, healthyReadiness({ ...sj, status: s }), generation, now);
    });
    return ends({ requeueAfterMs: 0 });
  }
  let wl;
  try {
    wl = await kueue.workloadOf(job);
  } catch (err) {
    // Kueue is not installed: a run like any other (releaseRun unsuspends it).
    if (err instanceof KueueNotServed) return undefined;
    throw err;
  }
  if (!wasReleased(job)) {
    // Recorded, not handed out yet (Kueue may not have made its Workload yet).
    if (wl && (await kueue.release(job, wl))) return ends({ requeueAfterMs: 0 });
    return ends({ requeueAfterMs: POLL_MS });
  }
  // Kueue makes a Workload for a Job that has none (then judged below).
  if (!wl) return ends({ requeueAfterMs: POLL_MS });
  const handed = job.metadata?.annotations?.[Keys.kueueWorkload];
  if (handed !== wl.metadata.uid || everEvicted(wl)) {
    const what =
      handed === wl.metadata.uid
        ? `Kueue evicted its Workload ${wl.metadata.name} (preempted, or its checks reset)`
        : `its Workload was replaced (${wl.metadata.name})`;
    return ends(
      await suspendedByOther(
        p,
        key,
        sj,
        run,
        job,
        `Job ${run.name} of run ${run.name} (token ${run.token}) was handed to Kueue once, and ${what}: the operator never admits a run's Job twice (new Pods would carry the token of the Pods eviction killed). The attempt ends once its Pods are gone; the next one is a new Job with a new token`,
      ),
    );
  }
  const ours = await kueue.ourChecks(wl);
  if (
    ours.some((c) => c.state !== 'Ready') &&
    !(await kueue.markReady(wl, `Run ${run.name} (token ${run.token}) is recorded`))
  )
    return ends({ requeueAfterMs: POLL_MS });
  const message = `Run ${run.name} (token ${run.token}) waits for Kueue to admit its Workload ${wl.metadata.name} (LocalQueue ${queueOf(job)}): ${admissionWait(wl)}`;
  const probe = structuredClone(sj.status ?? {});
  if (
    setCondition(
      probe,
      { type: Conditions.awaitingAdmission, status: 'True', reason: 'QueuedByKueue', message },
      generation,
      now,
    )
  ) {
    await p.write(key, sj, (s) => {
      setCondition(
        s,
        { type: Conditions.awaitingAdmission, status: 'True', reason: 'QueuedByKueue', message },
        generation,
        now,
      );
      setReady(s, healthyReadiness({ ...sj, status: s }), generation, now);
    });
    return ends({ requeueAfterMs: 0 });
  }
  return { kind: 'goesOn', recheckInMs: ADMISSION_POLL_MS };
}

/**
 * The Job's Events, read only to explain a stall: optional. A refused or
 * failed read (403 under an RBAC without `list` on events, a timeout, a 5xx)
 * never aborts the pass — the deadline, the Stalled condition and the next
 * slot must still happen; the condition then says it could not read why.
 */
async function jobEventsOrNone(p: Pass, job: V1Job, log: Logger): Promise<{ events: CoreV1Event[]; failure?: string }> {
  try {
    return { events: await p.d.jobs.events(job) };
  } catch (err) {
    // Debug only: the Stalled condition carries it, and this runs every poll.
    log.debug({ job: job.metadata?.name, err: apiMessage(err) }, 'Could not read the Job’s Events to explain a stall');
    return { events: [], failure: `${statusCode(err) ?? 'no response'}: ${apiMessage(err)}` };
  }
}

/**
 * A failed attempt with retry budget left: the next attempt is a new
 * reservation — a new Job name and a new, higher token — so a Pod that only
 * looked failed (a partitioned node) and its successor never share a token.
 * Recorded with the same CAS as a run; its Job is created after the backoff.
 */
async function retry(p: Pass, key: string, sj: SingletonJob, run: ActiveRun): Promise<Result> {
  const attempt = (run.attempt ?? 1) + 1;
  let token: number;
  try {
    token = nextToken(sj.status ?? {}, p.term(), sj.metadata?.resourceVersion);
  } catch (err) {
    if (!(err instanceof TokenExhaustedError)) throw err;
    return p.finish(key, sj, run, 'Failed', undefined, {
      ready: false,
      reason: 'TokenExhausted',
      message: err.message,
    });
  }
  const now = p.d.now();
  const delay = Math.min((p.d.retryBackoffMs ?? 10_000) * 2 ** (attempt - 2), MAX_RETRY_DELAY_MS);
  const name = runName(sj.metadata!.name!, {
    kind: run.kind,
    slot: run.slot,
    requestId: run.requestId,
    token,
    attempt,
  });
  let next: ActiveRun = {
    name,
    token,
    term: p.term(),
    kind: run.kind,
    attempt,
    reservedTime: now.toISOString(),
    notBefore: new Date(now.getTime() + delay).toISOString(),
  };
  if (run.slot) next.slot = run.slot;
  if (run.requestId !== undefined) next.requestId = run.requestId;
  // Prepared (rules/prepare.ts): its Job now, suspended, recorded with the
  // attempt — at the end of the backoff only the release is left. A create
  // that fails leaves the attempt reserved without its Job, created then.
  const prepared = prepareAheadMs(sj) > 0 ? await prepareAttempt(p, sj, next) : undefined;
  if (prepared) next = prepared;
  await p.write(key, sj, (s) => {
    recordFinished(s, run, 'Failed', now);
    s.activeRun = next;
    s.currentToken = token;
  });
  p.d.metrics.runsFinished.inc({ outcome: 'Failed' });
  if (prepared) p.d.metrics.runsPrepared.inc();
  const budget = (sj.spec.jobTemplate.spec?.backoffLimit ?? 0) + 1;
  await p.d.events.emit(
    sj,
    'Warning',
    'RunRetrying',
    `Attempt ${attempt - 1} of run ${run.name} (token ${run.token}) failed; attempt ${attempt} of ${budget} starts in ${Math.round(delay / 1000)} s as Job ${name} with fencing token ${token}`,
  );
  return { requeueAfterMs: delay + REQUEUE_MARGIN_MS };
}

/** The next attempt's Job, created suspended ahead of its backoff's end; undefined when the create did not succeed. */
async function prepareAttempt(p: Pass, sj: SingletonJob, next: ActiveRun): Promise<ActiveRun | undefined> {
  const attempt: ActiveRun = { ...next, releaseTime: next.notBefore! };
  if (sj.metadata?.generation !== undefined) attempt.generation = sj.metadata.generation;
  try {
    const job = await p.d.jobs.create(buildJob(sj, attempt, { suspended: true }));
    return { ...attempt, jobUID: job.metadata!.uid! };
  } catch (err) {
    if (isNamespaceTerminating(err)) throw err;
    // Refused, taken or unanswered: the reserved attempt's own create (start-run.ts createReservedJob) handles it at its time.
    return undefined;
  }
}
