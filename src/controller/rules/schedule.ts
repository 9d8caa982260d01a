// Which slot is due, computed from a cron expression in an IANA time zone.
// A slot is identified by its UTC instant. What the slots are is defined by
// next() alone — the first slot strictly after an instant, found forward
// (cron-parser's prev() would return the repeated wall time of a DST
// fall-back, and a jump forward may land in it too) — and a fixed-hour
// schedule never runs a local wall time twice in a fall-back.
//
// A pass's work is bounded whatever the range it looks at (a per-second
// schedule held a day under Forbid has 86,400 slots in it; enumerating them
// blocked the event loop for seconds, past the leader's stall threshold):
// the latest slot is found from cron-parser's prev() as a hint, checked with
// next() (so it is always one of next()'s slots), with a binary search on
// next() when the hint does not hold; the slots before it are counted by
// arithmetic where the schedule repeats with a fixed period over the range,
// else enumerated up to COUNT_STEPS and then reported as a lower bound.
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
/**
 * How many slots a count enumerates one by one (a schedule whose slots no
 * arithmetic counts) before it stops and reports what it counted as a lower
 * bound. One step is one cron-parser parse and next() (~0.1 ms).
 */
export const COUNT_STEPS = 256;

/** How many slots lie in a range: `count` exactly, or at least `count` when `exact` is false. */
export interface SlotCount {
  count: number;
  exact: boolean;
}

export interface Schedule {
  expression: string;
  timeZone: string;
  /** First slot strictly after `after`. */
  next(after: Date): Date;
  /** The latest slot in (after, atOrBefore] — the one next() reaches last — or undefined; a bounded number of cron-parser iterations whatever the range. */
  latest(after: Date, atOrBefore: Date): Date | undefined;
  /** The slots in (after, until]: exact by arithmetic or by enumerating at most `limit` (default COUNT_STEPS) of them, else a lower bound. */
  count(after: Date, until: Date, limit?: number): SlotCount;
}

/** Counts (after, until] by enumerating with `next`: exact up to `limit` slots, else limit + 1 as a lower bound. At most limit + 1 calls of `next`. */
export function enumerateCount(next: (after: Date) => Date, after: Date, until: Date, limit = COUNT_STEPS): SlotCount {
  let count = 0;
  for (let t = next(after); t <= until; t = next(t)) {
    if (++count > limit) return { count, exact: false };
  }
  return { count, exact: true };
}

/**
 * The latest slot of `next` at or before `until`, `first` being one of its
 * slots ≤ until: a binary search on next() alone (so the answer is one of
 * next()'s slots, DST rules included), about log2(until − first in ms) calls.
 */
export function searchLatest(next: (after: Date) => Date, first: Date, until: Date): Date {
  // Invariant: best = next(lo) ≤ until < next(hi).
  let lo = first.getTime();
  let hi = until.getTime();
  let best = next(first);
  if (best > until) return first;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    const slot = next(new Date(mid));
    if (slot <= until) {
      // next(x) = slot for every x in [mid, slot): continue from its end.
      best = slot;
      lo = slot.getTime() - 1;
    } else {
      hi = mid;
    }
  }
  return best;
}

const validZones = new Set<string>();

