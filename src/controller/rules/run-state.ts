// What state the active run is in, as a value: the one decision of "following
// a run to its end" (pass/active-run.ts acts on it). Judged from the object,
// the Job under the run's name (cached or read live by the pass), and — only
// where the state turns on them — the live list of the SingletonJob's Pods
// that may still run and the Job's Events: without them the answer is
// `needsPods` or `needsJobEvents`, and the pass asks again with them, so it
// reads no more than the state needs.
import type { CoreV1Event, V1Job, V1Pod } from '@kubernetes/client-node';
import type { ActiveRun, FinishedRun, SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { belongsToRun, isOwnedBy, isPendingAttempt, jobOutcome, jobToken, wasReleased } from './jobs.ts';
import { diagnose, started } from './stall.ts';
import type { Stall } from './stall.ts';
import { Conditions, runStalledCondition, setCondition, toDate } from './status.ts';
import { REQUEUE_MARGIN_MS } from './timing.ts';
import { isPrepared, withdrawal } from './prepare.ts';
import type { Withdrawal } from './prepare.ts';

export const DEFAULT_POD_START_DEADLINE_SECONDS = 900;
/** Within this long of its release a run's Pod is simply on its way; after it, a run that is not running is looked at. */
export const START_GRACE_MS = 10_000;
/** How often a run that has not started is looked at again. */
export const STALL_POLL_MS = 5_000;

export interface RunView {
  sj: SingletonJob;
  run: ActiveRun;
  /** The Job under the run's name, undefined when there is none. */
  job: V1Job | undefined;
  /** The SingletonJob's Pods that may still run (a live list: jobs.ts belongsTo, with the run), once listed. */
  pods?: V1Pod[];
  /** The Job's Events, once read (only to explain a stall); `failure`: why they could not be read. */
  jobEvents?: { events: CoreV1Event[]; failure?: string };
  /** Kueue manages the run's Job (its queue-name label) and the operator serves Kueue. */
  kueue?: boolean;
  /** A manual request not taken into account yet (it withdraws a prepared scheduled run). */
  manual?: string;
  /**
   * Whether a Pod of an earlier run of this namespace/name may still run, as
   * far as the Jobs show (start-run.ts mayHaveLivePods): a prepared run's
   * release then waits for a live Pod list.
   */
  podsMayRun?: boolean;
  now: Date;
}

export type RunState =
  /** A Job under a recorded run's name with another UID: never adopted; set aside (deleted when ours and not going), then the run is judged without it. */
  | { kind: 'duplicate'; job: V1Job; deleteIt: boolean }
  /** The state turns on the live Pod list: list them and ask again. */
  | { kind: 'needsPods' }
  /** The state turns on the Job's Events (a stall with no Pod): read them and ask again. */
  | { kind: 'needsJobEvents' }
  /** Reserved without a Job, and replaced: it simply ends (a late create of it is a stray). */
  | { kind: 'reservationReplaced' }
  /** Reserved without a Job, its retry backoff not over. */
  | { kind: 'backingOff'; recheckInMs: number }
  /** Reserved without a Job: create it. */
  | { kind: 'jobToCreate' }
  /** The recorded Job is gone and Pods of the ended run (Replace, a stall) are left behind: delete them. */
  | { kind: 'podsLeftBehind'; pods: V1Pod[] }
  /** The recorded Job is gone while Pods of the SingletonJob still run (deleted with --cascade=orphan): they hold the schedule. */
  | { kind: 'podsOutliveJob'; pods: V1Pod[] }
  /** The run is over: record it finished. */
  | { kind: 'ended'; outcome: FinishedRun['outcome']; completion?: Date }
  /** Another, unrecorded and never released attempt holds the run's name: it goes, this run's Job follows. */
  | { kind: 'staleAttempt'; job: V1Job }
  /** The run's name is held by a Job that is not this run's (a person's, a predecessor's): the run ends as Failed. */
  | { kind: 'nameTaken'; job: V1Job }
  /** This run's Job, created but not recorded (a predecessor stopped in between): record its UID. */
  | { kind: 'unrecordedJob'; uid: string }
  /** Kueue manages the recorded Job and it has not finished: follow its admission. */
  | { kind: 'kueueAdmission'; job: V1Job }
  /** Released once, and suspended again by someone else: the attempt ends (never released twice). */
  | { kind: 'resuspended'; job: V1Job }
  /** Recorded and not released yet: release it. */
  | { kind: 'toRelease'; job: V1Job }
  /** Prepared (rules/prepare.ts) and not due yet: its release time is `untilReleaseMs` away. */
  | { kind: 'prepared'; untilReleaseMs: number }
  /** Prepared, never released, and something stops it first: withdraw it (delete its Job, then record why). */
  | { kind: 'withdraw'; job: V1Job; withdrawal: Withdrawal }
  /** Prepared and due, and Pods of the SingletonJob still run: the release waits for them. */
  | { kind: 'releaseHeld'; pods: V1Pod[] }
  /** Finished, and Pods of the SingletonJob still run: wait for them. */
  | { kind: 'podsEnding' }
  /** Failed, with retry budget left: the next attempt is a new reservation. */
  | { kind: 'failedAttempt' }
  /** Being ended (Replace, a stall) and its Job still there: delete it (unless going) and wait. */
  | { kind: 'jobToDelete'; job: V1Job; deleting: boolean }
  /** Released and running: nothing to do. */
  | { kind: 'running' }
  /** Released; its Pod not running yet, within the start grace or without a stall to report: look again then. */
  | { kind: 'starting'; recheckInMs: number }
  /** Running again after a RunStalled condition: clear it. */
  | { kind: 'stallOver' }
  /** Not running at podStartDeadlineSeconds: mark it stalled (its Job then goes). */
  | { kind: 'startDeadline'; why: string; deadlineSeconds: number }
  /** Not running, and why is known: RunStalled says so (`changed`: the condition is new or different). */
  | { kind: 'stalled'; stall: Stall; message: string; changed: boolean; recheckInMs: number };

/** The state of the active run (see RunState). */
export function runState(v: RunView): RunState {
  const { sj, run, job } = v;
  if (job && run.jobUID && job.metadata?.uid !== run.jobUID)
    return { kind: 'duplicate', job, deleteIt: isOwnedBy(job, sj) && !job.metadata?.deletionTimestamp };
  if (!job) {
    if (!run.jobUID) {
      if (run.replacing) return { kind: 'reservationReplaced' };
      const wait = (toDate(run.notBefore)?.getTime() ?? 0) - v.now.getTime();
      if (wait > 0) return { kind: 'backingOff', recheckInMs: wait + REQUEUE_MARGIN_MS };
      return { kind: 'jobToCreate' };
    }
    // Gone: the run ends once no Pod of this SingletonJob can run any more.
    if (!v.pods) return { kind: 'needsPods' };
    if (v.pods.length) {
      const lingering =
        run.replacing || run.stalled
          ? v.pods.filter((pod) => !pod.metadata?.deletionTimestamp && belongsToRun(pod, run))
          : [];
      return lingering.length ? { kind: 'podsLeftBehind', pods: lingering } : { kind: 'podsOutliveJob', pods: v.pods };
    }
    return { kind: 'ended', outcome: run.replacing ? 'Replaced' : run.stalled ? 'Stalled' : 'Deleted' };
  }
  if (!run.jobUID && jobToken(job) !== run.token && isPendingAttempt(job, sj)) return { kind: 'staleAttempt', job };
  if (!isOwnedBy(job, sj) || jobToken(job) !== run.token) return { kind: 'nameTaken', job };
  if (!run.jobUID) return { kind: 'unrecordedJob', uid: job.metadata!.uid! };
  const outcome = jobOutcome(job);
  // Before Kueue's turn: a prepared Job is not handed to anyone before its time.
  if (isPrepared(run) && !run.replacing && !run.stalled && !outcome && job.spec?.suspend && !wasReleased(job))
    return preparedState(v, job);
  if (v.kueue && !run.replacing && !run.stalled && !outcome) return { kind: 'kueueAdmission', job };
  if (job.spec?.suspend && !run.replacing && !outcome)
    return wasReleased(job) ? { kind: 'resuspended', job } : { kind: 'toRelease', job };
  if (outcome) {
    // Only once a live list shows no Pod of this namespace/name running — even
    // when the Job proves its own Pods terminal (a Pod relabelled out of its Job
    // runs on; the run's annotation still names it).
    if (!v.pods) return { kind: 'needsPods' };
    if (v.pods.length) return { kind: 'podsEnding' };
    if (outcome === 'Failed' && !run.replacing && hasRetryBudget(sj, run)) return { kind: 'failedAttempt' };
    return {
      kind: 'ended',
      outcome: run.replacing ? 'Replaced' : outcome,
      completion: toDate(job.status?.completionTime),
    };
  }
  if (run.replacing || run.stalled)
    return { kind: 'jobToDelete', job, deleting: Boolean(job.metadata?.deletionTimestamp) };
  return startState(v, job);
}

/** A prepared run whose Job was never released: withdrawn, waiting for its time, held by Pods still running, or released. */
function preparedState(v: RunView, job: V1Job): RunState {
  const { sj, run, now } = v;
  const withdraw = withdrawal(sj, run, job, now, v.manual);
  if (withdraw) return { kind: 'withdraw', job, withdrawal: withdraw };
  const wait = (toDate(run.releaseTime)?.getTime() ?? 0) - now.getTime();
  if (wait > 0) return { kind: 'prepared', untilReleaseMs: wait };
  if (v.podsMayRun && !v.pods) return { kind: 'needsPods' };
  if (v.pods?.length) return { kind: 'releaseHeld', pods: v.pods };
  return { kind: 'toRelease', job };
}

/** A released run: running, on its way, or stalled (RunStalled while it waits, ended at podStartDeadlineSeconds). */
function startState(v: RunView, job: V1Job): RunState {
  const { sj, run, now } = v;
  const releasedAt = toDate(job.status?.startTime) ?? toDate(job.metadata?.creationTimestamp) ?? now;
  const age = now.getTime() - releasedAt.getTime();
  const isStalled = Boolean(runStalledCondition(sj.status));
  if (started(job, []) && !isStalled) return { kind: 'running' };
  if (age < START_GRACE_MS) return { kind: 'starting', recheckInMs: START_GRACE_MS - age + REQUEUE_MARGIN_MS };
  if (!v.pods) return { kind: 'needsPods' };
  const pods = v.pods;
  if (started(job, pods)) return isStalled ? { kind: 'stallOver' } : { kind: 'running' };
  if (!pods.length && !v.jobEvents) return { kind: 'needsJobEvents' };
  const events = pods.length ? { events: [] } : v.jobEvents!;
  const stall = diagnose(pods, events.events) ?? unexplained(pods, job, events.failure);
  const deadlineSeconds = sj.spec.podStartDeadlineSeconds ?? DEFAULT_POD_START_DEADLINE_SECONDS;
  const deadline = releasedAt.getTime() + deadlineSeconds * 1000;
  const why = stall
    ? `${stall.reason}: ${stall.message}`
    : `its Pod is still ${pods.length ? 'pending' : 'not created'}`;
  if (now.getTime() >= deadline)
    return { kind: 'startDeadline', why, deadlineSeconds: Math.round((deadline - releasedAt.getTime()) / 1000) };
  const recheckInMs = Math.max(
    REQUEUE_MARGIN_MS,
    Math.min(STALL_POLL_MS, deadline - now.getTime() + REQUEUE_MARGIN_MS),
  );
  if (!stall) return { kind: 'starting', recheckInMs };
  // Stable wording (no growing age): written once per reason, not every poll.
  const message = `Run ${run.name} has not started — ${stall.message}. It is ended at ${new Date(deadline).toISOString()} (podStartDeadlineSeconds) unless its Pod runs by then.`;
  const changed = setCondition(
    structuredClone(sj.status ?? {}),
    { type: Conditions.runStalled, status: 'True', reason: stall.reason, message },
    sj.metadata?.generation,
    now,
  );
  return { kind: 'stalled', stall, message, changed, recheckInMs };
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
export function hasRetryBudget(sj: SingletonJob, run: ActiveRun): boolean {
  return (run.attempt ?? 1) <= (sj.spec.jobTemplate.spec?.backoffLimit ?? 0);
}
