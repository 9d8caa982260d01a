// Table tests of the pass's action (action.ts), in the style of the CronJob
// controller's utils_test.go: an object, what is due, a manual request, a
// fixed now → the action. What the pass does with each: pass/reconciler.test.ts.
import type { ActiveRun, SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import { chooseAction, manualRequest, specProblem } from './action.ts';
import type { ActionInputs, PassAction } from './action.ts';
import type { Due } from './timing.ts';

const NOW = new Date('2026-06-01T12:00:30Z');
const SLOT = new Date('2026-06-01T12:00:00Z');
const NEXT = new Date('2026-06-01T12:01:00Z');

function sj(
  over: {
    spec?: Partial<SingletonJob['spec']>;
    status?: SingletonJobStatus;
    annotations?: Record<string, string>;
  } = {},
): SingletonJob {
  return {
    apiVersion: 'singleton.dev/v1alpha1',
    kind: 'SingletonJob',
    metadata: { name: 'sj', namespace: 'ns', uid: 'sj-uid', generation: 1, annotations: over.annotations ?? {} },
    spec: {
      schedule: '* * * * *',
      jobTemplate: {
        spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] } } },
      },
      ...over.spec,
    },
    status: over.status ?? {},
  } as SingletonJob;
}

const active: ActiveRun = {
  name: 'sj-1780315200',
  token: 7,
  term: 3,
  kind: 'Scheduled',
  slot: SLOT.toISOString(),
  reservedTime: SLOT.toISOString(),
  jobUID: 'u',
};
const dueSlot = (over: Partial<Due> = {}): Due => ({
  slot: SLOT,
  skipped: 0,
  skippedAtLeast: false,
  latest: SLOT,
  next: NEXT,
  nextAt: NEXT,
  ...over,
});
const missed: Due = { skipped: 2, skippedAtLeast: false, latest: SLOT, lastSkipped: SLOT, next: NEXT, nextAt: NEXT };

interface Case {
  name: string;
  in: Partial<ActionInputs>;
  /** Matched as a subset (toMatchObject). */
  want: { kind: PassAction['kind']; starting?: boolean; then?: Record<string, unknown> } & Record<string, unknown>;
}

