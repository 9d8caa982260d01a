// Pure helpers over SingletonJob status: the Ready condition, the fencing
// token of the next run, and the record of a finished run.
import { MAX_SAFE } from '../../api/v1alpha1/builder.ts';
import type {
  ActiveRun,
  Condition,
  FinishedRun,
  SingletonJob,
  SingletonJobStatus,
} from '../../api/v1alpha1/singletonjob.ts';
import { Keys, singletonJobField } from '../../api/v1alpha1/singletonjob.ts';

export const RECENT_RUNS = 10;

export interface Readiness {
  ready: boolean;
  reason: string;
  message: string;
  /** Ready, but a state to tell with a Warning Event when it is written (a pause after failures). */
  warning?: boolean;
}

export class TokenExhaustedError extends Error {}

/**
 * The token of the next run (or retry attempt): above every token issued for
 * this namespace/name, and at least the leader's term.
 * - `currentToken + 1`: above this object's own earlier tokens.
 * - `term`: the etcd revision of this leader's Lease write, later than every
 *   reservation written under an earlier term.
 * - `resourceVersion`: the revision of the object the reservation is computed
 *   from (the CAS makes it the object's current one). Every token ever issued
 *   is below the revision of its own reservation write (by induction over the
 *   three terms here), and a SingletonJob re-created under the same name has a
 *   revision above every write of its deleted predecessor — so tokens keep
 *   increasing per namespace/name across delete and re-create, although the
 *   new object's status starts empty.
 */
export function nextToken(status: SingletonJobStatus, term: number, resourceVersion?: string): number {
  let revision = 0;
  if (resourceVersion && /^[1-9][0-9]*$/.test(resourceVersion)) {
    const big = BigInt(resourceVersion);
    revision = big > BigInt(MAX_SAFE) ? Infinity : Number(big);
  }
  const token = Math.max((status.currentToken ?? 0) + 1, term, revision);
  if (!Number.isSafeInteger(token) || token > MAX_SAFE)
    throw new TokenExhaustedError(`the next fencing token ${token} would not be below 2^53`);
  return token;
}

export function readyCondition(status: SingletonJobStatus): Condition | undefined {
  return status.conditions?.find((c) => c.type === 'Ready');
}

/** Sets Ready; returns true when anything a reader would notice changed. */
export function setReady(status: SingletonJobStatus, r: Readiness, generation: number | undefined, now: Date): boolean {
  return setCondition(
    status,
    { type: 'Ready', status: r.ready ? 'True' : 'False', reason: r.reason, message: r.message },
    generation,
    now,
  );
}

/** The CRD's maxLength of a condition's message, read from the schema the CRD is generated from. */
export const CONDITION_MESSAGE_MAX =
  singletonJobField.schema.properties!.status!.properties!.conditions!.items!.properties!.message!.maxLength!;

/**
 * A message cut to fit a status field of `max` characters (a condition's
 * message by default), saying where and how much was cut. Messages that embed
 * an API error can be of any length — a 422 lists every field error, a
 * webhook answers what it likes — and a status write whose field is too long
 * is itself refused, so the reason would never be told. Lengths count UTF-16
 * code units, as zod and JavaScript do (never fewer than the characters the
 * API server counts), and a cut never splits a surrogate pair.
 */
export function fitMessage(message: string, max: number = CONDITION_MESSAGE_MAX): string {
  if (message.length <= max) return message;
  const note = (n: number) => ` … [cut: ${n} more characters]`;
  let end = Math.max(0, max - note(message.length).length);
  end = Math.max(0, max - note(message.length - end).length); // the count cut may have fewer digits than the length
  const code = message.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return (message.slice(0, end) + note(message.length - end)).slice(0, max);
}

/** Sets one condition (by type), its message cut to fit (fitMessage); returns true when anything a reader would notice changed. */
export function setCondition(
  status: SingletonJobStatus,
  given: Pick<Condition, 'type' | 'status' | 'reason' | 'message'>,
  generation: number | undefined,
  now: Date,
): boolean {
  const c = { ...given, message: fitMessage(given.message) };
  const old = status.conditions?.find((x) => x.type === c.type);
  if (
    old &&
    old.status === c.status &&
    old.reason === c.reason &&
    old.message === c.message &&
    old.observedGeneration === generation
  )
    return false;
  const next: Condition = {
    ...c,
    lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now.toISOString(),
  };
  if (generation !== undefined) next.observedGeneration = generation;
  status.conditions = [...(status.conditions ?? []).filter((x) => x.type !== c.type), next];
  return true;
}

