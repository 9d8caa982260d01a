import type { SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { dueAt, jitterMs, nextScheduleTime, objectSchedule } from './timing.ts';

const sj = (spec: Record<string, unknown>, uid = 'uid-1'): SingletonJob =>
  ({
    metadata: { name: 'x', namespace: 'ns', uid, creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { jobTemplate: {}, ...spec },
  }) as unknown as SingletonJob;

describe('several schedules', () => {
  it('merge their slots; an instant two share is one slot', () => {
    const s = objectSchedule(sj({ schedules: ['0 9 * * 1-5', '0 12 * * *', '0 9 * * *'], timeZone: 'Europe/Berlin' }))!;
    const after = new Date('2026-06-01T06:00:00Z'); // Monday 08:00 Berlin
    expect(s.next(after).toISOString()).toBe('2026-06-01T07:00:00.000Z'); // 09:00 Berlin, once
    expect(s.next(new Date('2026-06-01T07:00:00Z')).toISOString()).toBe('2026-06-01T10:00:00.000Z'); // 12:00 Berlin
  });

  it('due slots and the next run come from the merged schedule', () => {
    const o = sj({ schedules: ['*/10 * * * *', '5 * * * *'] });
    const due = dueAt(o, new Date('2026-06-01T12:06:00Z'), { lastScheduleTime: '2026-06-01T12:00:00Z' })!;
    expect(due.slot!.toISOString()).toBe('2026-06-01T12:05:00.000Z');
    expect(nextScheduleTime(o, { lastScheduleTime: '2026-06-01T12:05:00Z' }, new Date('2026-06-01T12:06:00Z'))).toBe(
      '2026-06-01T12:10:00.000Z',
    );
  });
});

describe('jitter', () => {
  it('is fixed per object, within bounds, and shifts when a slot is due', () => {
    const a = sj({ schedule: '0 * * * *', jitterSeconds: 600 }, 'uid-a');
    expect(jitterMs(a)).toBe(jitterMs(a));
    expect(jitterMs(a)).toBeGreaterThanOrEqual(0);
    expect(jitterMs(a)).toBeLessThanOrEqual(600_000);
    const offsets = new Set(
      ['u1', 'u2', 'u3', 'u4', 'u5'].map((u) => jitterMs(sj({ schedule: '0 * * * *', jitterSeconds: 600 }, u))),
    );
    expect(offsets.size).toBeGreaterThan(1);
    const offset = jitterMs(a);
    const before = new Date(Date.parse('2026-06-01T12:00:00Z') + offset - 1);
    const after = new Date(Date.parse('2026-06-01T12:00:00Z') + offset);
    expect(dueAt(a, before, { lastScheduleTime: '2026-06-01T11:00:00Z' })!.slot).toBeUndefined();
    expect(dueAt(a, after, { lastScheduleTime: '2026-06-01T11:00:00Z' })!.slot!.toISOString()).toBe(
      '2026-06-01T12:00:00.000Z',
    );
    expect(nextScheduleTime(a, { lastScheduleTime: '2026-06-01T12:00:00Z' }, after)).toBe(
      new Date(Date.parse('2026-06-01T13:00:00Z') + offset).toISOString(),
    );
  });

  it('no jitter without jitterSeconds', () => {
    expect(jitterMs(sj({ schedule: '0 * * * *' }))).toBe(0);
  });
});

describe('several schedules over a long range', () => {
  it("the latest slot is the components' latest; a count too large to enumerate is at least the largest component's", () => {
    const o = sj({ schedules: ['*/10 * * * * *', '0 0 9 * * 1-5'] });
    // Held a day: 8,640 ten-second slots, and 09:00:00 is one of them too.
    const due = dueAt(o, new Date('2026-06-02T00:00:00.500Z'), { lastScheduleTime: '2026-06-01T00:00:00Z' })!;
    expect(due.slot!.toISOString()).toBe('2026-06-02T00:00:00.000Z');
    expect(due.lastSkipped!.toISOString()).toBe('2026-06-01T23:59:50.000Z');
    expect(due.skippedAtLeast).toBe(true);
    expect(due.skipped).toBe(8640 - 1);
  });

  it('a union small enough to enumerate is counted exactly, a shared instant once', () => {
    const s = objectSchedule(sj({ schedules: ['*/10 * * * *', '5 * * * *', '0 * * * *'] }))!;
    expect(s.count(new Date('2026-06-01T12:00:00Z'), new Date('2026-06-01T13:00:00Z'))).toEqual({
      count: 7,
      exact: true,
    });
    expect(s.latest(new Date('2026-06-01T12:00:00Z'), new Date('2026-06-01T12:09:00Z'))!.toISOString()).toBe(
      '2026-06-01T12:05:00.000Z',
    );
    expect(s.latest(new Date('2026-06-01T12:00:00Z'), new Date('2026-06-01T12:04:00Z'))).toBeUndefined();
  });
});
