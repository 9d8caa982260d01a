import { jest } from '@jest/globals';
import { CronExpression } from 'cron-parser';
import {
  COUNT_STEPS,
  compileSchedule,
  dueSlots,
  enumerateCount,
  isRepeatedWallTime,
  parseSchedule,
  ScheduleError,
  searchLatest,
} from './schedule.ts';
import type { DueSlots, Schedule } from './schedule.ts';

const t = (iso: string) => new Date(iso);

describe('parseSchedule', () => {
  it('rejects a bad expression and a bad time zone with readable reasons', () => {
    expect(() => parseSchedule('not a cron')).toThrow(ScheduleError);
    try {
      parseSchedule('0 0 * * *', 'Mars/Olympus');
    } catch (err) {
      expect((err as ScheduleError).reason).toBe('InvalidTimeZone');
      expect((err as Error).message).toContain('Mars/Olympus');
    }
    expect(() => parseSchedule('61 * * * *')).toThrow(/not a valid cron expression/);
  });

  it('supports a leading seconds field and macros', () => {
    expect(parseSchedule('*/5 * * * * *').next(t('2025-01-01T00:00:00Z')).toISOString()).toBe(
      '2025-01-01T00:00:05.000Z',
    );
    expect(parseSchedule('@midnight').next(t('2025-01-01T10:00:00Z')).toISOString()).toBe('2025-01-02T00:00:00.000Z');
  });

  it('evaluates the schedule in its time zone', () => {
    expect(parseSchedule('0 0 * * *', 'Europe/Berlin').next(t('2025-06-01T12:00:00Z')).toISOString()).toBe(
      '2025-06-01T22:00:00.000Z',
    );
  });
});

describe('DST fall-back', () => {
  const ny = 'America/New_York';
  it('knows which instants repeat a wall time', () => {
    expect(isRepeatedWallTime(t('2025-11-02T05:30:00Z'), ny)).toBe(false); // 01:30 EDT
    expect(isRepeatedWallTime(t('2025-11-02T06:30:00Z'), ny)).toBe(true); // 01:30 EST
    expect(isRepeatedWallTime(t('2025-11-02T07:30:00Z'), ny)).toBe(false); // 02:30 EST
  });

  it('never runs a fixed wall time twice, even when enumeration starts inside the repeated hour', () => {
    const s = parseSchedule('30 1 * * *', ny);
    expect(s.next(t('2025-11-02T05:00:00Z')).toISOString()).toBe('2025-11-02T05:30:00.000Z');
    expect(s.next(t('2025-11-02T05:30:00Z')).toISOString()).toBe('2025-11-03T06:30:00.000Z');
    expect(s.next(t('2025-11-02T06:00:00Z')).toISOString()).toBe('2025-11-03T06:30:00.000Z');
    const due = dueSlots(s, t('2025-11-02T05:30:00Z'), t('2025-11-02T07:00:00Z'));
    expect(due.slot).toBeUndefined();
    expect(due.skipped).toBe(0);
  });

  it('keeps interval schedules (wildcard hour) running through the repeated hour', () => {
    const s = parseSchedule('0 * * * *', ny);
    expect(s.next(t('2025-11-02T05:00:00Z')).toISOString()).toBe('2025-11-02T06:00:00.000Z');
  });

  it('runs a slot of a spring-forward gap once, at the shifted instant', () => {
    const s = parseSchedule('30 2 * * *', 'Europe/Berlin');
    expect(s.next(t('2025-03-29T12:00:00Z')).toISOString()).toBe('2025-03-30T01:30:00.000Z');
  });
});

