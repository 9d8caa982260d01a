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

const validZones = new Set<string>();

export function validateTimeZone(timeZone: string): void {
  if (validZones.has(timeZone)) return;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw new ScheduleError('InvalidTimeZone', `Time zone "${timeZone}" is not a known IANA time zone (for example "Europe/Berlin" or "UTC")`);
  }
  validZones.add(timeZone);
}

/**
 * Parsed schedules (and refusals), by time zone and expression. Every pass of
 * every object asks for its schedule and its next slot; parsing the cron
 * expression and walking luxon's time-zone arithmetic on every pass blocked
 * the event loop for seconds at 10,000 objects (bench/results/probes.md).
 * Bounded: least recently used entries go first.
 */
const parsed = new Map<string, Schedule | ScheduleError>();
const MAX_PARSED = 4096;

export function parseSchedule(expression: string, timeZone = 'UTC'): Schedule {
  const key = `${timeZone}\n${expression}`;
  let hit = parsed.get(key);
  if (hit) {
    parsed.delete(key); // re-insert: most recently used last
  } else {
    try {
      hit = compileSchedule(expression, timeZone);
    } catch (err) {
      if (!(err instanceof ScheduleError)) throw err;
      hit = err;
    }
    if (parsed.size >= MAX_PARSED) parsed.delete(parsed.keys().next().value!);
  }
  parsed.set(key, hit);
  if (hit instanceof ScheduleError) throw hit;
  return hit;
}

/** How many distinct next slots one schedule remembers (objects sharing a schedule mostly share them). */
const KNOWN_SLOTS = 16;

export function compileSchedule(expression: string, timeZone: string): Schedule {
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
  const matcher = probe;
  const compute = (after: Date): Date => {
    let from = after;
    for (;;) {
      const slot = nextInZone(expr, timeZone, matcher, from);
      if (!fixedHours || !isRepeatedWallTime(slot, timeZone)) return slot;
      from = slot;
    }
  };
  // Known gaps [from, slot): no slot lies in (from, slot), so next(t) = slot
  // for every t in [from, slot). Exact results only, so DST handling is
  // unchanged; most recently used first.
  const known: Array<{ from: number; slot: number }> = [];
  return {
    expression,
    timeZone,
    next(after: Date): Date {
      const t = after.getTime();
      const i = known.findIndex((k) => k.from <= t && t < k.slot);
      if (i >= 0) {
        const k = known[i]!;
        if (i > 0) known.unshift(...known.splice(i, 1));
        return new Date(k.slot);
      }
      const slot = compute(after).getTime();
      // Two gaps ending at the same slot merge: neither holds a slot before it.
      const same = known.findIndex((k) => k.slot === slot);
      const from = same >= 0 ? Math.min(t, known.splice(same, 1)[0]!.from) : t;
      known.unshift({ from, slot });
      if (known.length > KNOWN_SLOTS) known.pop();
      return new Date(slot);
    },
  };
}

/** Days scanned minute by minute when cron-parser gives up near a DST change. */
const SCAN_DAYS = 8;

/**
 * The first instant after `after` that the expression matches in the zone.
 * cron-parser (5.x) throws "loop limit exceeded" for some starting points
 * near a DST change with a 30-minute shift (Australia/Lord_Howe: for "0 2 * *
 * *" on every start in the 24 hours before the April change), which would
 * leave such an object unable to schedule. Then the next SCAN_DAYS days are
 * scanned minute by minute with cron-parser's own matcher (includesDate, no
 * date arithmetic); with no match there, cron-parser resumes past the window.
 */
function nextInZone(expr: string, timeZone: string, matcher: CronExpression, after: Date, depth = 0): Date {
  try {
    return CronExpressionParser.parse(expr, { tz: timeZone, currentDate: after }).next().toDate();
  } catch (err) {
    if (depth > 2 || !(err instanceof Error) || !/loop limit/i.test(err.message)) throw err;
    const seconds = [...matcher.fields.second.values].map(Number).sort((a, b) => a - b);
    const start = Math.floor(after.getTime() / 60_000) * 60_000;
    const end = start + SCAN_DAYS * 86_400_000;
    for (let minute = start; minute < end; minute += 60_000) {
      for (const second of seconds) {
        const t = minute + second * 1000;
        if (t > after.getTime() && matcher.includesDate(new Date(t))) return new Date(t);
      }
    }
    return nextInZone(expr, timeZone, matcher, new Date(end - 1), depth + 1);
  }
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
