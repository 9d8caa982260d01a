// Which installation acts on an object when the other one's Lease is alive
// (issue 21 item 7): an installation restarted with narrower watchNamespaces
// keeps renewing its Lease but never writes the objects it left again. The
// other one takes such an object over once work its actor writes about at
// once has been due for CLAIM_LEASE_DURATIONS lease durations without a
// write — counted on the observer's monotonic clock (injected here), never
// while a run simply runs, never because of our own stand-by note.
import type { V1Job } from '@kubernetes/client-node';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import type { ActiveRun, SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import { FakeCluster } from '../../../test/support/fake-cluster.ts';
import { CLAIM_LEASE_DURATIONS, claimBoundMs, owedWork } from './claims.ts';
import type { Owed } from './claims.ts';
import { buildJob } from '../rules/jobs.ts';
import { controllerMetrics } from '../metrics.ts';
import { scheduledRunName } from '../rules/naming.ts';
import { Reconciler } from './reconciler.ts';
import type { Result } from './reconciler.ts';

const NOW = new Date('2026-06-01T12:00:30Z');
const SLOT = new Date('2026-06-01T12:00:00Z');
const KEY = 'ns/sj';
const MINE = 'ops/singleton-operator';
const THEIRS = 'other/op';
const LEASE_MS = 15_000;
const BOUND_MS = CLAIM_LEASE_DURATIONS * LEASE_MS;

const templateAccepted = {
  type: 'TemplateAccepted',
  status: 'True' as const,
  reason: 'DryRunAccepted',
  message: 'The API server accepts the Job this template makes (server-side dry run of generation 1)',
  lastTransitionTime: '2026-01-01T00:00:00Z',
  observedGeneration: 1,
};
const ready = {
  type: 'Ready',
  status: 'True' as const,
  reason: 'Scheduled',
  message: 'Runs on schedule "* * * * *" in UTC',
  lastTransitionTime: '2026-01-01T00:00:00Z',
  observedGeneration: 1,
};
/** Written by the other installation (term 900, its Lease), last slot 11:59: slot 12:00 is due. */
const theirs: SingletonJobStatus = {
  lastScheduleTime: '2026-06-01T11:59:00Z',
  currentToken: 600,
  leaderTerm: 900,
  leaderLease: THEIRS,
  conditions: [ready, templateAccepted],
  observedGeneration: 1,
};

function makeSJ(
  spec: Partial<SingletonJob['spec']> = { schedule: '* * * * *' },
  status: SingletonJobStatus = theirs,
  annotations?: Record<string, string>,
): SingletonJob {
  return {
    apiVersion: 'singleton.dev/v1alpha1',
    kind: 'SingletonJob',
    metadata: { name: 'sj', namespace: 'ns', generation: 1, ...(annotations ? { annotations } : {}) },
    spec: {
      jobTemplate: {
        spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] } } },
      },
      ...spec,
    },
    status: structuredClone(status),
  } as SingletonJob;
}

const run = (over: Partial<ActiveRun> = {}): ActiveRun => ({
  name: scheduledRunName('sj', SLOT),
  token: 600,
  term: 900,
  kind: 'Scheduled',
  slot: SLOT.toISOString(),
  reservedTime: SLOT.toISOString(),
  ...over,
});

/** A world with the other installation's object, its Lease alive, and this installation standing by on an injected clock. */
function world(sj: SingletonJob = makeSJ()) {
  const f = new FakeCluster();
  f.addSingletonJob(sj);
  let mono = 1_000_000;
  let now = NOW;
  const ac = new AbortController();
  const reconciler = new Reconciler({
    status: f.status,
    jobs: f.jobs,
    pods: f.podControl,
    events: f.events,
    leadership: {
      identity: 'me',
      term: 500,
      signal: ac.signal,
      assertValid: () => undefined,
      latestRevision: () => 950,
    },
    logger: pino({ level: 'silent' }),
    metrics: controllerMetrics(new Registry()),
    now: () => now,
    monotonicNow: () => mono,
    lease: { namespace: 'ops', name: 'singleton-operator', durationMs: LEASE_MS },
    leases: f.leaseLiveness,
  });
  return {
    f,
    /** Advances both clocks by `ms` (or only the API server's, `apiOnlyMs`) and runs one pass; returns its result and actions. */
    async pass(ms = 0, apiOnlyMs = 0): Promise<{ result: Result; actions: string[] }> {
      mono += ms;
      now = new Date(now.getTime() + ms + apiOnlyMs);
      f.actions.length = 0;
      const result = await reconciler.reconcile(KEY);
      return { result, actions: [...f.actions] };
    },
    /** The other installation writes the object (its actor's status write). */
    theyWrite(mutate: (s: SingletonJobStatus) => void) {
      const stored = f.sjs.get(KEY)!;
      mutate(stored.status!);
      stored.metadata!.resourceVersion = f.nextRv();
    },
  };
}

