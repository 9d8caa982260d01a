import { compileSchedule, dueSlots, isRepeatedWallTime, parseSchedule, ScheduleError } from './schedule.ts';

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
    expect(parseSchedule('*/5 * * * * *').next(t('2025-01-01T00:00:00Z')).toISOString()).toBe('2025-01-01T00:00:05.000Z');
    expect(parseSchedule('@midnight').next(t('2025-01-01T10:00:00Z')).toISOString()).toBe('2025-01-02T00:00:00.000Z');
  });

  it('evaluates the schedule in its time zone', () => {
    expect(parseSchedule('0 0 * * *', 'Europe/Berlin').next(t('2025-06-01T12:00:00Z')).toISOString()).toBe('2025-06-01T22:00:00.000Z');
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
  const wall = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', weekday: 'short' });
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

  it('bounds the work after a long outage with a per-second schedule', () => {
    const started = performance.now();
    const due = dueSlots(parseSchedule('* * * * * *'), t('2025-01-01T00:00:00Z'), t('2025-01-03T00:00:00.500Z'), 10);
    expect(due.slot?.toISOString()).toBe('2025-01-03T00:00:00.000Z');
    expect(due.skippedAtLeast).toBe(true);
    expect(performance.now() - started).toBeLessThan(2000);
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
      const times = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? start + random() * 366 * 86_400_000 : start + 86_400_000 * 300 + random() * 3 * 86_400_000));
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
