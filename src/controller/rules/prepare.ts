// Prepared runs: two of a run's three fenced writes done before its slot.
//
// A scheduled run is prepared within spec.prepareAheadSeconds of its slot,
// once nothing is in flight: its Job is created suspended under the slot's
// name and recorded (token, slot, UID; status.activeRun with releaseTime) in
// one CAS'd, term-fenced write — the same two fences as a start at the slot.
// At the slot only the release is left: the UID- and marker-tested unsuspend,
// after the check that nothing of the namespace/name can still run. A retry
// attempt is prepared the same way, released at the end of its backoff.
//
// Until its release a prepared run has not started, and whatever would stop
// a run that has not started withdraws it — its Job, never released, deleted
// with a resourceVersion precondition, the history saying why:
// - the spec changed since its Job was built (a prepared Job never runs an
//   outdated template or schedule);
// - scheduled runs stopped (suspend, a pause after failures, no schedule);
// - a manual run was requested (it runs now, and the slot then meets it as a
//   run in flight: concurrencyPolicy decides);
// - its starting deadline passed before it could be released (the slot is
//   skipped);
// - someone changed the fields of its Job that the guarantees rest on.
// A withdrawn scheduled run does not take its slot: the next pass prepares it
// again from the current spec (or, past its deadline, counts it skipped).
// Pure rules; the pass acts on them (pass/active-run.ts, pass/start-run.ts).
import type { V1Job } from '@kubernetes/client-node';
import type { ActiveRun, SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import { scheduling } from './timing.ts';
import type { Due } from './timing.ts';
import { toDate } from './status.ts';

/**
 * A pass that finds a prepared run this close to its release time stays and
 * releases it at that instant (active-run.ts): the decision is made before,
 * only the patch is left at the slot. Prepared runs are looked at again this
 * long before their release time.
 */
export const RELEASE_ARM_MS = 200;

/** spec.prepareAheadSeconds when unset. */
export const DEFAULT_PREPARE_AHEAD_SECONDS = 60;
/** Kueue's label: a Job it manages is admitted by Kueue, which would hold quota for a prepared Job all along. */
const KUEUE_QUEUE_LABEL = 'kueue.x-k8s.io/queue-name';

/** Whether this run was prepared (created and recorded ahead of its release). */
export function isPrepared(run: ActiveRun): boolean {
  return run.releaseTime !== undefined;
}

/** How long before its slot the object's runs are prepared (0: not at all). */
export function prepareAheadMs(sj: SingletonJob): number {
  if (sj.spec.jobTemplate.metadata?.labels?.[KUEUE_QUEUE_LABEL]) return 0;
  return (sj.spec.prepareAheadSeconds ?? DEFAULT_PREPARE_AHEAD_SECONDS) * 1000;
}

export type Preparation =
  /** Prepare the run of `slot` now; it is released at `releaseAt` (the slot, jitter included). */
  | { kind: 'now'; slot: Date; releaseAt: Date }
  /** The window opens at `at`: come back then. */
  | { kind: 'later'; at: Date };

/**
 * Whether the next slot's run is prepared now (nothing due, nothing skipped to
 * record; the caller has checked nothing is in flight, queued or requested).
 * Undefined when the object prepares nothing.
 */
export function preparation(sj: SingletonJob, due: Due | undefined, now: Date): Preparation | undefined {
  if (!due || due.slot || due.skipped > 0) return undefined;
  const ahead = prepareAheadMs(sj);
  if (ahead <= 0) return undefined;
  const opens = new Date(due.nextAt.getTime() - ahead);
  if (now < opens) return { kind: 'later', at: opens };
  return { kind: 'now', slot: due.next, releaseAt: due.nextAt };
}

export interface Withdrawal {
  /** CamelCase, for the history (recentRuns[].reason) and the Event. */
  reason: 'SpecChanged' | 'SchedulingStopped' | 'ManualRequest' | 'DeadlineMissed' | 'JobModified';
  message: string;
}

/**
 * Why a prepared run whose Job was never released must be withdrawn now, or
 * undefined. `manual`: a manual request not taken into account yet.
 */
export function withdrawal(
  sj: SingletonJob,
  run: ActiveRun,
  job: V1Job,
  now: Date,
  manual: string | undefined,
): Withdrawal | undefined {
  const generation = sj.metadata?.generation;
  if (run.generation !== undefined && generation !== undefined && run.generation !== generation)
    return {
      reason: 'SpecChanged',
      message: `the spec changed (generation ${run.generation} → ${generation}) after its Job was prepared: a prepared Job never runs an outdated template`,
    };
  const modified = guardViolations(job, sj, run);
  if (modified.length)
    return { reason: 'JobModified', message: `its Job was changed by someone else: ${modified.join('; ')}` };
  // Retry attempts go on as reserved attempts do: only a spec change or a tampered Job withdraws them.
  if ((run.attempt ?? 1) > 1 || run.kind !== 'Scheduled') return undefined;
  if (!scheduling(sj))
    return {
      reason: 'SchedulingStopped',
      message: sj.spec.suspend
        ? 'the SingletonJob was suspended before its slot'
        : 'scheduled runs stopped before its slot (paused after failures, or no schedule)',
    };
  if (manual)
    return {
      reason: 'ManualRequest',
      message: `manual request "${manual}" runs now; the slot then waits on it as on any run in flight`,
    };
  const deadline = sj.spec.startingDeadlineSeconds;
  const releaseAt = toDate(run.releaseTime);
  if (deadline !== undefined && releaseAt && now.getTime() > releaseAt.getTime() + deadline * 1000)
    return {
      reason: 'DeadlineMissed',
      message: `it could not be released within startingDeadlineSeconds (${deadline}) of its slot`,
    };
  return undefined;
}

/**
 * The fields of a run's Job the guarantees rest on, as JSON-patch tests: one
 * Pod at a time, and the template's marks by which its Pods are known as the
 * SingletonJob's (belongsTo). A suspended Job's parallelism and Pod-template
 * labels and annotations are mutable: the release tests them, so a Job edited
 * while it waited is never released.
 */
export function releaseGuards(sj: SingletonJob, run: ActiveRun): { path: string; value: string | number }[] {
  return [
    { path: '/spec/parallelism', value: 1 },
    { path: `/spec/template/metadata/labels/${pointer(Keys.ownerUid)}`, value: sj.metadata!.uid! },
    { path: `/spec/template/metadata/labels/${pointer(Keys.run)}`, value: run.name },
    { path: `/spec/template/metadata/annotations/${pointer(Keys.singletonJob)}`, value: sj.metadata!.name! },
  ];
}

/** Which guarded fields of `job` differ from what the run's Job must hold (releaseGuards: one list for both). */
export function guardViolations(job: V1Job, sj: SingletonJob, run: ActiveRun): string[] {
  return releaseGuards(sj, run)
    .filter((g) => valueAt(job, g.path) !== g.value)
    .map(
      (g) =>
        `${describePath(g.path)} is ${JSON.stringify(valueAt(job, g.path) ?? null)}, not ${JSON.stringify(g.value)}`,
    );
}

/** The value at a JSON pointer (RFC 6901) in an object; undefined when the path is missing (a JSON-patch `test` then fails). */
export function valueAt(obj: unknown, path: string): unknown {
  let at: unknown = obj;
  for (const raw of path.split('/').slice(1)) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[raw.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return at;
}

/** A JSON pointer as a person reads it: spec.template.metadata.labels[singleton.dev/run]. */
function describePath(path: string): string {
  const parts = path
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const key = parts.at(-1)!;
  return key.includes('/') ? `${parts.slice(0, -1).join('.')}[${key}]` : parts.join('.');
}

/** A key as a JSON-pointer segment (RFC 6901). */
function pointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}
