// Following the active run to its end: create its reserved Job, record it,
// release it, notice it finished (or was deleted, or replaced), retry a
// failed attempt with a new token — deciding from live reads, never from a
// cache that may be stale.
import type { CoreV1Event, V1Job } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import type { ActiveRun, SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { belongsToRun, isOwnedBy, isPendingAttempt, jobOutcome, jobToken, runningPods, wasReleased } from '../rules/jobs.ts';
import { diagnose, started, type Stall } from '../rules/stall.ts';
import { apiMessage, statusCode } from '../../kube/errors.ts';
import { runName } from '../rules/naming.ts';
import { POLL_MS } from './pass.ts';
import type { Pass, Result } from './pass.ts';
import { admissionWait, everEvicted, KueueNotServed, queueOf } from '../cluster/kueue.ts';
import { releaseRun } from './release.ts';
import {
  awaitingAdmissionCondition,
  clearAwaitingAdmission,
  clearRunStalled,
  Conditions,
  healthyReadiness,
  nextToken,
  recordFinished,
  runStalledCondition,
  setCondition,
  setReady,
  toDate,
  TokenExhaustedError,
} from '../rules/status.ts';

/** Largest retry delay (the Job controller's cap). */
const MAX_RETRY_DELAY_MS = 360_000;

/** Returns a result while the run still needs attention, undefined while it simply runs. `live`: never trust the Job cache. */
export async function trackActiveRun(p: Pass, key: string, sj: SingletonJob, run: ActiveRun, log: Logger, live = false): Promise<Result | undefined> {
  const { jobs, pods, events } = p.d;
  const namespace = sj.metadata!.namespace!;
  const cached = live || run.replacing ? undefined : jobs.cached(namespace, run.name);
  let job: V1Job | undefined = cached ?? (await jobs.read(namespace, run.name));
  if (job && run.jobUID && job.metadata?.uid !== run.jobUID) {
    // The run's recorded Job was deleted (by a person, a TTL, a deposed
    // leader's cleanup) and another Job now has its name: a deposed
    // leader's delayed create, or `kubectl replace --force`. It is never
    // adopted or released — that would be a second run of the same slot
    // with the same token while the first run's Pods may still be
    // terminating. It goes, and the run ends as if its Job were gone.
    if (isOwnedBy(job, sj) && !job.metadata?.deletionTimestamp) {
      await jobs.delete(job);
      await events.emit(
        sj,
        'Warning',
        'DuplicateJobDeleted',
        `Deleted Job ${run.name} (uid ${job.metadata?.uid}, token ${jobToken(job) ?? 'none'}): run ${run.name} (token ${run.token}) recorded Job uid ${run.jobUID}, which was deleted; a Job re-created under a run's name is never adopted`,
      );
    }
    job = undefined;
  }
  if (!job) {
    if (!run.jobUID) {
      // Reserved, Job not created (or not visible yet). A replaced
      // reservation simply ends: a late create of it would be a stray.
      if (run.replacing) return p.finish(key, sj, run, 'Replaced');
      const wait = (toDate(run.notBefore)?.getTime() ?? 0) - p.d.now().getTime();
      if (wait > 0) return { requeueAfterMs: wait + 5 };
      return p.createReservedJob(key, sj, run, log);
    }
    // The Job is gone: the run ends once no Pod of this SingletonJob can run
    // any more — including Pods with a deletionTimestamp that are not
    // terminal yet. Replace cancels the run, so Pods of the run that the Job
    // left behind (orphaned) are deleted too; it never assumes the garbage
    // collector removes them (it may have missed the Job's deletion, e.g.
    // across an etcd restart). A Job someone else deleted (maybe orphaning
    // its Pods on purpose) ends once its Pods have.
    const running = await runningPods(pods, sj, run);
    if (running.length) {
      const lingering = run.replacing || run.stalled ? running.filter((pod) => !pod.metadata?.deletionTimestamp && belongsToRun(pod, run)) : [];
      if (lingering.length) {
        log.info({ run: run.name, pods: lingering.map((pod) => pod.metadata?.name) }, 'Deleting Pods left behind by the ended run');
        await pods.delete(lingering);
      } else {
        // Say once why the schedule waits: a Job deleted with
        // --cascade=orphan leaves Pods that hold it until they end.
        const names = running.map((pod) => pod.metadata?.name).join(', ');
        await p.announceOnce(
          sj,
          `job-gone:${run.name}:${run.jobUID}`,
          'Warning',
          'RunJobDeleted',
          `Job ${run.name} of run ${run.name} (token ${run.token}) was deleted while its Pods still run (${names}): the run ends, and the next one starts, once they have ended; delete them to go on sooner`,
        );
      }
      return { requeueAfterMs: POLL_MS };
    }
    return p.finish(key, sj, run, run.replacing ? 'Replaced' : run.stalled ? 'Stalled' : 'Deleted');
  }
  if (!run.jobUID && jobToken(job) !== run.token && isPendingAttempt(job, sj)) {
    // Another attempt at this name that was never recorded (its record lost
    // to this reservation) and never released: it goes; this run's Job follows.
    await jobs.delete(job);
    return { requeueAfterMs: POLL_MS };
  }
  if (!isOwnedBy(job, sj) || jobToken(job) !== run.token) {
    // The run's name is held by a Job that is not this run's and never was
    // (its UID was never recorded): a person's Job, or one a deleted
    // predecessor object orphaned. The run cannot get its Job; it ends
    // (Failed) and the schedule goes on — a name can never wedge the object.
    await events.emit(
      sj,
      'Warning',
      'JobNameTaken',
      `Job ${run.name} already exists and does not belong to run ${run.name} (token ${run.token}): the run ended without running; delete or rename that Job`,
    );
    return p.finish(key, sj, run, 'Failed');
  }
  if (!run.jobUID) {
    // A predecessor created this run's Job but did not get to record it.
    // (It never ran: a Job runs only once its UID is recorded.)
    const uid = job.metadata!.uid!;
    await p.write(key, sj, (s) => {
      s.activeRun = { ...run, jobUID: uid };
    });
    return { requeueAfterMs: 0 };
  }
  if (p.d.kueue && queueOf(job) && !run.replacing && !run.stalled && !jobOutcome(job)) {
    const admission = await followAdmission(p, key, sj, run, job);
    if (admission) return admission;
  }
  if (job.spec?.suspend && !run.replacing && !jobOutcome(job)) {
    if (wasReleased(job)) return suspendedByOther(p, key, sj, run, job);
    // Recorded as this run's Job (by us or a predecessor that stopped before
    // unsuspending it): let it start.
    return { requeueAfterMs: (await releaseRun(p, job)) ? POLL_MS : 0 };
  }
  const outcome = jobOutcome(job);
  if (outcome) {
    // A run ends only once a live list shows no Pod of this namespace/name
    // running — even when the Job proves its own Pods terminal
    // (finishedAfterItsPods): a Pod relabelled out of its Job (its
    // controller-uid label edited, to quarantine it for debugging) is no
    // longer the Job's, the Job controller replaced it, and it may run on. The
    // run's annotation still names it. Ended this way, every later start may
    // rely on the run being over (mayHaveLivePods).
    if ((await runningPods(pods, sj, run)).length) return { requeueAfterMs: POLL_MS };
    if (outcome === 'Failed' && !run.replacing && hasRetryBudget(sj, run)) return retry(p, key, sj, run);
    return p.finish(key, sj, run, run.replacing ? 'Replaced' : outcome, toDate(job.status?.completionTime));
  }
  if (run.replacing || run.stalled) {
    if (!job.metadata?.deletionTimestamp) await jobs.delete(job);
    return { requeueAfterMs: POLL_MS };
  }
  return watchStart(p, key, sj, run, job, log);
}

/**
 * A run's Job released once and suspended again by someone else (`kubectl
 * patch … suspend: true`, Kueue preemption): the Job controller has deleted
 * its Pods, and releasing it again would give new Pods the token of the ones
 * it killed — one token, two lives. A Job is released once, ever. The attempt
 * ends once its Pods are gone, as a failed one: the next attempt (within
 * backoffLimit) is a new Job with a new token; the suspended Job goes.
 */
async function suspendedByOther(p: Pass, key: string, sj: SingletonJob, run: ActiveRun, job: V1Job, why?: string): Promise<Result> {
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
async function followAdmission(p: Pass, key: string, sj: SingletonJob, run: ActiveRun, job: V1Job): Promise<Result | undefined> {
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
    return { requeueAfterMs: 0 };
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
    if (wl && (await kueue.release(job, wl))) return { requeueAfterMs: 0 };
    return { requeueAfterMs: POLL_MS };
  }
  // Kueue makes a Workload for a Job that has none (then judged below).
  if (!wl) return { requeueAfterMs: POLL_MS };
  const handed = job.metadata?.annotations?.[Keys.kueueWorkload];
  if (handed !== wl.metadata.uid || everEvicted(wl)) {
    const what = handed === wl.metadata.uid ? `Kueue evicted its Workload ${wl.metadata.name} (preempted, or its checks reset)` : `its Workload was replaced (${wl.metadata.name})`;
    return suspendedByOther(
      p,
      key,
      sj,
      run,
      job,
      `Job ${run.name} of run ${run.name} (token ${run.token}) was handed to Kueue once, and ${what}: the operator never admits a run's Job twice (new Pods would carry the token of the Pods eviction killed). The attempt ends once its Pods are gone; the next one is a new Job with a new token`,
    );
  }
  const ours = await kueue.ourChecks(wl);
  if (ours.some((c) => c.state !== 'Ready') && !(await kueue.markReady(wl, `Run ${run.name} (token ${run.token}) is recorded`))) return { requeueAfterMs: POLL_MS };
  const message = `Run ${run.name} (token ${run.token}) waits for Kueue to admit its Workload ${wl.metadata.name} (LocalQueue ${queueOf(job)}): ${admissionWait(wl)}`;
  const probe = structuredClone(sj.status ?? {});
  if (setCondition(probe, { type: Conditions.awaitingAdmission, status: 'True', reason: 'QueuedByKueue', message }, generation, now)) {
    await p.write(key, sj, (s) => {
      setCondition(s, { type: Conditions.awaitingAdmission, status: 'True', reason: 'QueuedByKueue', message }, generation, now);
      setReady(s, healthyReadiness({ ...sj, status: s }), generation, now);
    });
    return { requeueAfterMs: 0 };
  }
  return { requeueAfterMs: ADMISSION_POLL_MS, soft: true };
}

/** Within this long of its release a run's Pod is simply on its way; after it, a run that is not running is looked at. */
const START_GRACE_MS = 10_000;
/** How often a run that has not started is looked at again. */
const STALL_POLL_MS = 5_000;
export const DEFAULT_POD_START_DEADLINE_SECONDS = 900;

/**
 * A released run whose Pod is not running: say why on the object (RunStalled
 * condition, Ready=False) while it waits, and end it at podStartDeadlineSeconds
 * (its Job deleted, its Pods waited for until gone, outcome Stalled) so it
 * never holds the schedule for good.
 */
async function watchStart(p: Pass, key: string, sj: SingletonJob, run: ActiveRun, job: V1Job, log: Logger): Promise<Result | undefined> {
  const now = p.d.now();
  const releasedAt = toDate(job.status?.startTime) ?? toDate(job.metadata?.creationTimestamp) ?? now;
  const age = now.getTime() - releasedAt.getTime();
  const isStalled = Boolean(runStalledCondition(sj.status));
  if (started(job, []) && !isStalled) return undefined;
  if (age < START_GRACE_MS) return { requeueAfterMs: START_GRACE_MS - age + 5, soft: true };
  const pods = await runningPods(p.d.pods, sj, run);
  if (started(job, pods)) {
    if (isStalled) {
      await p.write(key, sj, (s) => {
        clearRunStalled(s);
        setReady(s, healthyReadiness({ ...sj, status: s }), sj.metadata?.generation, now);
      });
    }
    return undefined;
  }
  const events = pods.length ? { events: [] } : await jobEventsOrNone(p, job, log);
  const stall = diagnose(pods, events.events) ?? unexplained(pods, job, events.failure);
  const deadline = releasedAt.getTime() + (sj.spec.podStartDeadlineSeconds ?? DEFAULT_POD_START_DEADLINE_SECONDS) * 1000;
  const why = stall ? `${stall.reason}: ${stall.message}` : `its Pod is still ${pods.length ? 'pending' : 'not created'}`;
  if (now.getTime() >= deadline) {
    log.warn({ run: run.name, why }, 'Ending a run whose Pod never ran');
    await p.write(key, sj, (s) => {
      s.activeRun = { ...run, stalled: why.slice(0, 4096) };
    });
    await p.d.events.emit(
      sj,
      'Warning',
      'RunStalled',
      `Ending run ${run.name} (token ${run.token}): its Pod did not run within podStartDeadlineSeconds (${Math.round((deadline - releasedAt.getTime()) / 1000)} s): ${why}`,
    );
    return { requeueAfterMs: 0 };
  }
  if (stall) {
    // Stable wording (no growing age): written once per reason, not every poll.
    const message = `Run ${run.name} has not started — ${stall.message}. It is ended at ${new Date(deadline).toISOString()} (podStartDeadlineSeconds) unless its Pod runs by then.`;
    const probe = structuredClone(sj.status ?? {});
    if (setCondition(probe, { type: Conditions.runStalled, status: 'True', reason: stall.reason, message }, sj.metadata?.generation, now)) {
      await p.write(key, sj, (s) => {
        setCondition(s, { type: Conditions.runStalled, status: 'True', reason: stall.reason, message }, sj.metadata?.generation, now);
        setReady(s, healthyReadiness({ ...sj, status: s }), sj.metadata?.generation, now);
      });
      await p.announceOnce(sj, `stalled:${run.name}:${stall.reason}`, 'Warning', 'RunStalled', message);
      return { requeueAfterMs: 0 };
    }
  }
  return { requeueAfterMs: Math.max(5, Math.min(STALL_POLL_MS, deadline - now.getTime() + 5)), soft: true };
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

/** A Job with no Pod whose Events could not be read (`failure`): a stall all the same, saying what would tell why. */
function unexplained(pods: unknown[], job: V1Job, failure: string | undefined): Stall | undefined {
  if (pods.length || !failure) return undefined;
  return {
    reason: 'PodNotCreated',
    message: `The Job controller has not created the run's Pod, and why could not be read: listing the Job's Events failed (${failure}); \`list\` on events in namespace ${job.metadata?.namespace} lets the operator tell`,
  };
}

/** Whether a failed attempt of `run` is followed by another: the template's backoffLimit counts the operator's retries (Jobs themselves get 0). */
function hasRetryBudget(sj: SingletonJob, run: ActiveRun): boolean {
  return (run.attempt ?? 1) <= (sj.spec.jobTemplate.spec?.backoffLimit ?? 0);
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
    return p.finish(key, sj, run, 'Failed', undefined, { ready: false, reason: 'TokenExhausted', message: err.message });
  }
  const now = p.d.now();
  const delay = Math.min((p.d.retryBackoffMs ?? 10_000) * 2 ** (attempt - 2), MAX_RETRY_DELAY_MS);
  const name = runName(sj.metadata!.name!, { kind: run.kind, slot: run.slot, requestId: run.requestId, token, attempt });
  const next: ActiveRun = { name, token, term: p.term(), kind: run.kind, attempt, reservedTime: now.toISOString(), notBefore: new Date(now.getTime() + delay).toISOString() };
  if (run.slot) next.slot = run.slot;
  if (run.requestId !== undefined) next.requestId = run.requestId;
  await p.write(key, sj, (s) => {
    recordFinished(s, run, 'Failed', now);
    s.activeRun = next;
    s.currentToken = token;
  });
  p.d.metrics.runsFinished.inc({ outcome: 'Failed' });
  const budget = (sj.spec.jobTemplate.spec?.backoffLimit ?? 0) + 1;
  await p.d.events.emit(
    sj,
    'Warning',
    'RunRetrying',
    `Attempt ${attempt - 1} of run ${run.name} (token ${run.token}) failed; attempt ${attempt} of ${budget} starts in ${Math.round(delay / 1000)} s as Job ${name} with fencing token ${token}`,
  );
  return { requeueAfterMs: delay + 5 };
}
