import { nextToken, newerThan, recordFinished, setReady, TokenExhaustedError } from './status.ts';
import type { SingletonJobStatus } from '../api/v1alpha1/singletonjob.ts';

describe('nextToken', () => {
  it('is above every earlier token and at least the term', () => {
    expect(nextToken({}, 500)).toBe(500);
    expect(nextToken({ currentToken: 500 }, 500)).toBe(501);
    expect(nextToken({ currentToken: 900 }, 500)).toBe(901);
    expect(nextToken({ currentToken: 501 }, 7000)).toBe(7000);
  });

  it('is at least the revision the reservation is computed from (a re-created object starts above its predecessor)', () => {
    // The predecessor issued tokens up to 9000 under term 500 (each below the revision of its reservation write);
    // the re-created object has an empty status but a revision above every write of its predecessor.
    expect(nextToken({}, 500, '9100')).toBe(9100);
    expect(nextToken({ currentToken: 9100 }, 500, '9105')).toBe(9105);
    expect(nextToken({ currentToken: 9200 }, 500, '9105')).toBe(9201);
    expect(nextToken({}, 500, 'not-a-number')).toBe(500);
  });

  it('refuses tokens at or above 2^53', () => {
    expect(() => nextToken({ currentToken: Number.MAX_SAFE_INTEGER }, 1)).toThrow(TokenExhaustedError);
    expect(() => nextToken({}, 1, '9007199254740993')).toThrow(TokenExhaustedError);
  });
});

describe('status helpers', () => {
  it('compares resourceVersions as integers, not strings', () => {
    expect(newerThan('10', '9')).toBe(true);
    expect(newerThan('9', '10')).toBe(false);
    expect(newerThan('12345678901234567890', '12345678901234567889')).toBe(true);
  });

  it('keeps lastTransitionTime while the Ready status is unchanged', () => {
    const s: SingletonJobStatus = {};
    const t1 = new Date('2025-01-01T00:00:00Z');
    expect(setReady(s, { ready: true, reason: 'A', message: 'a' }, 1, t1)).toBe(true);
    expect(setReady(s, { ready: true, reason: 'A', message: 'a' }, 1, new Date())).toBe(false);
    setReady(s, { ready: true, reason: 'B', message: 'b' }, 2, new Date());
    expect(s.conditions![0]!.lastTransitionTime).toBe(t1.toISOString());
  });

  it('moves a finished run into the bounded history', () => {
    const s: SingletonJobStatus = { currentToken: 3, activeRun: { name: 'x-3', token: 3, term: 1, kind: 'Manual', requestId: 'r', reservedTime: 'z' } };
    s.recentRuns = Array.from({ length: 10 }, (_, i) => ({ name: `x-${i}`, token: 1, term: 1, kind: 'Manual' as const, outcome: 'Failed' as const, finishedTime: 'z' }));
    recordFinished(s, s.activeRun!, 'Succeeded', new Date('2025-01-01T00:00:00Z'));
    expect(s.activeRun).toBeUndefined();
    expect(s.recentRuns).toHaveLength(10);
    expect(s.recentRuns![0]).toMatchObject({ name: 'x-3', outcome: 'Succeeded', requestId: 'r', reservedTime: 'z' }); // its start, for durations (kubectl singleton history)
    expect(s.lastSuccessfulTime).toBe('2025-01-01T00:00:00.000Z');
  });
});