const cases: Case[] = [
  {
    name: 'a problem with the spec is reported, nothing else',
    in: { problem: { ready: false, reason: 'InvalidSchedule', message: 'x' }, due: dueSlot() },
    want: { kind: 'reportProblem' },
  },
  {
    name: 'a new resume value ends a pause after failures',
    in: {
      sj: sj({
        spec: { suspendAfterFailures: 2 },
        status: { consecutiveFailures: 2 },
        annotations: { [Keys.resume]: ' r1 ' },
      }),
    },
    want: { kind: 'resume', id: 'r1' },
  },
  {
    name: 'a resume value already taken does nothing',
    in: {
      sj: sj({
        spec: { suspendAfterFailures: 2 },
        status: { consecutiveFailures: 2, lastResumeId: 'r1' },
        annotations: { [Keys.resume]: 'r1' },
      }),
    },
    want: { kind: 'afterTemplateCheck', then: { kind: 'idle' } },
  },
  {
    name: 'a resume value while not paused does nothing',
    in: { sj: sj({ annotations: { [Keys.resume]: 'r1' } }) },
    want: { kind: 'afterTemplateCheck', then: { kind: 'idle' } },
  },
  {
    name: 'a new backfill request is recorded',
    in: { sj: sj({ annotations: { [Keys.backfill]: '2026-06-01T10:00:00Z/2026-06-01T10:02:00Z' } }) },
    want: {
      kind: 'recordBackfill',
      request: {
        request: '2026-06-01T10:00:00Z/2026-06-01T10:02:00Z',
        from: '2026-06-01T10:00:00.000Z',
        to: '2026-06-01T10:02:00.000Z',
        runs: 0,
      },
    },
  },
  {
    name: 'slots past their deadline are recorded as skipped',
    in: { due: missed },
    want: { kind: 'afterTemplateCheck', starting: false, then: { kind: 'recordSkipped', due: missed } },
  },
  {
    name: 'a due slot with nothing in flight starts (its create checks the template)',
    in: { due: dueSlot() },
    want: {
      kind: 'afterTemplateCheck',
      starting: true,
      then: { kind: 'start', wanted: { kind: 'Scheduled', slot: SLOT } },
    },
  },
  {
    name: 'a manual request with nothing in flight starts',
    in: { manual: 'm1' },
    want: {
      kind: 'afterTemplateCheck',
      starting: true,
      then: { kind: 'start', wanted: { kind: 'Manual', requestId: 'm1' } },
    },
  },
  {
    name: 'a due slot goes before a manual request',
    in: { due: dueSlot(), manual: 'm1' },
    want: { kind: 'afterTemplateCheck', then: { kind: 'start', wanted: { kind: 'Scheduled', slot: SLOT } } },
  },
  {
    name: 'a queued slot starts once nothing is in flight',
    in: { sj: sj({ spec: { concurrencyPolicy: 'Queue' }, status: { queuedSlot: SLOT.toISOString() } }) },
    want: { kind: 'afterTemplateCheck', starting: true, then: { kind: 'startQueued', slot: SLOT } },
  },
  {
    name: 'a queued slot of an object suspended meanwhile is skipped',
    in: { sj: sj({ spec: { concurrencyPolicy: 'Queue', suspend: true }, status: { queuedSlot: SLOT.toISOString() } }) },
    want: { kind: 'afterTemplateCheck', then: { kind: 'skipQueued', why: 'the SingletonJob was suspended meanwhile' } },
  },
  {
    name: 'a queued slot past its starting deadline is skipped',
    in: {
      sj: sj({
        spec: { concurrencyPolicy: 'Queue', startingDeadlineSeconds: 10 },
        status: { queuedSlot: SLOT.toISOString() },
      }),
    },
    want: {
      kind: 'afterTemplateCheck',
      then: { kind: 'skipQueued', why: 'it missed its starting deadline while queued (startingDeadlineSeconds 10)' },
    },
  },
  {
    name: 'a queued slot of an object without a schedule any more is skipped',
    in: {
      sj: sj({ spec: { schedule: undefined, concurrencyPolicy: 'Queue' }, status: { queuedSlot: SLOT.toISOString() } }),
    },
    want: {
      kind: 'afterTemplateCheck',
      then: { kind: 'skipQueued', why: 'the SingletonJob has no schedule any more' },
    },
  },
  {
    name: 'Forbid holds a due slot while a run is in flight, re-checking every 2 s',
    in: { sj: sj({ status: { activeRun: active } }), due: dueSlot() },
    want: {
      kind: 'afterTemplateCheck',
      starting: false,
      then: { kind: 'hold', policy: 'Forbid', what: `slot ${SLOT.toISOString()}`, requeueAfterMs: 2000 },
    },
  },
  {
    name: 'a held slot is re-judged at its deadline (plus the margin)',
    in: { sj: sj({ status: { activeRun: active } }), due: dueSlot({ deadlineAt: new Date(NOW.getTime() + 700) }) },
    want: { kind: 'afterTemplateCheck', then: { kind: 'hold', requeueAfterMs: 705 } },
  },
  {
    name: 'Queue queues a due slot behind the active run',
    in: { sj: sj({ spec: { concurrencyPolicy: 'Queue' }, status: { activeRun: active } }), due: dueSlot() },
    want: { kind: 'afterTemplateCheck', then: { kind: 'queue', active } },
  },
  {
    name: 'Queue holds a manual request (only slots queue)',
    in: { sj: sj({ spec: { concurrencyPolicy: 'Queue' }, status: { activeRun: active } }), manual: 'm1' },
    want: { kind: 'afterTemplateCheck', then: { kind: 'hold', policy: 'Queue', what: 'manual request "m1"' } },
  },
  {
    name: 'Replace replaces the active run',
    in: { sj: sj({ spec: { concurrencyPolicy: 'Replace' }, status: { activeRun: active } }), due: dueSlot() },
    want: { kind: 'afterTemplateCheck', then: { kind: 'replace', active, what: `slot ${SLOT.toISOString()}` } },
  },
  {
    name: 'the next backfill slot starts when nothing else is due or in flight',
    in: {
      sj: sj({
        status: { backfill: { request: 'b', from: '2026-06-01T10:00:00Z', to: '2026-06-01T10:02:00Z', runs: 0 } },
      }),
    },
    want: {
      kind: 'afterTemplateCheck',
      starting: true,
      then: { kind: 'start', wanted: { kind: 'Backfill', slot: new Date('2026-06-01T10:01:00Z') } },
    },
  },
  {
    name: 'a backfill slot waits for a run in flight (and is not held: nothing is wanted)',
    in: {
      sj: sj({
        status: {
          activeRun: active,
          backfill: { request: 'b', from: '2026-06-01T10:00:00Z', to: '2026-06-01T10:02:00Z', runs: 0 },
        },
      }),
    },
    want: { kind: 'afterTemplateCheck', starting: false, then: { kind: 'idle' } },
  },
  {
    name: 'a backfill whose slots have all started is completed',
    in: {
      sj: sj({
        status: {
          backfill: {
            request: 'b',
            from: '2026-06-01T10:00:00Z',
            to: '2026-06-01T10:02:00Z',
            cursor: '2026-06-01T10:02:00Z',
            runs: 2,
          },
        },
      }),
    },
    want: { kind: 'afterTemplateCheck', then: { kind: 'completeBackfill' } },
  },
  { name: 'nothing due: idle', in: {}, want: { kind: 'afterTemplateCheck', starting: false, then: { kind: 'idle' } } },
];

describe('the pass’s action', () => {
  it.each(cases)('$name', (c) => {
    expect(
      chooseAction({ sj: sj(), now: NOW, due: undefined, manual: undefined, problem: undefined, ...c.in }),
    ).toMatchObject(c.want);
  });
});

describe('a manual request', () => {
  it('is an id in singleton.dev/run-now that status has not taken yet', () => {
    expect(manualRequest(sj({ annotations: { [Keys.runNow]: 'a' } }))).toBe('a');
    expect(
      manualRequest(sj({ annotations: { [Keys.runNow]: 'a' }, status: { lastManualRequestId: 'a' } })),
    ).toBeUndefined();
    expect(manualRequest(sj({ annotations: { [Keys.runNow]: '  ' } }))).toBeUndefined();
    expect(manualRequest(sj({ annotations: { [Keys.runNow]: 'x'.repeat(300) } }))).toBe('x'.repeat(253));
  });

  it('is not one while the spec has a problem', () => {
    expect(manualRequest(sj({ annotations: { [Keys.runNow]: 'a' } }), { ready: false })).toBeUndefined();
  });
});

describe('a problem with the spec', () => {
  it('is an invalid schedule or time zone, or what the schema refuses', () => {
    expect(specProblem(sj())).toBeUndefined();
    expect(specProblem(sj({ spec: { schedule: '61 * * * *' } }))).toMatchObject({
      ready: false,
      reason: 'InvalidSchedule',
    });
    expect(specProblem(sj({ spec: { timeZone: 'Mars/Olympus' } }))).toMatchObject({
      ready: false,
      reason: 'InvalidTimeZone',
    });
  });
});