describe('a 30-minute DST change (Australia/Lord_Howe)', () => {
  const zone = 'Australia/Lord_Howe';
  const wall = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    weekday: 'short',
  });
  /** Independent of cron-parser: every instant, minute by minute, whose wall time is hh:mm (first occurrence per local day). */
  const reference = (hour: number, minute: number, from: Date, to: Date, sundaysOnly = false): string[] => {
    const out: string[] = [];
    const days = new Set<string>();
    for (let m = from.getTime() + 60_000; m <= to.getTime(); m += 60_000) {
      const p = Object.fromEntries(wall.formatToParts(new Date(m)).map((x) => [x.type, x.value]));
      if (Number(p.hour) !== hour || Number(p.minute) !== minute || (sundaysOnly && p.weekday !== 'Sun')) continue;
      const day = `${p.year}-${p.month}-${p.day}`;
      if (days.has(day)) continue; // the repeated half hour of the fall-back
      days.add(day);
      out.push(new Date(m).toISOString());
    }
    return out;
  };

  // cron-parser 5 throws "loop limit exceeded" from these starting points; the
  // schedule must still give every slot, exactly once, across the April change.
  it.each([
    ['0 1 * * *', 1, 0, false],
    ['0 2 * * *', 2, 0, false],
    ['15 3 * * *', 3, 15, false],
    ['45 1 * * *', 1, 45, false],
    ['0 1 * * 0', 1, 0, true],
  ])('"%s" gives the same slots as a minute-by-minute reference', (expr, hour, minute, sundaysOnly) => {
    const from = t('2026-03-28T00:00:00Z');
    const to = t('2026-04-20T00:00:00Z');
    const s = compileSchedule(expr, zone);
    const got: string[] = [];
    for (let at = s.next(from); at <= to; at = s.next(at)) got.push(at.toISOString());
    expect(got).toEqual(reference(hour, minute, from, to, sundaysOnly));
    expect(s.next(t('2026-04-04T14:00:00Z')).toISOString()).toBe(got.find((g) => g > '2026-04-04T14:00:00.000Z'));
  });
});

describe('dueSlots', () => {
  const s = parseSchedule('* * * * *');
  it('has nothing due before the first slot', () => {
    const due = dueSlots(s, t('2025-01-01T00:00:00Z'), t('2025-01-01T00:00:30Z'));
    expect(due.slot).toBeUndefined();
    expect(due.next.toISOString()).toBe('2025-01-01T00:01:00.000Z');
  });

  it('runs the latest of several missed slots and counts the others as skipped', () => {
    const due = dueSlots(s, t('2025-01-01T00:00:00Z'), t('2025-01-01T00:05:10Z'));
    expect(due.slot?.toISOString()).toBe('2025-01-01T00:05:00.000Z');
    expect(due.skipped).toBe(4);
    expect(due.lastSkipped?.toISOString()).toBe('2025-01-01T00:04:00.000Z');
    expect(due.next.toISOString()).toBe('2025-01-01T00:06:00.000Z');
  });

  it('skips every missed slot once the deadline of the latest has passed', () => {
    const due = dueSlots(s, t('2025-01-01T00:00:00Z'), t('2025-01-01T00:05:40Z'), 30);
    expect(due.slot).toBeUndefined();
    expect(due.skipped).toBe(5);
    expect(due.latest?.toISOString()).toBe('2025-01-01T00:05:00.000Z');
    expect(due.lastSkipped?.toISOString()).toBe('2025-01-01T00:05:00.000Z');
  });

  it('starts a slot within its deadline and says when the deadline ends', () => {
    const due = dueSlots(s, t('2025-01-01T00:00:00Z'), t('2025-01-01T00:01:20Z'), 30);
    expect(due.slot?.toISOString()).toBe('2025-01-01T00:01:00.000Z');
    expect(due.deadline?.toISOString()).toBe('2025-01-01T00:01:30.000Z');
  });
});

/** cron-parser iterations (next() and prev() steps, each a walk over its fields) made by `fn`. */
function counted<T>(fn: () => T): { result: T; iterations: number } {
  const next = jest.spyOn(CronExpression.prototype, 'next');
  const prev = jest.spyOn(CronExpression.prototype, 'prev');
  try {
    const result = fn();
    return { result, iterations: next.mock.calls.length + prev.mock.calls.length };
  } finally {
    next.mockRestore();
    prev.mockRestore();
  }
}