/**
 * The condition types this controller writes besides Ready. `RunStalled`: the
 * active run cannot start (its Pod is not running, its Job cannot be created)
 * — a run's trouble the operator handles (it ends the run at its deadline).
 * `Stalled` is kstatus' abnormal-true condition (Flux, cli-utils and kpt read
 * Stalled=True as "this object's reconciliation failed"), so it is written
 * only when the object itself cannot run (objectStalled).
 */
export const Conditions = {
  runStalled: 'RunStalled',
  stalled: 'Stalled',
  paused: 'Paused',
  contended: 'Contended',
  templateAccepted: 'TemplateAccepted',
  /** The active run's Job is handed to Kueue and waits for admission (quota): kstatus does not read it. */
  awaitingAdmission: 'AwaitingAdmission',
} as const;

/** Ready=False reasons that mean the object itself cannot run until its spec (or a policy) changes: kstatus `Failed`. */
export const OBJECT_FAILURES: readonly string[] = [
  'InvalidSpec',
  'InvalidSchedule',
  'InvalidTimeZone',
  'JobRejected',
  'TokenExhausted',
];

/** The active run's RunStalled condition, when True. */
export function runStalledCondition(status: SingletonJobStatus | undefined): Condition | undefined {
  return status?.conditions?.find((c) => c.type === Conditions.runStalled && c.status === 'True');
}

/** The active run's AwaitingAdmission condition, when True. */
export function awaitingAdmissionCondition(status: SingletonJobStatus | undefined): Condition | undefined {
  return status?.conditions?.find((c) => c.type === Conditions.awaitingAdmission && c.status === 'True');
}

/** Drops AwaitingAdmission (the run was admitted, or ended). */
export function clearAwaitingAdmission(status: SingletonJobStatus): void {
  status.conditions = status.conditions?.filter((c) => c.type !== Conditions.awaitingAdmission);
}

/** Drops RunStalled (all of it, or only the one with `reason`). */
export function clearRunStalled(status: SingletonJobStatus, reason?: string): void {
  status.conditions = status.conditions?.filter(
    (c) => !(c.type === Conditions.runStalled && (reason === undefined || c.reason === reason)),
  );
}

/**
 * Migration from the versions that wrote a stalled *run* as `Stalled` (kept
 * for one version): such a condition — any reason but OBJECT_FAILURES', which
 * those versions never wrote — is read as RunStalled, so the next status
 * write replaces it. Returns `sj` itself when there is nothing to migrate.
 */
export function migrateConditions(sj: SingletonJob): SingletonJob {
  const legacy = sj.status?.conditions?.find(
    (c) => c.type === Conditions.stalled && !OBJECT_FAILURES.includes(c.reason),
  );
  if (!legacy) return sj;
  const others = sj.status!.conditions!.filter((c) => c !== legacy);
  const conditions = others.some((c) => c.type === Conditions.runStalled)
    ? others
    : [...others, { ...legacy, type: Conditions.runStalled }];
  return { ...sj, status: { ...sj.status, conditions } };
}

/**
 * `Stalled` for kstatus, from Ready: True (with Ready's reason and message)
 * when the object itself cannot run (OBJECT_FAILURES), absent otherwise — a
 * stalled run, a pause after failures or a contended object are handled by an
 * operator and are kstatus `Current`.
 */
export function setObjectStalled(status: SingletonJobStatus, generation: number | undefined, now: Date): void {
  const ready = readyCondition(status);
  if (ready?.status === 'False' && OBJECT_FAILURES.includes(ready.reason)) {
    setCondition(
      status,
      { type: Conditions.stalled, status: 'True', reason: ready.reason, message: ready.message },
      generation,
      now,
    );
  } else {
    status.conditions = status.conditions?.filter((c) => c.type !== Conditions.stalled);
  }
}

/**
 * TemplateAccepted records which generation's Job the API server was asked
 * about, in its observedGeneration — a server-side dry run, or a run's own
 * create — and its answer. status.observedGeneration cannot tell: every
 * status write stamps it, also the writes of a run in flight while the spec
 * changed. False for the current generation holds new runs (Ready=False
 * JobRejected) until a re-probe is accepted.
 */
export function templateCondition(
  sj: SingletonJob,
  status: SingletonJobStatus = sj.status ?? {},
): Condition | undefined {
  const c = status.conditions?.find((x) => x.type === Conditions.templateAccepted);
  return c && c.observedGeneration === sj.metadata?.generation ? c : undefined;
}

