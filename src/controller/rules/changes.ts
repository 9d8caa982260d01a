// What the pass's simple actions (rules/action.ts) write, as values: the
// status change of the pass's one CAS write, the Events that say it, and the
// slots it counts as skipped. The pass (pass/reconciler.ts apply) writes the
// change once, then counts and says it. Starts, ends and the template check
// keep their own steps: their writes sit between requests (the start
// protocol's record, the dry run).
import type { ActiveRun, SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import {
  clearRunStalled,
  Conditions,
  healthyReadiness,
  recordFinished,
  setCondition,
  setReady,
  toDate,
} from './status.ts';
import type { Withdrawal } from './prepare.ts';
import type { Stall } from './stall.ts';
import type { Due } from './timing.ts';

export interface StatusChange {
  /** The pass's one status write. */
  status: (s: SingletonJobStatus) => void;
  /** Said once it is written, in order; `once`: said once per id and object, not on every pass. */
  events: { type: 'Normal' | 'Warning'; reason: string; message: string; once?: string }[];
  /** Slots it counts as skipped (singleton_operator_slots_skipped_total). */
  skippedSlots?: number;
}

/** Due slots that missed their starting deadline: recorded as taken into account, counted and said. */
export function recordSkipped(sj: SingletonJob, due: Due, why: string): StatusChange {
  return {
    status: (s) => {
      s.lastScheduleTime = due.latest!.toISOString();
      s.lastSkippedSlot = (due.lastSkipped ?? due.latest!).toISOString();
      s.skippedSlots = (s.skippedSlots ?? 0) + due.skipped;
    },
    skippedSlots: due.skipped,
    events: [
      {
        type: 'Warning',
        reason: 'SlotsSkipped',
        message: `Skipped ${due.skipped}${due.skippedAtLeast ? '+' : ''} slot(s), the latest ${due.latest!.toISOString()}: it ${why} (startingDeadlineSeconds ${sj.spec.startingDeadlineSeconds})`,
      },
    ],
  };
}

/** A queued slot that may not start: dropped, counted and said like any skipped slot. */
export function skipQueued(slot: Date, why: string): StatusChange {
  return {
    status: (s) => {
      delete s.queuedSlot;
      s.skippedSlots = (s.skippedSlots ?? 0) + 1;
      const last = toDate(s.lastSkippedSlot);
      if (!last || last < slot) s.lastSkippedSlot = slot.toISOString();
    },
    skippedSlots: 1,
    events: [{ type: 'Warning', reason: 'SlotsSkipped', message: `Skipped queued slot ${slot.toISOString()}: ${why}` }],
  };
}

/**
 * Queue (Temporal's BufferOne): the slot due while a run is in flight is
 * remembered and runs as soon as that run has ended; at most one waits, a
 * later slot while one is queued is skipped.
 */
export function queueSlot(sj: SingletonJob, active: ActiveRun, due: Due): StatusChange {
  const slot = due.slot!;
  const already = toDate(sj.status?.queuedSlot);
  const status = (s: SingletonJobStatus) => {
    s.lastScheduleTime = slot.toISOString();
    if (already) {
      s.skippedSlots = (s.skippedSlots ?? 0) + 1 + due.skipped;
      s.lastSkippedSlot = slot.toISOString();
    } else {
      s.queuedSlot = slot.toISOString();
      if (due.skipped > 0) s.skippedSlots = (s.skippedSlots ?? 0) + due.skipped;
    }
  };
  if (!already) {
    return {
      status,
      events: [
        {
          type: 'Normal',
          reason: 'RunQueued',
          message: `Slot ${slot.toISOString()} is queued: it runs as soon as run ${active.name} (token ${active.token}) has ended (concurrencyPolicy Queue)`,
        },
      ],
    };
  }
  return {
    status,
    skippedSlots: 1 + due.skipped,
    events: [
      {
        type: 'Warning',
        reason: 'SlotsSkipped',
        message: `Skipped slot ${slot.toISOString()}: slot ${already.toISOString()} is already queued behind run ${active.name} (concurrencyPolicy Queue keeps one)`,
      },
    ],
  };
}

/** Replace: the active run is marked replacing; its Job is deleted, and the next run starts once its Pods are gone. */
export function replaceRun(active: ActiveRun, what: string): StatusChange {
  return {
    status: (s) => {
      s.activeRun = { ...active, replacing: true };
    },
    events: [
      {
        type: 'Normal',
        reason: 'RunReplacing',
        message: `Replacing run ${active.name} (token ${active.token}) for ${what}: deleting its Job and waiting until its Pods are gone (concurrencyPolicy Replace)`,
      },
    ],
  };
}

/** A new backfill request (or why it is refused) is recorded; its slots run on later passes. */
export function recordBackfill(request: NonNullable<SingletonJobStatus['backfill']>): StatusChange {
  return {
    status: (s) => {
      s.backfill = request;
    },
    events: [
      request.error
        ? {
            type: 'Warning',
            reason: 'BackfillRefused',
            message: `Backfill "${request.request}" refused: ${request.error}`,
          }
        : {
            type: 'Normal',
            reason: 'BackfillRequested',
            message: `Backfill of the slots in (${request.from}, ${request.to}]: they run one after another, oldest first, each with its own token`,
          },
    ],
  };
}

/** Every slot of the backfill request has started: it is marked completed. */
export function completeBackfill(sj: SingletonJob): StatusChange {
  const b = sj.status!.backfill!;
  return {
    status: (s) => {
      s.backfill = { ...b, completed: true };
    },
    events: [
      {
        type: 'Normal',
        reason: 'BackfillCompleted',
        message: `Backfill "${b.request}": all ${b.runs ?? 0} slot(s) in (${b.from}, ${b.to}] have run`,
      },
    ],
  };
}

/** singleton.dev/resume with a new value ends a pause after failures. */
export function resume(sj: SingletonJob, id: string, now: Date): StatusChange {
  const generation = sj.metadata?.generation;
  return {
    status: (s) => {
      s.consecutiveFailures = 0;
      s.lastResumeId = id;
      // Slots missed while paused are not caught up (as after a suspend, only the latest within the deadline would run).
      s.lastScheduleTime = now.toISOString();
      setCondition(
        s,
        { type: Conditions.paused, status: 'False', reason: 'Resumed', message: `Resumed by ${Keys.resume}="${id}"` },
        generation,
        now,
      );
      setReady(s, healthyReadiness({ ...sj, status: s }), generation, now);
    },
    events: [
      {
        type: 'Normal',
        reason: 'Resumed',
        message: `Scheduled runs resumed (${Keys.resume}="${id}") after ${sj.status?.consecutiveFailures} failed runs in a row`,
      },
    ],
  };
}

/** This run's Job, created by a predecessor that did not get to record it: its UID is recorded (it never ran: a Job runs only once recorded). */
export function recordJobUID(run: ActiveRun, uid: string): StatusChange {
  return {
    status: (s) => {
      s.activeRun = { ...run, jobUID: uid };
    },
    events: [],
  };
}

/** The run's Pod runs after all: RunStalled goes. */
export function stallOver(sj: SingletonJob, now: Date): StatusChange {
  return {
    status: (s) => {
      clearRunStalled(s);
      setReady(s, healthyReadiness({ ...sj, status: s }), sj.metadata?.generation, now);
    },
    events: [],
  };
}

/** The run's Pod has not run within podStartDeadlineSeconds: the run is marked stalled (its Job then goes, and it ends once its Pods are gone). */
export function markStalled(run: ActiveRun, why: string, deadlineSeconds: number): StatusChange {
  return {
    status: (s) => {
      s.activeRun = { ...run, stalled: why.slice(0, 4096) };
    },
    events: [
      {
        type: 'Warning',
        reason: 'RunStalled',
        message: `Ending run ${run.name} (token ${run.token}): its Pod did not run within podStartDeadlineSeconds (${deadlineSeconds} s): ${why}`,
      },
    ],
  };
}

/** Why the released run's Pod does not run, on the object (RunStalled; Ready stays True) and said once per reason. */
export function noteStall(sj: SingletonJob, run: ActiveRun, stall: Stall, message: string, now: Date): StatusChange {
  const generation = sj.metadata?.generation;
  return {
    status: (s) => {
      setCondition(s, { type: Conditions.runStalled, status: 'True', reason: stall.reason, message }, generation, now);
      setReady(s, healthyReadiness({ ...sj, status: s }), generation, now);
    },
    events: [{ type: 'Warning', reason: 'RunStalled', message, once: `stalled:${run.name}:${stall.reason}` }],
  };
}

/**
 * A prepared run withdrawn before its release (rules/prepare.ts; its Job,
 * never released, is already deleted). A first attempt ends in the history as
 * Withdrawn, with why; its slot is not taken — prepared again from the current
 * spec, or, past its deadline, counted as skipped. A retry attempt (only a
 * spec change or a tampered Job withdraws one) goes back to a reservation
 * without a Job, created from the current spec at the end of its backoff.
 */
export function withdrawPrepared(sj: SingletonJob, run: ActiveRun, w: Withdrawal, now: Date): StatusChange {
  const said = `Withdrew prepared run ${run.name} (token ${run.token}) before its release at ${run.releaseTime}: ${w.message}. Its Job never ran and was deleted`;
  if ((run.attempt ?? 1) > 1) {
    return {
      status: (s) => {
        const { jobUID: _uid, releaseTime, generation: _generation, ...reserved } = run;
        s.activeRun = { ...reserved, notBefore: run.notBefore ?? releaseTime };
      },
      events: [{ type: 'Normal', reason: 'RunWithdrawn', message: `${said}; the attempt gets a new Job at its time` }],
    };
  }
  const skipped = w.reason === 'DeadlineMissed';
  const before = sj.status ?? {};
  return {
    status: (s) => {
      recordFinished(s, run, 'Withdrawn', now, undefined, w.reason);
      // A prepared run never started: the previous run stays the latest one,
      // and its slot is not taken (the write settled it if its time had come).
      restore(s, 'lastRunTime', before.lastRunTime);
      restore(s, 'lastScheduleTime', before.lastScheduleTime);
      if (skipped && run.slot) {
        const last = toDate(s.lastScheduleTime);
        if (!last || last < new Date(run.slot)) s.lastScheduleTime = run.slot;
        s.lastSkippedSlot = run.slot;
        s.skippedSlots = (s.skippedSlots ?? 0) + 1;
      }
      setReady(s, healthyReadiness({ ...sj, status: s }), sj.metadata?.generation, now);
    },
    ...(skipped ? { skippedSlots: 1 } : {}),
    events: [
      {
        type: skipped ? 'Warning' : 'Normal',
        reason: 'RunWithdrawn',
        message: skipped ? `${said}; slot ${run.slot} is skipped` : `${said}; the slot is prepared again`,
      },
    ],
  };
}

function restore(s: SingletonJobStatus, field: 'lastRunTime' | 'lastScheduleTime', value: string | undefined): void {
  if (value) s[field] = value;
  else delete s[field];
}