/** dueSlots as it was computed before its work was bounded: every slot in (since, now], one next() each. */
function enumeratedDue(schedule: Schedule, since: Date, now: Date, deadlineSeconds?: number): DueSlots {
  const slots: Date[] = [];
  let at = schedule.next(since);
  for (; at <= now; at = schedule.next(at)) slots.push(at);
  const result: DueSlots = { skipped: 0, skippedAtLeast: false, next: at };
  const latest = slots.at(-1);
  if (!latest) return result;
  result.latest = latest;
  const deadline = deadlineSeconds === undefined ? undefined : new Date(latest.getTime() + deadlineSeconds * 1000);
  if (deadline && now > deadline) return { ...result, skipped: slots.length, lastSkipped: latest };
  result.slot = latest;
  result.skipped = slots.length - 1;
  if (slots.length > 1) result.lastSkipped = slots.at(-2)!;
  if (deadline) result.deadline = deadline;
  return result;
}

describe('dueSlots does bounded work whatever the range (no seconds-long pass for the leader)', () => {
  // Before: one cron-parser parse and next() per slot in the range — 90,000
  // here (~11 s on one core), past the leader's stall threshold on every pass.
  it('a per-second schedule held a day under Forbid with a one-day deadline: the latest slot and an exact count', () => {
    const s = compileSchedule('* * * * * *', 'Europe/Berlin');
    const since = t('2025-01-01T23:00:00Z'); // the slot the held run started for
    const now = t('2025-01-03T00:00:00.500Z');
    const { result: due, iterations } = counted(() => dueSlots(s, since, now, 86_400));
    expect(due.slot?.toISOString()).toBe('2025-01-03T00:00:00.000Z');
    expect(due.skipped).toBe(25 * 3600 - 1);
    expect(due.skippedAtLeast).toBe(false);
    expect(due.lastSkipped?.toISOString()).toBe('2025-01-02T23:59:59.000Z');
    expect(due.next.toISOString()).toBe('2025-01-03T00:00:01.000Z');
    expect(due.deadline?.toISOString()).toBe('2025-01-04T00:00:00.000Z');
    expect(iterations).toBeLessThan(30);
    // The next pass, 2 s later: as cheap.
    const again = counted(() => dueSlots(s, since, new Date(now.getTime() + 2000), 86_400));
    expect(again.result.skipped).toBe(25 * 3600 + 1);
    expect(again.iterations).toBeLessThan(30);
  });

  it('a two-day outage of a per-second schedule without a deadline', () => {
    const { result: due, iterations } = counted(() =>
      dueSlots(parseSchedule('* * * * * *'), t('2025-01-01T00:00:00Z'), t('2025-01-03T00:00:00.500Z')),
    );
    expect(due.slot?.toISOString()).toBe('2025-01-03T00:00:00.000Z');
    expect(due.skipped).toBe(2 * 86_400 - 1);
    expect(due.skippedAtLeast).toBe(false);
    expect(iterations).toBeLessThan(30);
  });

  it('past the deadline, every slot of a long range is skipped and counted', () => {
    const { result: due, iterations } = counted(() =>
      dueSlots(
        parseSchedule('*/10 * * * * *', 'America/New_York'),
        t('2025-01-01T00:00:00Z'),
        t('2025-01-08T00:00:05Z'),
        3,
      ),
    );
    expect(due.slot).toBeUndefined();
    expect(due.skipped).toBe(7 * 8640);
    expect(due.latest?.toISOString()).toBe('2025-01-08T00:00:00.000Z');
    expect(due.lastSkipped?.toISOString()).toBe('2025-01-08T00:00:00.000Z');
    expect(iterations).toBeLessThan(30);
  });

  it('a year of an hourly schedule across both DST changes is counted exactly', () => {
    const { result: due, iterations } = counted(() =>
      dueSlots(parseSchedule('17 * * * *', 'Europe/Berlin'), t('2025-01-01T00:00:00Z'), t('2026-01-01T00:00:00Z')),
    );
    expect(due.slot?.toISOString()).toBe('2025-12-31T23:17:00.000Z');
    expect(due.skipped).toBe(365 * 24 - 1);
    expect(due.skippedAtLeast).toBe(false);
    expect(iterations).toBeLessThan(30);
  });

  it('a schedule no arithmetic counts (days of the week restricted): the latest slot, and a lower bound past COUNT_STEPS', () => {
    // Per second on weekdays, held from Friday noon to Monday noon.
    const { result: due, iterations } = counted(() =>
      dueSlots(parseSchedule('* * * * * 1-5'), t('2025-01-03T12:00:00Z'), t('2025-01-06T12:00:00.200Z'), 86_400 * 3),
    );
    expect(due.slot?.toISOString()).toBe('2025-01-06T12:00:00.000Z');
    expect(due.lastSkipped?.toISOString()).toBe('2025-01-06T11:59:59.000Z');
    expect(due.skippedAtLeast).toBe(true);
    expect(due.skipped).toBeGreaterThanOrEqual(COUNT_STEPS);
    expect(due.skipped).toBeLessThan(86_400);
    expect(iterations).toBeLessThan(COUNT_STEPS + 40);
  });

  it('a fixed-hour schedule across a DST change (arithmetic only counts it while the offset holds)', () => {
    // Every 10 s from 01:00 to 03:59 New York time, across the fall-back (01:xx twice: the second time skipped).
    const s = compileSchedule('*/10 * 1-3 * * *', 'America/New_York');
    const { result: due, iterations } = counted(() =>
      dueSlots(s, t('2025-11-01T12:00:00Z'), t('2025-11-02T12:00:00Z')),
    );
    expect(due.slot?.toISOString()).toBe('2025-11-02T08:59:50.000Z'); // 03:59:50 EST
    expect(due.skippedAtLeast).toBe(true);
    expect(iterations).toBeLessThan(COUNT_STEPS + 40);
    // Within the summer (one offset) it is exact: 3 hours × 360 a day.
    const summer = counted(() => dueSlots(s, t('2025-06-01T12:00:00Z'), t('2025-06-11T12:00:00Z')));
    expect(summer.result.skipped).toBe(10 * 3 * 360 - 1);
    expect(summer.result.skippedAtLeast).toBe(false);
    expect(summer.iterations).toBeLessThan(30);
  });

  it('the latest slot of a sparse schedule after years is found from prev(), not by walking forward', () => {
    const s = parseSchedule('0 9 29 2 *', 'Europe/Berlin'); // 29 February only
    const { result: due, iterations } = counted(() =>
      dueSlots(s, t('2001-01-01T00:00:00Z'), t('2025-01-01T00:00:00Z')),
    );
    expect(due.slot?.toISOString()).toBe('2024-02-29T08:00:00.000Z');
    expect(due.lastSkipped?.toISOString()).toBe('2020-02-29T08:00:00.000Z');
    expect(due.skipped).toBe(5); // 2004, 2008, 2012, 2016, 2020
    expect(due.skippedAtLeast).toBe(false);
    expect(iterations).toBeLessThan(30);
  });
});