/** The recorded, released Job of `r` (its Pod running unless `outcome`). */
function recordedJob(
  f: FakeCluster,
  r: ActiveRun,
  opts: { suspend?: boolean; outcome?: 'Complete'; startTime?: Date } = {},
): V1Job {
  const sj = f.sj();
  const job = buildJob(sj, r, { suspended: opts.suspend ?? false });
  job.metadata!.annotations = { ...job.metadata!.annotations, ...(opts.suspend ? {} : { [Keys.released]: 'now' }) };
  job.status = opts.suspend
    ? {}
    : { startTime: opts.startTime ?? SLOT, active: opts.outcome ? 0 : 1, ready: opts.outcome ? 0 : 1 };
  if (opts.outcome) job.status.conditions = [{ type: 'Complete', status: 'True' }];
  const stored = f.addJob(job);
  f.sjs.get(KEY)!.status!.activeRun = { ...r, jobUID: stored.metadata!.uid! };
  return stored;
}

const standsBy = (actions: string[]) =>
  expect(
    actions.filter((a) => !a.startsWith('event Warning ClaimedByAnotherInstallation') && a !== 'update-status'),
  ).toEqual([]);
const takenOver = ['event Normal TakenOver', 'update-status'];

describe('claims: an installation whose Lease is alive but that no longer writes the object (issue 21 item 7)', () => {
  it('a due slot left unwritten: stands by (noting it once) until the bound on our monotonic clock, then takes over with the term raised', async () => {
    const w = world();
    const first = await w.pass();
    expect(first.actions).toEqual(['update-status', 'event Warning ClaimedByAnotherInstallation']);
    expect(w.f.sj().status).toMatchObject({ leaderLease: THEIRS, leaderTerm: 900, contender: MINE });
    expect(w.f.sj().status!.conditions!.find((c) => c.type === 'Contended')!.message).toContain(
      `unless that one leaves work due on it unwritten for ${BOUND_MS / 1000} s`,
    );
    expect(first.result.requeueAfterMs).toBeLessThanOrEqual(BOUND_MS + 5);
    // Our own note is no write of theirs: the count goes on.
    expect((await w.pass(BOUND_MS - 1)).actions).toEqual([]);
    const last = await w.pass(1);
    expect(last.actions).toEqual(takenOver);
    expect(w.f.sj().status).toMatchObject({ leaderLease: MINE, leaderTerm: 950 });
    expect(w.f.sj().status!.contender).toBeUndefined();
    expect(w.f.eventLog.find((e) => e.reason === 'TakenOver')!.message).toMatch(
      new RegExp(
        `Lease ${THEIRS} \\(Lease ${THEIRS} is held\\) has not written it for ${BOUND_MS / 1000} s while slot .* is due: it no longer acts on this object`,
      ),
    );
    // Then we act: the due slot runs under our term.
    const next = await w.pass();
    expect(next.actions).toContain('update-status');
    expect(w.f.sj().status!.activeRun).toMatchObject({ term: 950 });
  });

  it('every write of theirs starts the count again: a slow actor that still writes keeps the object', async () => {
    const w = world();
    await w.pass();
    standsBy((await w.pass(BOUND_MS - 1000)).actions);
    // It ran the slot late (a backed-up queue): a write; the next slot is due at once again.
    w.theyWrite((s) => {
      s.lastScheduleTime = '2026-06-01T12:00:00Z';
      s.recentRuns = [
        {
          name: 'sj-x',
          token: 601,
          term: 900,
          kind: 'Scheduled',
          outcome: 'Succeeded',
          finishedTime: '2026-06-01T12:01:00Z',
        },
      ];
      s.currentToken = 601;
    });
    standsBy((await w.pass(2000)).actions);
    standsBy((await w.pass(BOUND_MS - 1)).actions);
    expect(w.f.sj().status!.leaderLease).toBe(THEIRS);
    expect((await w.pass(1)).actions).toEqual(takenOver);
  });

  it('a run that simply runs is no work due: slots held by Forbid for ten bounds are never taken over; its end left unrecorded is', async () => {
    const w = world();
    const job = recordedJob(w.f, run());
    for (let i = 0; i < 10; i++) standsBy((await w.pass(BOUND_MS)).actions);
    expect(w.f.sj().status!.leaderLease).toBe(THEIRS);
    // The run's Job finished and nobody records it.
    w.f.jobMap.get(`ns/${job.metadata!.name}`)!.status = {
      startTime: SLOT,
      active: 0,
      succeeded: 1,
      conditions: [{ type: 'Complete', status: 'True' }],
    };
    standsBy((await w.pass(1000)).actions);
    standsBy((await w.pass(BOUND_MS - 1)).actions);
    expect((await w.pass(1)).actions).toEqual(takenOver);
  });

  it('a recorded Job the actor releases without a status write is progress: the count starts again when its next work is due', async () => {
    const w = world();
    const job = recordedJob(w.f, run(), { suspend: true });
    await w.pass();
    standsBy((await w.pass(BOUND_MS - 1000)).actions);
    const live = w.f.jobMap.get(`ns/${job.metadata!.name}`)!;
    live.spec!.suspend = false;
    live.metadata!.annotations = { ...live.metadata!.annotations, [Keys.released]: 'now' };
    live.status = { startTime: NOW, active: 1, ready: 1 };
    standsBy((await w.pass(1000)).actions);
    live.status = { startTime: NOW, active: 0, succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] };
    standsBy((await w.pass(1000)).actions);
    standsBy((await w.pass(BOUND_MS - 1)).actions);
    expect((await w.pass(1)).actions).toEqual(takenOver);
  });

  it('nothing due (an on-demand object at rest): never taken over; a manual request starts the count', async () => {
    const w = world(makeSJ({}));
    for (let i = 0; i < 5; i++) standsBy((await w.pass(BOUND_MS)).actions);
    expect(w.f.sj().status!.leaderLease).toBe(THEIRS);
    const stored = w.f.sjs.get(KEY)!;
    stored.metadata!.annotations = { [Keys.runNow]: 'r1' };
    stored.metadata!.resourceVersion = w.f.nextRv();
    standsBy((await w.pass(1000)).actions);
    standsBy((await w.pass(BOUND_MS - 1)).actions);
    expect((await w.pass(1)).actions).toEqual(takenOver);
    expect(w.f.eventLog.find((e) => e.reason === 'TakenOver')!.message).toContain('manual request "r1" is due');
  });

  it("judged on our monotonic clock: the API server's clock racing ahead (a slot due for a day) takes nothing over", async () => {
    const w = world();
    await w.pass();
    standsBy((await w.pass(1000, 86_400_000)).actions);
    standsBy((await w.pass(BOUND_MS - 2000)).actions);
    expect(w.f.sj().status!.leaderLease).toBe(THEIRS);
    expect((await w.pass(1000)).actions).toEqual(takenOver);
  });

  it('the longer lease duration sets the bound: theirs when it is longer than ours', async () => {
    const w = world();
    w.f.leases.set(THEIRS, {
      alive: true,
      holder: 'them-0',
      why: `Lease ${THEIRS} is held by them-0`,
      recheckMs: 30_000,
      durationMs: 30_000,
    });
    await w.pass();
    standsBy((await w.pass(BOUND_MS)).actions);
    standsBy((await w.pass(claimBoundMs(LEASE_MS, 30_000) - BOUND_MS - 1)).actions);
    expect((await w.pass(1)).actions).toEqual(takenOver);
  });

  it('a template the API server refused holds runs without a write: not counted', async () => {
    const rejected = {
      ...templateAccepted,
      status: 'False' as const,
      reason: 'JobRejected',
      message: 'exceeded quota',
    };
    const w = world(
      makeSJ(
        { schedule: '* * * * *' },
        { ...theirs, conditions: [{ ...ready, status: 'False', reason: 'JobRejected' }, rejected] },
      ),
    );
    for (let i = 0; i < 3; i++) standsBy((await w.pass(BOUND_MS)).actions);
    expect(w.f.sj().status!.leaderLease).toBe(THEIRS);
  });

  it('the Lease gone: taken over at once, as before', async () => {
    const w = world();
    w.f.leases.set(THEIRS, { alive: false, why: `Lease ${THEIRS} does not exist`, recheckMs: 0 });
    expect((await w.pass()).actions).toEqual(takenOver);
  });
});

