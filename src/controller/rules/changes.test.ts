// The status changes of the pass's simple actions, as values: what one write
// sets, what it says, what it counts as skipped.
import type { ActiveRun, SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import {
  completeBackfill,
  markStalled,
  noteStall,
  queueSlot,
  recordBackfill,
  recordJobUID,
  recordSkipped,
  replaceRun,
  resume,
  skipQueued,
  stallOver,
} from './changes.ts';
import type { StatusChange } from './changes.ts';
import type { Due } from './timing.ts';

const NOW = new Date('2026-06-01T12:00:30Z');
const SLOT = new Date('2026-06-01T12:00:00Z');
const sj = (status: SingletonJobStatus = {}): SingletonJob =>
  ({
    metadata: { name: 'sj', namespace: 'ns', generation: 1 },
    spec: { jobTemplate: {}, startingDeadlineSeconds: 10 },
    status,
  }) as unknown as SingletonJob;
const active: ActiveRun = { name: 'sj-1', token: 7, term: 3, kind: 'Scheduled', reservedTime: SLOT.toISOString() };
const due = (over: Partial<Due> = {}): Due => ({
  slot: SLOT,
  skipped: 0,
  skippedAtLeast: false,
  latest: SLOT,
  next: NOW,
  nextAt: NOW,
  ...over,
});

function applied(change: StatusChange, status: SingletonJobStatus = {}) {
  const s = structuredClone(status);
  change.status(s);
  return { status: s, said: change.events.map((e) => `${e.type} ${e.reason}`), skipped: change.skippedSlots ?? 0 };
}

describe('status changes', () => {
  it('skipped slots: lastScheduleTime moves on, the count grows, SlotsSkipped', () => {
    const r = applied(
      recordSkipped(sj(), due({ slot: undefined, skipped: 3, lastSkipped: SLOT }), 'missed its starting deadline'),
      { skippedSlots: 1 },
    );
    expect(r).toMatchObject({
      status: { lastScheduleTime: SLOT.toISOString(), lastSkippedSlot: SLOT.toISOString(), skippedSlots: 4 },
      said: ['Warning SlotsSkipped'],
      skipped: 3,
    });
  });

  it('a void queued slot: dropped and counted, lastSkippedSlot never goes back', () => {
    const later = '2026-06-01T13:00:00.000Z';
    expect(applied(skipQueued(SLOT, 'x'), { queuedSlot: SLOT.toISOString(), lastSkippedSlot: later })).toEqual({
      status: { skippedSlots: 1, lastSkippedSlot: later },
      said: ['Warning SlotsSkipped'],
      skipped: 1,
    });
  });

  it('Queue keeps one slot; a later one while one waits is skipped', () => {
    expect(applied(queueSlot(sj(), active, due()))).toMatchObject({
      status: { queuedSlot: SLOT.toISOString(), lastScheduleTime: SLOT.toISOString() },
      said: ['Normal RunQueued'],
      skipped: 0,
    });
    const queued = { queuedSlot: '2026-06-01T11:59:00.000Z' };
    expect(applied(queueSlot(sj(queued), active, due({ skipped: 1 })), queued)).toMatchObject({
      status: { ...queued, skippedSlots: 2, lastSkippedSlot: SLOT.toISOString() },
      said: ['Warning SlotsSkipped'],
      skipped: 2,
    });
  });

  it('Replace marks the active run replacing', () => {
    expect(applied(replaceRun(active, 'slot x'))).toEqual({
      status: { activeRun: { ...active, replacing: true } },
      said: ['Normal RunReplacing'],
      skipped: 0,
    });
  });

  it('a backfill request is recorded (or its refusal), and completed once its slots have run', () => {
    expect(applied(recordBackfill({ request: 'r', from: 'a', to: 'b', runs: 0 })).said).toEqual([
      'Normal BackfillRequested',
    ]);
    expect(applied(recordBackfill({ request: 'r', error: 'no' })).said).toEqual(['Warning BackfillRefused']);
    const b = { request: 'r', from: 'a', to: 'b', runs: 2 };
    expect(applied(completeBackfill(sj({ backfill: b })), { backfill: b }).status.backfill).toEqual({
      ...b,
      completed: true,
    });
  });

  it('resume: failures reset, the id taken, missed slots not caught up, Paused=False', () => {
    const r = applied(resume(sj({ consecutiveFailures: 3 }), 'r1', NOW), { consecutiveFailures: 3 });
    expect(r.status).toMatchObject({ consecutiveFailures: 0, lastResumeId: 'r1', lastScheduleTime: NOW.toISOString() });
    expect(r.status.conditions?.find((c) => c.type === 'Paused')).toMatchObject({ status: 'False', reason: 'Resumed' });
    expect(r.said).toEqual(['Normal Resumed']);
  });

  it('the active run: a predecessor’s unrecorded Job recorded, a stall noted once per reason, cleared, or ended at its deadline', () => {
    expect(applied(recordJobUID(active, 'uid-1'))).toEqual({
      status: { activeRun: { ...active, jobUID: 'uid-1' } },
      said: [],
      skipped: 0,
    });
    const noted = noteStall(
      sj(),
      active,
      { reason: 'ImagePullBackOff', message: 'x' },
      'Run sj-1 has not started',
      NOW,
    );
    expect(noted.events).toEqual([
      {
        type: 'Warning',
        reason: 'RunStalled',
        message: 'Run sj-1 has not started',
        once: 'stalled:sj-1:ImagePullBackOff',
      },
    ]);
    const stalled = applied(noted).status;
    expect(stalled.conditions?.find((c) => c.type === 'RunStalled')).toMatchObject({
      status: 'True',
      reason: 'ImagePullBackOff',
    });
    expect(
      applied(stallOver(sj(stalled), NOW), stalled).status.conditions?.find((c) => c.type === 'RunStalled'),
    ).toBeUndefined();
    expect(applied(markStalled(active, 'y'.repeat(5000), 900))).toMatchObject({
      status: { activeRun: { stalled: 'y'.repeat(4096) } },
      said: ['Warning RunStalled'],
    });
  });
});