describe('bounded dueSlots decides as enumerating every slot did', () => {
  // [expression, zone, an instant near a DST change]: ranges around it, random
  // lengths, with and without a deadline. Small enough to enumerate.
  const cases: Array<[string, string, string]> = [
    ['30 1 * * *', 'America/New_York', '2025-11-02T06:00:00Z'], // fall-back: 01:30 once
    ['30 2 * * *', 'Europe/Berlin', '2025-03-30T01:00:00Z'], // spring-forward: the shifted instant
    ['*/20 1-3 * * *', 'America/New_York', '2025-11-02T06:00:00Z'],
    ['*/20 1-3 * * *', 'America/New_York', '2025-03-09T07:00:00Z'],
    ['*/7 * * * *', 'America/New_York', '2025-11-02T06:00:00Z'], // wildcard hour: the repeated hour runs
    ['15,45 * * * *', 'Europe/Berlin', '2025-03-30T01:00:00Z'],
    ['5 * * * *', 'Australia/Lord_Howe', '2025-10-04T15:30:00Z'], // a 30-minute change: arithmetic must not apply
    ['*/13 * * * * *', 'Australia/Lord_Howe', '2025-10-04T15:30:00Z'],
    ['*/13 * * * * *', 'America/New_York', '2025-03-09T07:00:00Z'],
    ['0 */2 * * *', 'Asia/Kathmandu', '2025-06-01T00:00:00Z'],
    ['0 9-17 * * 1-5', 'Europe/Berlin', '2025-10-26T01:00:00Z'],
  ];
  let seed = 11;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;

  it.each(cases)('"%s" in %s around %s', (expr, zone, around) => {
    const s = compileSchedule(expr, zone);
    const perSecond = expr.split(' ').length === 6;
    const spanMs = (perSecond ? 40 * 60 : 30 * 3600) * 1000;
    for (let i = 0; i < 8; i++) {
      const since = new Date(Date.parse(around) - random() * spanMs + Math.floor(random() * 1000));
      const now = new Date(since.getTime() + random() * spanMs * 1.5);
      const deadline = i % 2 ? undefined : Math.floor(random() * 3600);
      expect(dueSlots(s, since, now, deadline)).toEqual(enumeratedDue(s, since, now, deadline));
      // Count and latest agree with enumeration whenever the count says it is exact.
      const counted = s.count(since, now, 0);
      if (counted.exact) expect(counted.count).toBe(enumerateCount((at) => s.next(at), since, now, Infinity).count);
    }
  });

  it('searchLatest (when prev() gives no usable hint) finds the last slot next() reaches', () => {
    const s = compileSchedule('30 1 * * *', 'America/New_York');
    const first = s.next(t('2025-10-30T00:00:00Z'));
    expect(searchLatest((at) => s.next(at), first, t('2025-11-02T07:00:00Z')).toISOString()).toBe(
      '2025-11-02T05:30:00.000Z',
    ); // 01:30 EDT, not EST
    expect(searchLatest((at) => s.next(at), first, t('2025-11-03T06:30:00Z')).toISOString()).toBe(
      '2025-11-03T06:30:00.000Z',
    );
    expect(searchLatest((at) => s.next(at), first, first).toISOString()).toBe(first.toISOString());
  });
});

