import {
  CONDITION_MESSAGE_MAX,
  fitMessage,
  healthyReadiness,
  nextToken,
  newerThan,
  recordFinished,
  rejectTemplate,
  setCondition,
  setReady,
  TokenExhaustedError,
} from './status.ts';
import { singletonJobSchema } from '../../api/v1alpha1/singletonjob.ts';
import type { SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import type { SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';

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
    const s: SingletonJobStatus = {
      currentToken: 3,
      activeRun: { name: 'x-3', token: 3, term: 1, kind: 'Manual', requestId: 'r', reservedTime: 'z' },
    };
    s.recentRuns = Array.from({ length: 10 }, (_, i) => ({
      name: `x-${i}`,
      token: 1,
      term: 1,
      kind: 'Manual' as const,
      outcome: 'Failed' as const,
      finishedTime: 'z',
    }));
    recordFinished(s, s.activeRun!, 'Succeeded', new Date('2025-01-01T00:00:00Z'));
    expect(s.activeRun).toBeUndefined();
    expect(s.recentRuns).toHaveLength(10);
    expect(s.recentRuns![0]).toMatchObject({ name: 'x-3', outcome: 'Succeeded', requestId: 'r', reservedTime: 'z' }); // its start, for durations (kubectl singleton history)
    expect(s.lastSuccessfulTime).toBe('2025-01-01T00:00:00.000Z');
  });
});

describe('messages that embed an API error fit their field', () => {
  it("is the CRD's maxLength of a condition message", () => {
    expect(CONDITION_MESSAGE_MAX).toBe(32768);
  });

  it('keeps a message that fits, and cuts one that does not to exactly the limit, saying how much was cut', () => {
    expect(fitMessage('short')).toBe('short');
    const long = `Job.batch "x" is invalid: [${Array.from({ length: 2000 }, (_, i) => `spec.template.spec.containers[${i}].image: Required value`).join(', ')}]`;
    const cut = fitMessage(long);
    expect(cut.length).toBeLessThanOrEqual(CONDITION_MESSAGE_MAX);
    expect(cut.length).toBeGreaterThan(CONDITION_MESSAGE_MAX - 3);
    expect(cut.startsWith(long.slice(0, 1000))).toBe(true);
    expect(cut).toMatch(/… \[cut: \d+ more characters\]$/);
    const n = Number(/cut: (\d+) more/.exec(cut)![1]);
    expect(cut.indexOf(' … [cut:') + n).toBe(long.length); // kept + cut = all of it
    expect(fitMessage(long, 100).length).toBe(100);
  });

  it('never splits a surrogate pair', () => {
    const emoji = '😀'.repeat(100); // 200 UTF-16 code units
    const cut = fitMessage(emoji, 51);
    expect(cut.length).toBeLessThanOrEqual(51);
    expect(/[\ud800-\udbff](?![\udc00-\udfff])/.test(cut)).toBe(false);
  });

  it('setCondition cuts every condition it writes, so the status stays valid for the CRD (zod agrees)', () => {
    const s: SingletonJobStatus = {};
    const message = 'x'.repeat(100_000);
    expect(
      setCondition(
        s,
        { type: 'Ready', status: 'False', reason: 'JobRejected', message },
        1,
        new Date('2026-01-01T00:00:00Z'),
      ),
    ).toBe(true);
    expect(s.conditions![0]!.message.length).toBeLessThanOrEqual(CONDITION_MESSAGE_MAX);
    // The same long message again is no change (compared after the cut): no write every pass.
    expect(setCondition(s, { type: 'Ready', status: 'False', reason: 'JobRejected', message }, 1, new Date())).toBe(
      false,
    );
    expect(singletonJobSchema.shape.status.safeParse(s).success).toBe(true);
  });

  it('a refused template makes Ready False (JobRejected) for that generation only', () => {
    const sj = {
      metadata: { generation: 3 },
      spec: { schedule: '* * * * *', jobTemplate: {} },
    } as unknown as SingletonJob;
    const status: SingletonJobStatus = {};
    rejectTemplate(status, sj, 'refused: exceeded quota', new Date());
    expect(healthyReadiness({ ...sj, status })).toEqual({
      ready: false,
      reason: 'JobRejected',
      message: 'refused: exceeded quota',
    });
    expect(healthyReadiness({ ...sj, metadata: { generation: 4 }, status }).ready).toBe(true);
  });
});
