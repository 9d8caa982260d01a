// What one reconcile pass does once the active run (if any) has been
// followed, as a value: report a problem, resume, record a backfill request,
// or — once the template check lets it — record skipped slots, start or skip
// a queued slot, queue, hold, replace, start, complete a backfill, or nothing.
// Judged from the object, what is due, a manual request and now alone; the
// pass (pass/reconciler.ts) acts on it.
import type { ActiveRun, SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import { Keys, singletonJobSchema } from '../../api/v1alpha1/singletonjob.ts';
import { newBackfillRequest, nextBackfillSlot } from './backfill.ts';
import { preparation } from './prepare.ts';
import { ScheduleError } from './schedule.ts';
import { annotationId, pausedAfterFailures, toDate } from './status.ts';
import type { Readiness } from './status.ts';
import { expressions, jitterMs, objectSchedule, REQUEUE_MARGIN_MS } from './timing.ts';
import type { Due } from './timing.ts';

/** While a due run is held (Forbid), the active run is re-checked live this often. */
export const HOLD_POLL_MS = 2000;

/** What a pass wants to start. */
export type Wanted = { kind: 'Scheduled' | 'Backfill'; slot: Date } | { kind: 'Manual'; requestId: string };

export type PassAction =
  /** The spec or schedule is invalid: Ready says so; nothing else happens. */
  | { kind: 'reportProblem'; problem: Readiness }
  /** A new singleton.dev/resume value ends a pause after failures. */
  | { kind: 'resume'; id: string }
  /** A new singleton.dev/backfill request (or why it is refused) is recorded; its slots run on later passes. */
  | { kind: 'recordBackfill'; request: NonNullable<SingletonJobStatus['backfill']> }
  /** After the template check (`starting`: a run is about to create its own Job, which asks the same question). */
  | { kind: 'afterTemplateCheck'; starting: boolean; then: ScheduleAction };

export type ScheduleAction =
  /** Due slots that missed their starting deadline: counted and said. */
  | { kind: 'recordSkipped'; due: Due }
  /** A queued slot that may no longer start: dropped, counted and said. */
  | { kind: 'skipQueued'; slot: Date; why: string }
  /** A queued slot, nothing in flight: it starts. */
  | { kind: 'startQueued'; slot: Date }
  /** concurrencyPolicy Queue: the due slot waits behind the active run (one at most). */
  | { kind: 'queue'; active: ActiveRun; due: Due }
  /** Forbid (or Queue, for a manual request): the wanted run waits; the active run is re-checked live by `requeueAfterMs`. */
  | { kind: 'hold'; active: ActiveRun; what: string; policy: string; requeueAfterMs: number }
  /** concurrencyPolicy Replace: the active run is marked replacing (its Job is deleted on the next passes). */
  | { kind: 'replace'; active: ActiveRun; what: string }
  /** Nothing in flight: the wanted run starts. */
  | { kind: 'start'; wanted: Wanted; due: Due | undefined }
  /** Every slot of a backfill request has started: it is marked completed. */
  | { kind: 'completeBackfill' }
  /** Nothing in flight, the next slot within prepareAheadSeconds: its run is prepared (rules/prepare.ts). */
  | { kind: 'prepare'; slot: Date; releaseAt: Date }
  /** Nothing to do but keep Ready current (and come back when the next run's preparation is due). */
  | { kind: 'idle'; prepareAt?: Date };

export interface ActionInputs {
  sj: SingletonJob;
  now: Date;
  /** The due and skipped slots (timing.ts dueAt), undefined when the object does not schedule or has a problem. */
  due: Due | undefined;
  /** A manual request not taken into account yet (manualRequest). */
  manual: string | undefined;
  /** What is wrong with the spec (specProblem). */
  problem: Readiness | undefined;
}

/** The pass's action (see PassAction). */
export function chooseAction({ sj, now, due, manual, problem }: ActionInputs): PassAction {
  const status = sj.status ?? {};
  if (problem) return { kind: 'reportProblem', problem };
  const resume = annotationId(sj, Keys.resume);
  if (resume && resume !== status.lastResumeId && pausedAfterFailures(sj)) return { kind: 'resume', id: resume };
  const request = newBackfillRequest(sj, now);
  if (request) return { kind: 'recordBackfill', request };

  const active = status.activeRun;
  const queued = toDate(status.queuedSlot);
  // Backfill slots only when nothing else is due and nothing is in flight: one after another.
  const backfill = !due?.slot && !manual && !active ? nextBackfillSlot(sj) : undefined;
  const wanted: Wanted | undefined = due?.slot
    ? { kind: 'Scheduled', slot: due.slot }
    : manual
      ? { kind: 'Manual', requestId: manual }
      : backfill
        ? { kind: 'Backfill', slot: backfill }
        : undefined;
  const then = (action: ScheduleAction): PassAction => ({
    kind: 'afterTemplateCheck',
    starting: (!active && Boolean(queued || wanted)) || action.kind === 'prepare',
    then: action,
  });

  if (due && !due.slot && due.skipped > 0) return then({ kind: 'recordSkipped', due });
  // A queued slot runs as soon as nothing is in flight (Queue policy) — if
  // it still may: not once the object was suspended or paused meanwhile,
  // nor past its starting deadline.
  if (queued && !active) {
    const why = queuedSlotVoid(sj, queued, now);
    return then(why ? { kind: 'skipQueued', slot: queued, why } : { kind: 'startQueued', slot: queued });
  }
  if (wanted && active) {
    const what =
      wanted.kind === 'Manual' ? `manual request "${wanted.requestId}"` : `slot ${wanted.slot.toISOString()}`;
    const policy = sj.spec.concurrencyPolicy ?? 'Forbid';
    if (policy === 'Queue' && wanted.kind === 'Scheduled' && due) return then({ kind: 'queue', active, due });
    if (policy === 'Replace') return then({ kind: 'replace', active, what });
    // Poll: the active run is re-checked live on the next pass (its end may
    // never reach a stale cache), and the held slot is re-judged at its deadline.
    const untilDeadline = due?.deadlineAt ? due.deadlineAt.getTime() - now.getTime() + REQUEUE_MARGIN_MS : undefined;
    return then({
      kind: 'hold',
      active,
      what,
      policy,
      requeueAfterMs: Math.max(0, Math.min(HOLD_POLL_MS, untilDeadline ?? HOLD_POLL_MS)),
    });
  }
  if (wanted) return then({ kind: 'start', wanted, due });
  const b = status.backfill;
  if (!active && b && !b.error && !b.completed && b.from && !nextBackfillSlot(sj))
    return then({ kind: 'completeBackfill' });
  const prep = !active && !queued ? preparation(sj, due, now) : undefined;
  if (prep?.kind === 'now') return then({ kind: 'prepare', slot: prep.slot, releaseAt: prep.releaseAt });
  return then(prep ? { kind: 'idle', prepareAt: prep.at } : { kind: 'idle' });
}

/** Why a queued slot may no longer start (undefined: it may). */
export function queuedSlotVoid(sj: SingletonJob, slot: Date, now: Date): string | undefined {
  if (!expressions(sj).length) return 'the SingletonJob has no schedule any more';
  if (sj.spec.suspend) return 'the SingletonJob was suspended meanwhile';
  if (pausedAfterFailures(sj))
    return `scheduled runs were paused meanwhile after ${sj.status?.consecutiveFailures} failed runs in a row`;
  const deadline = sj.spec.startingDeadlineSeconds;
  // As dueSlots judges a slot: on the object's jittered clock, late once past slot + deadline.
  if (deadline !== undefined && now.getTime() - jitterMs(sj) > slot.getTime() + deadline * 1000)
    return `it missed its starting deadline while queued (startingDeadlineSeconds ${deadline})`;
  return undefined;
}

/** A manual request (singleton.dev/run-now) not taken into account yet: `a`, `b`, `a` is three requests. None while the spec has a problem. */
export function manualRequest(sj: SingletonJob, problem?: unknown): string | undefined {
  const id = annotationId(sj, Keys.runNow);
  return !problem && id && id !== sj.status?.lastManualRequestId ? id : undefined;
}

/** Problems only the operator can see (the CRD schema catches the rest). */
export function specProblem(sj: SingletonJob): Readiness | undefined {
  const parsed = singletonJobSchema.safeParse(sj);
  if (!parsed.success) {
    const message = parsed.error.issues.map((i) => `${i.path.join('.') || 'object'}: ${i.message}`).join('; ');
    return { ready: false, reason: 'InvalidSpec', message };
  }
  if (expressions(sj).length) {
    try {
      objectSchedule(sj);
    } catch (err) {
      if (err instanceof ScheduleError) return { ready: false, reason: err.reason, message: err.message };
      throw err;
    }
  }
  return undefined;
}