export function validateTimeZone(timeZone: string): void {
  if (validZones.has(timeZone)) return;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw new ScheduleError(
      'InvalidTimeZone',
      `Time zone "${timeZone}" is not a known IANA time zone (for example "Europe/Berlin" or "UTC")`,
    );
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
    throw new ScheduleError(
      'InvalidSchedule',
      `Schedule "${expression}" is not a valid cron expression: ${err instanceof Error ? err.message : String(err)}`,
    );
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
  const next = (after: Date): Date => {
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
  };
  const periodic = periodicShape(probe);
  return {
    expression,
    timeZone,
    next,
    latest(after: Date, until: Date): Date | undefined {
      if (!(until > after)) return undefined;
      const first = next(after);
      if (first > until) return undefined;
      if (next(first) > until) return first;
      // cron-parser's prev() gives hints only (it may name a repeated wall
      // time, miss a slot spring-forward shifted, or give up near a DST
      // change): a slot is what next() gives from just before a hint, and the
      // answer is the one after which next() passes `until`.
      for (const hint of prevMatches(expr, timeZone, until, HINTS)) {
        if (hint <= first) break;
        let slot = next(new Date(hint.getTime() - 1));
        for (let step = 0; slot <= until && step < HINT_STEPS; step++) {
          const following = next(slot);
          if (following > until) return slot;
          slot = following;
        }
      }
      // Searched probes go around the cache: they would push out the slots passes ask for again.
      return searchLatest(compute, first, until);
    },
    count(after: Date, until: Date, limit = COUNT_STEPS): SlotCount {
      if (!(until > after)) return { count: 0, exact: true };
      const counted = periodic ? countPeriodic(periodic, timeZone, after, until) : undefined;
      if (counted !== undefined) return { count: counted, exact: true };
      return enumerateCount(next, after, until, limit);
    },
  };
}

/**
 * A schedule that runs every day the same way (day of month, month and day
 * of week unrestricted) repeats with a fixed period in local time: a minute
 * when only seconds are restricted, an hour when the hour is a wildcard, a
 * day otherwise. Over a range whose UTC offset is the same modulo that
 * period, its slots repeat with the period in UTC too, and their number in a
 * range is arithmetic. (A wildcard hour makes a DST fall-back's repeated hour
 * new instants, and a spring-forward skips no minute of the hour, so across
 * DST changes of whole hours the hourly and the per-minute shapes stay exact;
 * a fixed-hour schedule is counted so only while the offset does not change.)
 */
interface PeriodicShape {
  periodS: 60 | 3600 | 86_400;
  seconds: number[];
  minutes: number[];
  hours: number[];
}

function periodicShape(probe: CronExpression): PeriodicShape | undefined {
  const f = probe.fields;
  const numbers = (values: readonly unknown[]) =>
    [...new Set(values.filter((v): v is number => typeof v === 'number'))].sort((a, b) => a - b);
  const covers = (values: readonly unknown[], from: number, to: number) => {
    const have = new Set(values);
    for (let v = from; v <= to; v++) if (!have.has(v)) return false;
    return true;
  };
  const everyDay =
    covers(f.dayOfMonth.values, 1, 31) &&
    !f.dayOfMonth.hasLastChar &&
    covers(f.month.values, 1, 12) &&
    covers(f.dayOfWeek.values, 0, 6) &&
    !f.dayOfWeek.hasLastChar &&
    !f.dayOfWeek.nthDay;
  if (!everyDay) return undefined;
  const seconds = numbers(f.second.values);
  const minutes = numbers(f.minute.values);
  const hours = numbers(f.hour.values);
  const periodS = hours.length < 24 ? 86_400 : minutes.length < 60 ? 3600 : 60;
  return { periodS, seconds, minutes, hours };
}

/** Days of UTC offsets a periodic count samples at most (one a day: ~11 years, ~20 ms). */
const MAX_OFFSET_SAMPLES = 4000;

const mod = (a: number, n: number) => ((a % n) + n) % n;

/**
 * The slots of a periodic shape in (after, until], or undefined when the
 * range's UTC offset (sampled at both ends and once a day between them) is
 * not the same modulo the period throughout.
 */