describe('owedWork: what the acting installation writes about at once', () => {
  const jobs = (job?: V1Job) => ({ cached: () => job });
  const released = (
    r: ActiveRun,
    status: V1Job['status'],
    over: { deleting?: boolean; suspend?: boolean } = {},
  ): V1Job => {
    const job = buildJob(makeSJ(), r, { suspended: over.suspend ?? false });
    job.metadata!.uid = 'u1';
    job.metadata!.annotations = { ...job.metadata!.annotations, [Keys.released]: 'now' };
    if (over.deleting) job.metadata!.deletionTimestamp = NOW;
    job.status = status;
    return job;
  };
  const withRun = (r: Partial<ActiveRun>, spec: Partial<SingletonJob['spec']> = { schedule: '* * * * *' }) =>
    makeSJ(spec, { ...theirs, activeRun: { ...run(r), jobUID: r.jobUID } as ActiveRun });
  const running = { startTime: SLOT, active: 1, ready: 1 };
  const cases: [string, SingletonJob, V1Job | undefined, Owed['kind'] | undefined][] = [
    ['a due slot, nothing in flight', makeSJ(), undefined, 'start'],
    ['no schedule, no request', makeSJ({}), undefined, undefined],
    ['suspended', makeSJ({ schedule: '* * * * *', suspend: true }), undefined, undefined],
    ['an invalid schedule', makeSJ({ schedule: '61 * * * *' }), undefined, undefined],
    ['a queued slot, nothing in flight', makeSJ({}, { ...theirs, queuedSlot: SLOT.toISOString() }), undefined, 'start'],
    ['a spec change not observed yet', makeSJ({}, { ...theirs, observedGeneration: 0 }), undefined, 'observe'],
    ['a run that runs, a slot held by Forbid', withRun({ jobUID: 'u1' }), released(run(), running), undefined],
    [
      'a run that runs, a slot due under Queue',
      withRun({ jobUID: 'u1' }, { schedule: '* * * * *', concurrencyPolicy: 'Queue' }),
      released(run(), running),
      'queue',
    ],
    [
      'a run that runs, a slot due under Replace',
      withRun({ jobUID: 'u1' }, { schedule: '* * * * *', concurrencyPolicy: 'Replace' }),
      released(run(), running),
      'replace',
    ],
    [
      'a run being replaced whose Job is not deleted',
      withRun({ jobUID: 'u1', replacing: true }),
      released(run(), running),
      'end',
    ],
    [
      'a run being replaced whose Job is being deleted',
      withRun({ jobUID: 'u1', replacing: true }),
      released(run(), running, { deleting: true }),
      undefined,
    ],
    [
      'a run whose Job has finished',
      withRun({ jobUID: 'u1' }),
      released(run(), { active: 0, conditions: [{ type: 'Complete', status: 'True' }] }),
      'finish',
    ],
    [
      'a run whose finished Job still has a Pod terminating',
      withRun({ jobUID: 'u1' }),
      released(run(), { active: 0, terminating: 1, conditions: [{ type: 'Complete', status: 'True' }] }),
      undefined,
    ],
    ['a run whose Job is gone', withRun({ jobUID: 'u1' }), undefined, 'finish'],
    ['a run whose Job name is held by another UID', withRun({ jobUID: 'u0' }), released(run(), running), 'finish'],
    ['a reservation without its Job', withRun({}), undefined, 'record'],
    ['a retry attempt in its backoff', withRun({ notBefore: '2026-06-01T12:05:00Z' }), undefined, undefined],
    [
      'a released run whose Pod never started, within podStartDeadlineSeconds',
      withRun({ jobUID: 'u1' }),
      released(run(), { startTime: SLOT, active: 1 }),
      undefined,
    ],
    [
      'a released run whose Pod never started, past podStartDeadlineSeconds',
      withRun({ jobUID: 'u1' }, { schedule: '* * * * *', podStartDeadlineSeconds: 10 }),
      released(run(), { startTime: SLOT, active: 1 }),
      'stall',
    ],
  ];
  it.each(cases)('%s', (_name, sj, job, kind) => {
    expect(owedWork(sj, NOW, jobs(job))?.kind).toBe(kind);
  });
});