describe('cached schedules', () => {
  it('answer next() exactly like an uncached parse, in any order, across DST changes', () => {
    const cases: Array<[string, string]> = [
      ['30 2 * * *', 'Europe/Berlin'],
      ['*/7 * * * *', 'America/New_York'],
      ['30 2 * * 0', 'Australia/Sydney'],
      ['17 3 1 1 *', 'Europe/Berlin'],
    ];
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const start = Date.UTC(2026, 0, 1);
    for (const [expr, tz] of cases) {
      const cached = parseSchedule(expr, tz);
      expect(parseSchedule(expr, tz)).toBe(cached);
      const times = Array.from({ length: 300 }, (_, i) =>
        i % 3 === 0 ? start + random() * 366 * 86_400_000 : start + 86_400_000 * 300 + random() * 3 * 86_400_000,
      );
      for (const t of times) {
        const at = new Date(Math.floor(t / 1000) * 1000);
        const fresh = compileSchedule(expr, tz).next(at);
        expect(cached.next(at).toISOString()).toBe(fresh.toISOString());
        // Just before and exactly at the slot (a slot is never its own successor).
        expect(cached.next(new Date(fresh.getTime() - 1)).toISOString()).toBe(fresh.toISOString());
        expect(cached.next(fresh).getTime()).toBeGreaterThan(fresh.getTime());
      }
    }
  });

  it('remember a refusal and give the same reason every time', () => {
    expect(() => parseSchedule('61 * * * *')).toThrow(ScheduleError);
    expect(() => parseSchedule('61 * * * *')).toThrow(/not a valid cron expression/);
    expect(() => parseSchedule('0 * * * *', 'Mars/Olympus')).toThrow(/not a known IANA time zone/);
  });
});
