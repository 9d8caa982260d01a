// Backfill: a person asks for the runs of a past time range — the annotation
// singleton.dev/backfill: "<from>/<to>" (RFC 3339 instants; `kubectl
// singleton backfill`). The slots of the object's schedule in (from, to] run
// one after another, oldest first, each as its own run with its own token
// and its slot, under the normal policy: only when nothing is in flight, and
// after the object's due scheduled slot and manual request. A new annotation
// value is a new request; only the latest is remembered (status.backfill).
import type { SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import type { Schedule, SlotCount } from './schedule.ts';
import { annotationId, toDate } from './status.ts';
import { objectSchedule } from './timing.ts';

/** At most this many slots per request: a typo in a range must not start a year of per-minute runs. */
export const MAX_BACKFILL_SLOTS = 1000;

type Backfill = NonNullable<SingletonJobStatus['backfill']>;

/** A new request in the annotation, judged: the range to record, or why it is refused. Undefined when there is nothing new. */
export function newBackfillRequest(sj: SingletonJob, now: Date): Backfill | undefined {
  const value = annotationId(sj, Keys.backfill);
  if (!value || value === sj.status?.backfill?.request) return undefined;
  const refuse = (error: string): Backfill => ({ request: value, error });
  const parts = value.split('/');
  if (parts.length !== 2)
    return refuse(
      `"${value}" is not "<from>/<to>" (two RFC 3339 instants, e.g. 2026-11-01T00:00:00Z/2026-11-03T00:00:00Z)`,
    );
  const [from, to] = parts.map((p) => new Date(p)) as [Date, Date];
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()))
    return refuse(`"${value}" does not hold two RFC 3339 instants`);
  if (!(from < to)) return refuse(`the range is empty: ${from.toISOString()} is not before ${to.toISOString()}`);
  if (to > now)
    return refuse(
      `the range ends in the future (${to.toISOString()}): backfill only runs past slots; the schedule runs the rest`,
    );
  const schedule = objectSchedule(sj);
  if (!schedule)
    return refuse('the object has no schedule: there are no slots to backfill (use singleton.dev/run-now)');
  const { count } = countRange(schedule, from, to);
  if (count > MAX_BACKFILL_SLOTS) return refuse(`the range holds more than ${MAX_BACKFILL_SLOTS} slots; split it`);
  if (count === 0) return refuse(`the schedule has no slot in (${from.toISOString()}, ${to.toISOString()}]`);
  return { request: value, from: from.toISOString(), to: to.toISOString(), runs: 0 };
}

const counted = new Map<string, SlotCount>();
const MAX_COUNTED = 256;

/**
 * The slots of a range, up to MAX_BACKFILL_SLOTS + 1: by arithmetic where the
 * schedule allows it (a per-second schedule over years costs nothing), else
 * enumerated — at most MAX_BACKFILL_SLOTS + 1 cron-parser steps (~0.1 ms
 * each), and only once per request and schedule: a request is judged on every
 * pass until it is recorded (and by a standing-by installation, which never
 * records it), so the answer is remembered.
 */
function countRange(schedule: Schedule, from: Date, to: Date): SlotCount {
  const key = `${schedule.timeZone}\n${schedule.expression}\n${from.getTime()}\n${to.getTime()}`;
  let hit = counted.get(key);
  if (hit) {
    counted.delete(key); // re-insert: most recently used last
  } else {
    hit = schedule.count(from, to, MAX_BACKFILL_SLOTS);
    if (counted.size >= MAX_COUNTED) counted.delete(counted.keys().next().value!);
  }
  counted.set(key, hit);
  return hit;
}

/** The next slot the recorded request still has to run, if any. */
export function nextBackfillSlot(sj: SingletonJob): Date | undefined {
  const b = sj.status?.backfill;
  if (!b || b.error || b.completed || !b.from || !b.to) return undefined;
  const schedule = objectSchedule(sj);
  if (!schedule) return undefined;
  const slot = schedule.next(toDate(b.cursor) ?? new Date(b.from));
  return slot <= new Date(b.to) ? slot : undefined;
}
