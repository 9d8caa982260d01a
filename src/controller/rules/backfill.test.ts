import { jest } from '@jest/globals';
import { CronExpression } from 'cron-parser';
import type { SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import { MAX_BACKFILL_SLOTS, newBackfillRequest, nextBackfillSlot } from './backfill.ts';

const sj = (schedule: string, range: string, timeZone = 'UTC'): SingletonJob =>
  ({
    metadata: { name: 'x', namespace: 'ns', uid: 'uid-1', annotations: { [Keys.backfill]: range } },
    spec: { jobTemplate: {}, schedule, timeZone },
  }) as unknown as SingletonJob;

const now = new Date('2026-06-01T00:00:00Z');

/** cron-parser iterations (next() and prev() steps) made by `fn`. */
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

describe('a backfill request', () => {
  it('is accepted up to MAX_BACKFILL_SLOTS slots and refused past them', () => {
    const exactly = sj('* * * * *', '2026-01-01T00:00:00Z/2026-01-01T16:40:00Z'); // 1000 minutes
    expect(newBackfillRequest(exactly, now)).toEqual({
      request: '2026-01-01T00:00:00Z/2026-01-01T16:40:00Z',
      from: '2026-01-01T00:00:00.000Z',
      to: '2026-01-01T16:40:00.000Z',
      runs: 0,
    });
    const oneMore = sj('* * * * *', '2026-01-01T00:00:00Z/2026-01-01T16:41:00Z');
    expect(newBackfillRequest(oneMore, now)?.error).toBe(
      `the range holds more than ${MAX_BACKFILL_SLOTS} slots; split it`,
    );
    expect(newBackfillRequest(sj('0 9 * * *', '2026-01-01T10:00:00Z/2026-01-01T20:00:00Z'), now)?.error).toMatch(
      /has no slot in/,
    );
  });

  it('over a huge range is judged without enumerating it (a per-second schedule over ten years)', () => {
    // Before: MAX_BACKFILL_SLOTS + 1 cron-parser steps (~0.1 ms each) to refuse it.
    const { result, iterations } = counted(() =>
      newBackfillRequest(sj('* * * * * *', '2016-01-01T00:00:00Z/2026-01-01T00:00:00Z', 'Europe/Berlin'), now),
    );
    expect(result?.error).toBe(`the range holds more than ${MAX_BACKFILL_SLOTS} slots; split it`);
    expect(iterations).toBeLessThan(5);
  });

  it('of a schedule no arithmetic counts enumerates at most MAX_BACKFILL_SLOTS + 1 slots, once per request', () => {
    const o = sj('0 9 * * 1-5', '2016-01-01T00:00:00Z/2026-01-01T00:00:00Z', 'Europe/Berlin');
    const first = counted(() => newBackfillRequest(o, now));
    expect(first.result?.error).toBe(`the range holds more than ${MAX_BACKFILL_SLOTS} slots; split it`);
    expect(first.iterations).toBeLessThanOrEqual(MAX_BACKFILL_SLOTS + 2); // + the one next() that parsing the schedule tries
    // Judged again on the next pass (until recorded; a standing-by installation never records it): remembered.
    const again = counted(() => newBackfillRequest(o, now));
    expect(again.result).toEqual(first.result);
    expect(again.iterations).toBe(0);
  });

  it('runs its slots oldest first', () => {
    const o = sj('0 * * * *', '2026-01-01T00:00:00Z/2026-01-01T03:00:00Z');
    o.status = { backfill: newBackfillRequest(o, now)! };
    expect(nextBackfillSlot(o)?.toISOString()).toBe('2026-01-01T01:00:00.000Z');
    o.status.backfill = { ...o.status.backfill!, cursor: '2026-01-01T03:00:00Z' };
    expect(nextBackfillSlot(o)).toBeUndefined();
  });
});
