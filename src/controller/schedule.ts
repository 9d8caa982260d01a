// Which slot is due, computed from a cron expression in an IANA time zone.
// A slot is identified by its UTC instant; slots are always enumerated forward
// from the last handled one (cron-parser's prev() would return the repeated
// wall time of a DST fall-back, and a jump forward may land in it too), and a
// fixed-hour schedule never runs a local wall time twice in a fall-back.
import { CronExpressionParser } from 'cron-parser';
import type { CronExpression } from 'cron-parser';

export class ScheduleError extends Error {
  reason: 'InvalidSchedule' | 'InvalidTimeZone';
  constructor(reason: 'InvalidSchedule' | 'InvalidTimeZone', message: string) {
    super(message);
    this.reason = reason;
  }
}

const MACROS: Record<string, string> = { '@midnight': '@daily' };
/** How many slots are enumerated before jumping ahead (a long outage with a per-second schedule). */
const MAX_STEPS = 1000;

export interface Schedule {
  expression: string;
  timeZone: string;
  /** First slot strictly after `after`. */
  next(after: Date): Date;
}

export function validateTimeZone(timeZone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw new ScheduleError('InvalidTimeZone', `Time zone "${timeZone}" is not a known IANA time zone (for example "Europe/Berlin" or "UTC")`);
  }
}

export function parseSchedule(expression: string, timeZone = 'UTC'): Schedule {
  validateTimeZone(timeZone);
  const expr = MACROS[expression.trim()] ?? expression.trim();
  let probe: CronExpression;
  try {
    probe = CronExpressionParser.parse(expr, { tz: timeZone, strict: false });
    probe.next();
  } catch (err) {
    throw new ScheduleError('InvalidSchedule', `Schedule "${expression}" is not a valid cron expression: ${err instanceof Error ? err.message : String(err)}`);
  }
  // With a wildcard hour the schedule is interval-like and the repeated hour
  // consists of new instants (cron-parser's own forward semantics); with fixed
  // hours a repeated wall time would be the same slot again.
  const fixedHours = probe.fields.hour.values.length < 24;
  return {
    expression,
    timeZone,
    next(after: Date): Date {
      let from = after;
      for (;;) {
        const slot = CronExpressionParser.parse(expr, { tz: timeZone, currentDate: from }).next().toDate();
        if (!fixedHours || !isRepeatedWallTime(slot, timeZone)) return slot;
        from = slot;
      }
    },
  };
}

export interface DueSlots {
  /** The slot to run now, if any (the latest due one, within the deadline). */
  slot?: Date;
  /** Due slots that will never run (older ones, or all when the deadline passed). */
  skipped: number;
  /** True when more slots were missed than were counted. */
  skippedAtLeast: boolean;
  /** The newest skipped slot, if any. */
  lastSkipped?: Date;
  /** Latest due slot (run or skipped); the new lastScheduleTime. */
  latest?: Date;
  /** When the next slot is due, strictly after now. */
  next: Date;
  /** When `slot` stops being startable (its deadline), if it has one. */
  deadline?: Date;
}

/** Slots in (since, now]: the latest runs if within `deadlineSeconds`, the rest are skipped. */
export function dueSlots(schedule: Schedule, since: Date, now: Date, deadlineSeconds?: number): DueSlots {
  let latest: Date | undefined;
  let previous: Date | undefined;
  let count = 0;
  let atLeast = false;
  let cursor = since;
  for (let steps = 0; ; steps++) {
    if (steps === MAX_STEPS) {
      // Jump ahead: everything older than the look-back is skipped anyway.
      atLeast = true;
      const lookback = new Date(now.getTime() - (deadlineSeconds ?? 3600) * 1000 - 1000);
      if (lookback > cursor) cursor = lookback;
    }
    const slot = schedule.next(cursor);
    if (slot > now) {
      const result: DueSlots = { skipped: 0, skippedAtLeast: atLeast, next: slot };
      if (!latest) return result;
      result.latest = latest;
      const deadline = deadlineSeconds === undefined ? undefined : new Date(latest.getTime() + deadlineSeconds * 1000);
      if (deadline && now > deadline) {
        result.skipped = count;
        result.lastSkipped = latest;
        return result;
      }
      result.slot = latest;
      result.skipped = count - 1;
      if (previous) result.lastSkipped = previous;
      if (deadline) result.deadline = deadline;
      return result;
    }
    previous = latest;
    latest = slot;
    count++;
    cursor = slot;
  }
}

const offsetFormats = new Map<string, Intl.DateTimeFormat>();

/** UTC offset of `timeZone` at `at`, in milliseconds. */
export function utcOffsetMs(at: Date, timeZone: string): number {
  let fmt = offsetFormats.get(timeZone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' });
    offsetFormats.set(timeZone, fmt);
  }
  const name = fmt.formatToParts(at).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /GMT([+-])(\d{2}):(\d{2})/.exec(name);
  if (!m) return 0;
  const sign = m[1] === '-' ? -1 : 1;
  return sign * (Number(m[2]) * 3600_000 + Number(m[3]) * 60_000);
}

/** True when the local wall time of `at` already occurred earlier (the second pass of a DST fall-back). */
export function isRepeatedWallTime(at: Date, timeZone: string): boolean {
  const offset = utcOffsetMs(at, timeZone);
  for (const hoursBack of [1, 2, 3]) {
    const shift = utcOffsetMs(new Date(at.getTime() - hoursBack * 3600_000), timeZone) - offset;
    if (shift > 0 && utcOffsetMs(new Date(at.getTime() - shift), timeZone) - offset === shift) return true;
  }
  return false;
}
