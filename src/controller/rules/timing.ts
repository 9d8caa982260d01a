// When an object's slots fall due for this operator: the schedule in its
// time zone, shifted by the object's jitter, held while it is suspended or
// paused after failures. One place, so the decision, the requeue and
// status.nextScheduleTime never disagree.
import { createHash } from 'node:crypto';
import type { SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import { dueSlots, enumerateCount, parseSchedule } from './schedule.ts';
import type { DueSlots, Schedule } from './schedule.ts';
import { pausedAfterFailures, toDate } from './status.ts';

/**
 * Added to every "come back at instant T" requeue: a timer may fire a
 * millisecond early, and a pass that wakes just before T finds nothing due
 * and sleeps until its next bound.
 */
export const REQUEUE_MARGIN_MS = 5;

/** A "come back at instant `at`" requeue from `now`: the time until it (0 once it has come) plus the margin. */
export function untilMs(at: Date, now: Date): number {
  return Math.max(0, at.getTime() - now.getTime()) + REQUEUE_MARGIN_MS;
}

/**
 * The object's jitter: a fixed offset in [0, jitterSeconds] seconds (ms
 * resolution) from a hash of its UID — the same on every replica and every
 * leader, so a slot is never judged due by one and not yet by another.
 */
export function jitterMs(sj: SingletonJob): number {
  const seconds = sj.spec.jitterSeconds ?? 0;
  if (seconds <= 0) return 0;
  const h = createHash('sha256')
    .update(sj.metadata?.uid ?? sj.metadata?.name ?? '')
    .digest();
  return h.readUInt32BE(0) % (seconds * 1000 + 1);
}

/** The object's cron expressions: `schedule`, or every entry of `schedules`. */
export function expressions(sj: SingletonJob): string[] {
  return sj.spec.schedules?.length ? sj.spec.schedules : sj.spec.schedule ? [sj.spec.schedule] : [];
}

/**
 * The object's schedule: one cron expression, or several whose slots are
 * merged (an instant two of them share is one slot). Undefined without any.
 * Throws ScheduleError for an invalid expression or time zone.
 */
export function objectSchedule(sj: SingletonJob): Schedule | undefined {
  const all = expressions(sj).map((e) => parseSchedule(e, sj.spec.timeZone));
  if (all.length <= 1) return all[0];
  const next = (after: Date) => new Date(Math.min(...all.map((s) => s.next(after).getTime())));
  return {
    expression: all.map((s) => s.expression).join(' | '),
    timeZone: all[0]!.timeZone,
    next,
    // The union's latest slot is its components' latest.
    latest: (after, until) => {
      const found = all.map((s) => s.latest(after, until)?.getTime() ?? -Infinity);
      const at = Math.max(...found);
      return at === -Infinity ? undefined : new Date(at);
    },
    // Enumerated (instants two schedules share are one slot); past the limit
    // the union holds at least as many as its largest component (counted by
    // arithmetic where it can be, else not enumerated again: limit 0).
    count: (after, until, limit) => {
      const counted = enumerateCount(next, after, until, limit);
      if (counted.exact) return counted;
      return { count: Math.max(counted.count, ...all.map((s) => s.count(after, until, 0).count)), exact: false };
    },
  };
}

/** Whether scheduled slots are acted on at all now. */
export function scheduling(sj: SingletonJob, status: SingletonJobStatus = sj.status ?? {}): boolean {
  return expressions(sj).length > 0 && !sj.spec.suspend && !pausedAfterFailures(sj, status);
}

export interface Due extends DueSlots {
  /** When the next slot falls due for this object (jitter included). */
  nextAt: Date;
  /** When the due slot stops being startable (jitter included), if it has a deadline. */
  deadlineAt?: Date;
}

/** The due and skipped slots as of `now`, with the jitter applied; undefined when the object does not schedule. Throws ScheduleError. */
export function dueAt(sj: SingletonJob, now: Date, status: SingletonJobStatus = sj.status ?? {}): Due | undefined {
  if (!scheduling(sj, status)) return undefined;
  const offset = jitterMs(sj);
  const since = takenUntil(status) ?? toDate(sj.metadata?.creationTimestamp) ?? now;
  const due = dueSlots(objectSchedule(sj)!, since, new Date(now.getTime() - offset), sj.spec.startingDeadlineSeconds);
  const result: Due = { ...due, nextAt: new Date(due.next.getTime() + offset) };
  if (due.deadline) result.deadlineAt = new Date(due.deadline.getTime() + offset);
  return result;
}

/**
 * The latest slot already taken into account: lastScheduleTime, or the slot
 * of a prepared scheduled run (recorded before its slot, when lastScheduleTime
 * is not moved yet: it is settled by the first write after the release).
 */
function takenUntil(status: SingletonJobStatus): Date | undefined {
  const last = toDate(status.lastScheduleTime);
  const run = status.activeRun;
  const prepared = run?.releaseTime && run.kind === 'Scheduled' ? toDate(run.slot) : undefined;
  return prepared && (!last || prepared > last) ? prepared : last;
}

/**
 * A prepared scheduled run whose slot lastScheduleTime does not show yet: the
 * slot it waits for (the next one the operator acts on; jitter included).
 */
export function preparedSlotPending(status: SingletonJobStatus): string | undefined {
  const run = status.activeRun;
  if (!run?.releaseTime || run.kind !== 'Scheduled' || !run.slot) return undefined;
  const last = toDate(status.lastScheduleTime);
  return !last || last < new Date(run.slot) ? run.releaseTime : undefined;
}

/**
 * Settles a prepared run once its release time has come (in the first status
 * write after it): lastScheduleTime and lastRunTime say it started. Before,
 * they kept showing the previous run — a prepared run has not started.
 */
export function settlePrepared(status: SingletonJobStatus, now: Date): void {
  const run = status.activeRun;
  const release = toDate(run?.releaseTime);
  if (!run || !release || release > now) return;
  if (run.kind === 'Scheduled' && run.slot) {
    const last = toDate(status.lastScheduleTime);
    if (!last || last < new Date(run.slot)) status.lastScheduleTime = run.slot;
  }
  const lastRun = toDate(status.lastRunTime);
  if ((run.attempt ?? 1) === 1 && (!lastRun || lastRun < release)) status.lastRunTime = run.releaseTime;
}

/** When the object's next slot strictly after `now` falls due (jitter included); undefined when it does not schedule. Throws ScheduleError. */
export function nextSlotAt(sj: SingletonJob, now: Date): Date | undefined {
  if (!scheduling(sj)) return undefined;
  const offset = jitterMs(sj);
  return new Date(
    objectSchedule(sj)!
      .next(new Date(now.getTime() - offset))
      .getTime() + offset,
  );
}

/** status.nextScheduleTime for a status about to be written: the next slot this operator will act on. */
export function nextScheduleTime(sj: SingletonJob, status: SingletonJobStatus, now: Date): string | undefined {
  try {
    const due = dueAt(sj, now, status);
    if (!due) return undefined;
    // A queued or held slot is still to be acted on; so is a prepared one; otherwise the next one.
    if (status.queuedSlot) return status.queuedSlot;
    const prepared = preparedSlotPending(status);
    if (prepared) return prepared;
    if (due.slot) return new Date(due.slot.getTime() + jitterMs(sj)).toISOString();
    return due.nextAt.toISOString();
  } catch {
    return undefined; // an invalid schedule is reported through Ready
  }
}