function countPeriodic(shape: PeriodicShape, timeZone: string, after: Date, until: Date): number | undefined {
  const { periodS, seconds, minutes, hours } = shape;
  const phase = mod(utcOffsetMs(after, timeZone) / 1000, periodS);
  // Offsets are whole minutes: the per-minute shape needs no look at them.
  if (periodS > 60) {
    const days = (until.getTime() - after.getTime()) / 86_400_000;
    if (days > MAX_OFFSET_SAMPLES) return undefined;
    for (let t = after.getTime() + 86_400_000; t < until.getTime(); t += 86_400_000) {
      if (mod(utcOffsetMs(new Date(t), timeZone) / 1000, periodS) !== phase) return undefined;
    }
    if (mod(utcOffsetMs(until, timeZone) / 1000, periodS) !== phase) return undefined;
  }
  const below = (values: number[], v: number) => values.filter((x) => x < v).length;
  const perMinute = seconds.length;
  const perHour = minutes.length * perMinute;
  /** Slots at local phases 0..r of one period. */
  const upTo = (r: number): number => {
    const h = Math.floor(r / 3600);
    const m = Math.floor(r / 60) % 60;
    const sec = r % 60;
    const inMinute = below(seconds, sec + 1);
    const inHour = below(minutes, m) * perMinute + (minutes.includes(m) ? inMinute : 0);
    if (periodS === 60) return inMinute;
    if (periodS === 3600) return inHour;
    return below(hours, h) * perHour + (hours.includes(h) ? inHour : 0);
  };
  const perPeriod = periodS === 60 ? perMinute : periodS === 3600 ? perHour : hours.length * perHour;
  /** Slots (whole seconds s, local phase (s + offset) mod period) at or before second x, from an arbitrary origin. */
  const atOrBefore = (x: number): number => {
    const local = x + phase;
    const periods = Math.floor(local / periodS);
    return periods * perPeriod + upTo(local - periods * periodS);
  };
  return atOrBefore(Math.floor(until.getTime() / 1000)) - atOrBefore(Math.floor(after.getTime() / 1000));
}

/** How many of cron-parser's prev() matches latest() tries, and how many slots forward of each, before it searches. */
const HINTS = 3;
const HINT_STEPS = 3;

/** cron-parser's prev() matches at or before `atOrBefore`, latest first, at most `count`; fewer when it gives up. */
function* prevMatches(expr: string, timeZone: string, atOrBefore: Date, count: number): Generator<Date> {
  let iterator: CronExpression;
  try {
    iterator = CronExpressionParser.parse(expr, { tz: timeZone, currentDate: new Date(atOrBefore.getTime() + 1) });
  } catch {
    return;
  }
  for (let i = 0; i < count; i++) {
    let match: Date;
    try {
      match = iterator.prev().toDate();
    } catch {
      return;
    }
    yield match;
  }
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
  /** Due slots that will never run (older ones, or all when the deadline passed); at least this many when `skippedAtLeast`. */
  skipped: number;
  /** True when more slots were missed than were counted (`skipped` is a lower bound). */
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

/**
 * Slots in (since, now]: the latest runs if within `deadlineSeconds`, the rest
 * are skipped. Bounded work whatever the range: the latest and the one before
 * it are found without enumerating (Schedule.latest), the skipped ones are
 * counted by arithmetic where the schedule allows it (Schedule.count) and
 * otherwise up to COUNT_STEPS, beyond which `skipped` is a lower bound and
 * `skippedAtLeast` is set.
 */
export function dueSlots(schedule: Schedule, since: Date, now: Date, deadlineSeconds?: number): DueSlots {
  const latest = schedule.latest(since, now);
  const result: DueSlots = { skipped: 0, skippedAtLeast: false, next: schedule.next(latest ?? since) };
  if (!latest) return result;
  result.latest = latest;
  const counted = schedule.count(since, latest);
  result.skippedAtLeast = !counted.exact;
  const deadline = deadlineSeconds === undefined ? undefined : new Date(latest.getTime() + deadlineSeconds * 1000);
  if (deadline && now > deadline) {
    result.skipped = counted.count;
    result.lastSkipped = latest;
    return result;
  }
  result.slot = latest;
  result.skipped = Math.max(0, counted.count - 1);
  const previous = result.skipped > 0 ? schedule.latest(since, new Date(latest.getTime() - 1)) : undefined;
  if (previous) result.lastSkipped = previous;
  if (deadline) result.deadline = deadline;
  return result;
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