/** Records that the API server accepts the Job of `sj`'s generation (`how`: DryRunAccepted, JobCreated). */
export function acceptTemplate(
  status: SingletonJobStatus,
  sj: SingletonJob,
  how: 'DryRunAccepted' | 'JobCreated' | 'DryRunUnsupported',
  now: Date,
  message?: string,
): boolean {
  const generation = sj.metadata?.generation;
  const current = templateCondition(sj, status);
  if (current?.status === 'True' && how === 'JobCreated') return false; // already known: no churn per run
  const words = {
    DryRunAccepted: `The API server accepts the Job this template makes (server-side dry run of generation ${generation})`,
    JobCreated: `The API server accepted the Job of a run of generation ${generation}`,
    DryRunUnsupported: `The Job of generation ${generation} cannot be checked by a server-side dry run: ${message ?? ''}`,
  }[how];
  return setCondition(
    status,
    { type: Conditions.templateAccepted, status: 'True', reason: how, message: words },
    generation,
    now,
  );
}

/** Records that the API server refuses the Job of `sj`'s generation, with its message. */
export function rejectTemplate(status: SingletonJobStatus, sj: SingletonJob, message: string, now: Date): boolean {
  return setCondition(
    status,
    { type: Conditions.templateAccepted, status: 'False', reason: 'JobRejected', message },
    sj.metadata?.generation,
    now,
  );
}

/** Scheduled runs are held after `suspendAfterFailures` failed runs in a row, until resumed. */
export function pausedAfterFailures(sj: SingletonJob, status: SingletonJobStatus = sj.status ?? {}): boolean {
  const limit = sj.spec.suspendAfterFailures;
  return limit !== undefined && (status.consecutiveFailures ?? 0) >= limit;
}

/**
 * Ready says whether the object is valid and runnable: False only when it
 * cannot run (OBJECT_FAILURES; kstatus reads Ready=False as InProgress, and
 * the Stalled condition written with it makes it Failed). A stalled run and a
 * pause after failures are the operator handling a run's trouble: Ready=True
 * with that reason and message (kstatus Current), their own conditions
 * (RunStalled, Paused) and Events.
 */
export function healthyReadiness(sj: SingletonJob): Readiness {
  const { timeZone, suspend } = sj.spec;
  const schedule = sj.spec.schedules?.length ? sj.spec.schedules.join('" and "') : sj.spec.schedule;
  const template = templateCondition(sj);
  if (template?.status === 'False') return { ready: false, reason: 'JobRejected', message: template.message };
  // A run in flight that cannot start, until it runs or is ended at its deadline.
  const stalled = runStalledCondition(sj.status);
  if (stalled) return { ready: true, reason: 'RunStalled', message: stalled.message };
  // Handed to Kueue, waiting for quota: the object is fine, its run queues.
  const queued = awaitingAdmissionCondition(sj.status);
  if (queued) return { ready: true, reason: 'AwaitingAdmission', message: queued.message };
  if (!schedule)
    return {
      ready: true,
      reason: 'OnDemand',
      message: `No schedule: runs start only on request (annotation ${Keys.runNow})`,
    };
  if (suspend)
    return { ready: true, reason: 'Suspended', message: 'Scheduled runs are suspended; manual requests still run' };
  if (pausedAfterFailures(sj)) {
    return {
      ready: true,
      warning: true,
      reason: 'PausedAfterFailures',
      message: `Scheduled runs are paused after ${sj.status?.consecutiveFailures} failed runs in a row; resume with the annotation ${Keys.resume} (a new value)`,
    };
  }
  return {
    ready: true,
    reason: 'Scheduled',
    message: `Runs on ${sj.spec.schedules?.length ? 'schedules' : 'schedule'} "${schedule}" in ${timeZone ?? 'UTC'}`,
  };
}

export function recordFinished(
  status: SingletonJobStatus,
  run: ActiveRun,
  outcome: FinishedRun['outcome'],
  now: Date,
  completion?: Date,
  reason?: string,
): void {
  const finished: FinishedRun = {
    name: run.name,
    token: run.token,
    term: run.term,
    kind: run.kind,
    outcome,
    finishedTime: now.toISOString(),
  };
  if (run.reservedTime) finished.reservedTime = run.reservedTime;
  if (run.slot) finished.slot = run.slot;
  if (run.requestId) finished.requestId = run.requestId;
  if (run.attempt && run.attempt > 1) finished.attempt = run.attempt;
  if (reason) finished.reason = reason.slice(0, 1024);
  delete status.activeRun;
  clearAwaitingAdmission(status);
  status.recentRuns = [finished, ...(status.recentRuns ?? [])].slice(0, RECENT_RUNS);
  if (outcome === 'Succeeded') status.lastSuccessfulTime = (completion ?? now).toISOString();
}

/** Timestamps arrive as strings (raw JSON) or Dates (client-node models). */
/** The id an annotation asks for (singleton.dev/run-now, resume, backfill), trimmed and cut to what status records; undefined when unset or empty. */
export function annotationId(sj: SingletonJob, key: string): string | undefined {
  return sj.metadata?.annotations?.[key]?.trim().slice(0, 253) || undefined;
}

export function toDate(value: Date | string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export { newerThan } from '../../kube/resource-version.ts';
