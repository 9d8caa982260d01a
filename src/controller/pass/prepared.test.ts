// Every path a prepared run can take (rules/prepare.ts), pass by pass on the
// in-memory ports that keep the API server's rules (test/support/fake-cluster.ts),
// with the clock moved between passes: prepared ahead of the slot, released
// at it (also by a successor leader, and only once nothing of the object can
// still run), withdrawn for each reason, a prepared retry attempt, and the
// cases that must not prepare. What each pass did is asserted as the calls that
// change the cluster and the status it left; integration tests
// (test/integration/prepared-runs.test.ts) prove the same against the real
// control plane.
import type { V1Job } from '@kubernetes/client-node';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import type { SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import { FakeCluster } from '../../../test/support/fake-cluster.ts';
import { controllerMetrics } from '../metrics.ts';
import { manualRunName, scheduledRunName } from '../rules/naming.ts';
import { Reconciler } from './reconciler.ts';
import type { ReconcilerDeps, Result } from './reconciler.ts';

const KEY = 'ns/sj';
const TERM = 500;
/** The slot the scenarios prepare for, and a pass 40 s before it (inside the default 60 s window). */
const SLOT = new Date('2026-06-01T12:01:00Z');
const BEFORE = new Date(SLOT.getTime() - 40_000);
const JOB = scheduledRunName('sj', SLOT);

const accepted = {
  type: 'TemplateAccepted',
  status: 'True' as const,
  reason: 'DryRunAccepted',
  message: 'accepted',
  lastTransitionTime: '2026-01-01T00:00:00Z',
  observedGeneration: 1,
};
/** Idle after the 12:00 run: nothing in flight, the next slot 12:01. */
const idle: SingletonJobStatus = {
  lastScheduleTime: '2026-06-01T12:00:00Z',
  lastRunTime: '2026-06-01T12:00:00Z',
  currentToken: 600,
  leaderTerm: TERM,
  observedGeneration: 1,
  predecessorPodsChecked: true,
  recentRuns: [
    {
      name: scheduledRunName('sj', new Date('2026-06-01T12:00:00Z')),
      token: 600,
      term: TERM,
      kind: 'Scheduled',
      outcome: 'Succeeded',
      slot: '2026-06-01T12:00:00Z',
      finishedTime: '2026-06-01T12:00:10Z',
    },
  ],
  conditions: [
    {
      type: 'Ready',
      status: 'True',
      reason: 'Scheduled',
      message: 'Runs on schedule "* * * * *" in UTC',
      lastTransitionTime: '2026-01-01T00:00:00Z',
      observedGeneration: 1,
    },
    accepted,
  ],
};

class Scenario {
  readonly f = new FakeCluster();
  now = BEFORE;
  term = TERM;
  /** The pass's wait (an armed release); by default the clock moves by it. */
  sleep: (ms: number) => Promise<void> = async (ms) => {
    this.now = new Date(this.now.getTime() + ms);
  };
  readonly metrics = controllerMetrics(new Registry());
  private reconciler: Reconciler;

  constructor(spec: Partial<SingletonJob['spec']> = {}, status: SingletonJobStatus = idle) {
    this.f.addSingletonJob({
      apiVersion: 'singleton.dev/v1alpha1',
      kind: 'SingletonJob',
      metadata: { name: 'sj', namespace: 'ns', generation: 1 },
      spec: {
        schedule: '* * * * *',
        jobTemplate: {
          spec: {
            template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] } },
          },
        },
        ...spec,
      },
    } as SingletonJob);
    this.f.sjs.get(KEY)!.status = structuredClone(status);
    this.reconciler = this.newLeader();
  }

  /** A leader (a new one: a takeover) over the same cluster. */
  newLeader(term = this.term): Reconciler {
    this.term = term;
    const deps: ReconcilerDeps = {
      status: this.f.status,
      jobs: this.f.jobs,
      pods: this.f.podControl,
      events: this.f.events,
      leadership: { identity: `leader-${term}`, term, signal: new AbortController().signal, assertValid: () => {} },
      logger: pino({ level: 'silent' }),
      metrics: this.metrics,
      now: () => this.now,
      retryBackoffMs: 10_000,
      jobsFinishAfterPods: true,
      sleep: (ms) => this.sleep(ms),
    };
    this.reconciler = new Reconciler(deps);
    return this.reconciler;
  }

  /** One pass at `at`: the calls that changed the cluster (Events too), and the requeue. */
  async pass(at: Date = this.now): Promise<{ actions: string[]; requeueAfterMs: number | undefined }> {
    this.now = at;
    this.f.actions.length = 0;
    const r: Result = await this.reconciler.reconcile(KEY);
    return { actions: [...this.f.actions], requeueAfterMs: r.requeueAfterMs };
  }

  get status(): SingletonJobStatus {
    return this.f.sj().status!;
  }

  job(name = JOB): V1Job | undefined {
    return this.f.jobMap.get(`ns/${name}`);
  }

  /** A spec edit (the API server bumps the generation). */
  editSpec(change: (sj: SingletonJob) => void): void {
    const sj = this.f.sjs.get(KEY)!;
    change(sj);
    sj.metadata!.generation = (sj.metadata!.generation ?? 1) + 1;
    sj.metadata!.resourceVersion = this.f.nextRv();
  }

  annotate(key: string, value: string): void {
    const sj = this.f.sjs.get(KEY)!;
    sj.metadata!.annotations = { ...sj.metadata!.annotations, [key]: value };
    sj.metadata!.resourceVersion = this.f.nextRv();
  }

  /** Prepares the slot's run (asserted), and returns the prepared Job. */
  async prepare(): Promise<V1Job> {
    const first = await this.pass(BEFORE);
    expect(first.actions).toEqual([`create-job ${JOB} token=1001 suspended`, 'update-status']);
    return this.job()!;
  }
}

const at = (offsetMs: number) => new Date(SLOT.getTime() + offsetMs);

describe('prepared runs: prepared ahead, released at the slot', () => {
  it('within prepareAheadSeconds of the slot: the Job created suspended and recorded in one write; the slot and the last run stay as they were', async () => {
    const s = new Scenario();
    const first = await s.pass(BEFORE);
    expect(first.actions).toEqual([`create-job ${JOB} token=1001 suspended`, 'update-status']);
    // Back 200 ms before the slot (RELEASE_ARM_MS), to release it at the instant.
    expect(first.requeueAfterMs).toBe(39_805);
    const job = s.job()!;
    expect(job.spec!.suspend).toBe(true);
    expect(job.metadata!.annotations![Keys.generation]).toBe('1');
    expect(s.status.activeRun).toMatchObject({
      name: JOB,
      token: 1001,
      slot: SLOT.toISOString(),
      jobUID: job.metadata!.uid,
      releaseTime: SLOT.toISOString(),
      generation: 1,
    });
    expect(s.status.currentToken).toBe(1001);
    // Not started yet: LAST SCHEDULE and LAST RUN still show the 12:00 run; NEXT RUN is the prepared slot.
    expect(s.status.lastScheduleTime).toBe('2026-06-01T12:00:00Z');
    expect(s.status.lastRunTime).toBe('2026-06-01T12:00:00Z');
    expect(s.status.nextScheduleTime).toBe(SLOT.toISOString());
    expect(await s.metrics.runsPrepared.get()).toMatchObject({ values: [{ value: 1 }] });
  });

  it('before the window: nothing is created; the pass comes back when the window opens', async () => {
    const s = new Scenario({ prepareAheadSeconds: 10 });
    const r = await s.pass(BEFORE);
    expect(r.actions).toEqual([]);
    expect(r.requeueAfterMs).toBe(30_005);
  });

  it('between prepare and slot a pass does nothing but come back at the release time', async () => {
    const s = new Scenario();
    await s.prepare();
    const r = await s.pass(at(-15_000));
    expect(r).toEqual({ actions: [], requeueAfterMs: 14_805 });
  });

  it('at the slot only the release is left: one unsuspend (with the guarded fields tested), the run started; the first later write settles LAST SCHEDULE and LAST RUN', async () => {
    const s = new Scenario();
    await s.prepare();
    const r = await s.pass(at(5));
    expect(r.actions).toEqual([`unsuspend ${JOB}`, 'event Normal RunStarted']);
    expect(s.job()!.spec!.suspend).toBe(false);
    expect(await s.metrics.runsStarted.get()).toMatchObject({ values: [{ value: 1 }] });
    // The run ends: its finish write also records the slot as taken and the run's start.
    const job = s.job()!;
    job.status = { conditions: [{ type: 'Complete', status: 'True' }], succeeded: 1 };
    const end = await s.pass(at(20_000));
    expect(end.actions).toEqual(['update-status', 'event Normal RunFinished']);
    expect(s.status.activeRun).toBeUndefined();
    expect(s.status.lastScheduleTime).toBe(SLOT.toISOString());
    expect(s.status.lastRunTime).toBe(SLOT.toISOString());
    expect(s.status.recentRuns![0]).toMatchObject({ name: JOB, outcome: 'Succeeded', token: 1001 });
    // The slot is not run a second time.
    const next = await s.pass(at(21_000));
    expect(next.actions.filter((a) => a.startsWith('create-job') && a.includes(JOB))).toEqual([]);
  });

  it('a pass within 200 ms of the release time stays and releases at the instant (the patch sent no earlier than the slot)', async () => {
    const s = new Scenario();
    await s.prepare();
    const slept: number[] = [];
    s.sleep = async (ms) => {
      slept.push(ms);
      s.now = new Date(s.now.getTime() + ms);
    };
    const r = await s.pass(at(-150));
    expect(slept).toEqual([151]);
    expect(s.now.getTime()).toBeGreaterThanOrEqual(SLOT.getTime());
    expect(r.actions).toEqual([`unsuspend ${JOB}`, 'event Normal RunStarted']);
  });

  it('armed, and the object changed meanwhile: nothing released; the pass decides again from the new object', async () => {
    const s = new Scenario();
    await s.prepare();
    s.sleep = async (ms) => {
      s.now = new Date(s.now.getTime() + ms);
      s.editSpec((sj) => (sj.spec.jobTemplate.spec!.template.spec!.containers[0]!.image = 'busybox:2'));
    };
    const r = await s.pass(at(-150));
    expect(r).toEqual({ actions: [], requeueAfterMs: 0 });
    expect(s.job()!.spec!.suspend).toBe(true);
  });

  it('a takeover between prepare and slot: the successor releases the prepared run at the slot, once', async () => {
    const s = new Scenario();
    await s.prepare();
    s.newLeader(900);
    const r = await s.pass(at(5));
    expect(r.actions).toEqual([`unsuspend ${JOB}`, 'event Normal RunStarted']);
    expect(s.status.activeRun).toMatchObject({ token: 1001, term: TERM });
    // The deposed leader, acting late on its older view, cannot release it again.
    s.f.actions.length = 0;
    const old = s.job()!;
    expect(
      await s.f.jobs.unsuspend({ ...old, metadata: { ...old.metadata, annotations: { [Keys.released]: '' } } }),
    ).toBe(false);
  });

  it('a Job of the object deleted while its Pods may run: the release waits for a live Pod list; a running Pod holds it, and it goes once the Pod ended', async () => {
    const s = new Scenario();
    await s.prepare();
    // A finished Job of an earlier run, deleted by hand while its Pod still ran (jobsFinishAfterPods cannot vouch for it now).
    const earlier = s.f.addJob({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: 'sj-old',
        namespace: 'ns',
        labels: { [Keys.ownerUid]: s.f.sj().metadata!.uid! },
        annotations: { [Keys.singletonJob]: 'sj', [Keys.token]: '599' },
      },
      spec: { template: { spec: { containers: [] } } },
      status: { active: 1, startTime: new Date() },
    } as V1Job);
    const pod = s.f.addPod({
      metadata: { name: 'sj-old-pod', namespace: 'ns', annotations: { [Keys.singletonJob]: 'sj' } },
      status: { phase: 'Running' },
    });
    await s.f.jobs.delete(earlier);
    s.f.actions.length = 0;
    const held = await s.pass(at(5));
    expect(held.actions).toEqual(['event Normal RunHeld']);
    expect(held.requeueAfterMs).toBe(1000);
    expect(s.job()!.spec!.suspend).toBe(true);
    pod.status = { phase: 'Succeeded' };
    s.f.pods[0]!.status = { phase: 'Succeeded' };
    const released = await s.pass(at(1_010));
    expect(released.actions).toEqual([`unsuspend ${JOB}`, 'event Normal RunStarted']);
  });
});

describe('prepared runs: withdrawn before their release', () => {
  const withdrawn = (s: Scenario, reason: string) => {
    expect(s.job()).toBeUndefined();
    expect(s.status.activeRun).toBeUndefined();
    expect(s.status.recentRuns![0]).toMatchObject({ name: JOB, token: 1001, outcome: 'Withdrawn', reason });
    // It never started: the previous run is still the latest.
    expect(s.status.lastRunTime).toBe('2026-06-01T12:00:00Z');
  };

  it('a spec change: withdrawn (its Job deleted as it was read), then prepared again from the new spec with a new token', async () => {
    const s = new Scenario();
    const old = await s.prepare();
    s.editSpec((sj) => (sj.spec.jobTemplate.spec!.template.spec!.containers[0]!.image = 'busybox:2'));
    const r = await s.pass(at(-30_000));
    expect(r.actions).toEqual([
      `withdraw-job ${JOB} uid=${old.metadata!.uid}`,
      'update-status',
      'event Normal RunWithdrawn',
    ]);
    withdrawn(s, 'SpecChanged');
    expect(s.status.lastScheduleTime).toBe('2026-06-01T12:00:00Z');
    const again = await s.pass(at(-29_000));
    expect(again.actions).toEqual([`create-job ${JOB} token=1005 suspended`, 'update-status']);
    expect(s.job()!.spec!.template.spec!.containers[0]!.image).toBe('busybox:2');
    expect(s.status.activeRun).toMatchObject({ generation: 2, token: 1005 });
  });

  it('suspended before the slot: withdrawn; nothing runs at the slot', async () => {
    const s = new Scenario();
    await s.prepare();
    s.editSpec((sj) => (sj.spec.suspend = true));
    const r = await s.pass(at(-10_000));
    expect(r.actions.slice(0, 2)).toEqual([expect.stringMatching(/^withdraw-job /), 'update-status']);
    // The spec change is the first reason found (suspend is a spec change too).
    withdrawn(s, 'SpecChanged');
    // Nothing is created or released at the slot (the new generation's template is dry-run checked, as after any edit).
    expect((await s.pass(at(5))).actions.filter((a) => /^(create-job|unsuspend)/.test(a))).toEqual([]);
  });

  it('paused after failures (no spec change) before the slot: withdrawn as SchedulingStopped', async () => {
    const s = new Scenario({ suspendAfterFailures: 1 });
    await s.prepare();
    // Another leader recorded a pause meanwhile (the condition the pass reads).
    const sj = s.f.sjs.get(KEY)!;
    sj.status!.conditions = [
      ...sj.status!.conditions!,
      {
        type: 'Paused',
        status: 'True',
        reason: 'TooManyFailures',
        message: 'paused',
        lastTransitionTime: '2026-06-01T12:00:30Z',
      },
    ];
    sj.status!.consecutiveFailures = 1;
    const r = await s.pass(at(-10_000));
    expect(r.actions.slice(0, 2)).toEqual([expect.stringMatching(/^withdraw-job /), 'update-status']);
    withdrawn(s, 'SchedulingStopped');
  });

  it('a manual request before the slot: the prepared run is withdrawn and the manual run starts at once; the slot then meets it as a run in flight (Forbid holds it)', async () => {
    const s = new Scenario();
    await s.prepare();
    s.annotate(Keys.runNow, 'now-1');
    const r = await s.pass(at(-20_000));
    expect(r.actions).toEqual([expect.stringMatching(/^withdraw-job /), 'update-status', 'event Normal RunWithdrawn']);
    withdrawn(s, 'ManualRequest');
    const manual = await s.pass(at(-19_990));
    const name = manualRunName('sj', 'now-1', 1005);
    expect(manual.actions).toEqual([
      `create-job ${name} token=1005 suspended`,
      'update-status',
      `unsuspend ${name}`,
      'event Normal RunStarted',
    ]);
    const slot = await s.pass(at(5));
    expect(slot.actions.filter((a) => a.startsWith('create-job'))).toEqual([]);
    expect(slot.actions).toContain('event Normal RunHeld');
  });

  it('not released within startingDeadlineSeconds of the slot (the operator was away): withdrawn and the slot counted as skipped', async () => {
    const s = new Scenario({ startingDeadlineSeconds: 10 });
    await s.prepare();
    const r = await s.pass(at(30_000));
    expect(r.actions).toEqual([expect.stringMatching(/^withdraw-job /), 'update-status', 'event Warning RunWithdrawn']);
    withdrawn(s, 'DeadlineMissed');
    expect(s.status.lastScheduleTime).toBe(SLOT.toISOString());
    expect(s.status.lastSkippedSlot).toBe(SLOT.toISOString());
    expect(s.status.skippedSlots).toBe(1);
  });

  it('its Job edited while it waits (parallelism raised, its Pods unmarked): never released — withdrawn as JobModified', async () => {
    for (const edit of [
      (j: V1Job) => (j.spec!.parallelism = 3),
      (j: V1Job) => delete j.spec!.template.metadata!.annotations![Keys.singletonJob],
    ]) {
      const s = new Scenario();
      await s.prepare();
      edit(s.job()!);
      s.job()!.metadata!.resourceVersion = s.f.nextRv();
      const r = await s.pass(at(5));
      expect(r.actions).toEqual([
        expect.stringMatching(/^withdraw-job /),
        'update-status',
        'event Normal RunWithdrawn',
      ]);
      withdrawn(s, 'JobModified');
      // Not past its deadline: the slot is started afresh with a new Job.
      const again = await s.pass(at(10));
      expect(again.actions.slice(0, 3)).toEqual([
        `create-job ${JOB} token=1005 suspended`,
        'update-status',
        `unsuspend ${JOB}`,
      ]);
    }
  });

  it('edited between the pass’s read and its release: the unsuspend’s tests refuse it; the next pass withdraws it', async () => {
    const s = new Scenario();
    await s.prepare();
    s.f.beforeUnsuspend = (live) => void (live.spec!.parallelism = 2);
    const r = await s.pass(at(5));
    expect(r.actions).toEqual([`unsuspend ${JOB} refused`]);
    expect(s.job()!.spec!.suspend).toBe(true);
    s.f.beforeUnsuspend = undefined;
    const next = await s.pass(at(10));
    expect(next.actions[0]).toMatch(/^withdraw-job /);
  });

  it('released by someone else between the read and the withdrawal: the delete’s resourceVersion precondition refuses it, and the run is followed as released', async () => {
    const s = new Scenario();
    await s.prepare();
    s.editSpec((sj) => (sj.spec.jobTemplate.spec!.template.spec!.containers[0]!.image = 'busybox:2'));
    // The pass reads the Job from its cache; meanwhile the (deposed) leader released it.
    const cached = structuredClone(s.job()!);
    const live = s.job()!;
    live.spec!.suspend = false;
    live.metadata!.annotations![Keys.released] = 'now';
    live.metadata!.resourceVersion = s.f.nextRv();
    const jobs = s.f.jobs;
    const original = jobs.cached.bind(jobs);
    jobs.cached = (ns, name) => (name === JOB ? cached : original(ns, name));
    const r = await s.pass(at(-1_000));
    jobs.cached = original;
    // Refused, read again live: released, so it is a run in flight (the new generation's dry run follows, as after any edit).
    expect(r.actions[0]).toBe(`withdraw-job ${JOB} refused`);
    expect(r.actions.filter((a) => /^(withdraw-job|delete-job|unsuspend)/.test(a))).toEqual([
      `withdraw-job ${JOB} refused`,
    ]);
    expect(s.job()).toBeDefined();
    expect(s.status.activeRun).toMatchObject({ name: JOB });
  });

  it('its Job deleted by a person before the slot: the run ends (Deleted) without taking the slot, which is prepared again', async () => {
    const s = new Scenario();
    const job = await s.prepare();
    s.f.jobMap.delete(`ns/${job.metadata!.name}`);
    const r = await s.pass(at(-20_000));
    expect(r.actions).toEqual(['update-status', 'event Warning RunFinished']);
    expect(s.status.recentRuns![0]).toMatchObject({ name: JOB, outcome: 'Deleted' });
    expect(s.status.lastScheduleTime).toBe('2026-06-01T12:00:00Z');
    const again = await s.pass(at(-19_000));
    expect(again.actions[0]).toMatch(new RegExp(`^create-job ${JOB} token=\\d+ suspended$`));
  });
});

describe('prepared runs: retries and what is not prepared', () => {
  it('a failed attempt: the next attempt is prepared with it (create suspended, one write) and released at the end of its backoff', async () => {
    const s = new Scenario({
      jobTemplate: {
        spec: {
          backoffLimit: 1,
          template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] } },
        },
      },
    });
    await s.prepare();
    await s.pass(at(5));
    const job = s.job()!;
    job.status = { conditions: [{ type: 'Failed', status: 'True' }], failed: 1 };
    const failed = await s.pass(at(30_000));
    const attempt2 = scheduledRunName('sj', SLOT, 2);
    expect(failed.actions.filter((a) => !a.startsWith('event'))).toEqual([
      `create-job ${attempt2} token=1003 suspended`,
      'update-status',
    ]);
    expect(failed.requeueAfterMs).toBe(10_005);
    expect(s.status.activeRun).toMatchObject({ name: attempt2, attempt: 2, releaseTime: at(40_000).toISOString() });
    expect((await s.pass(at(35_000))).actions).toEqual([]);
    const release = await s.pass(at(40_005));
    expect(release.actions).toEqual([`unsuspend ${attempt2}`, 'event Normal RunStarted']);
  });

  it('prepareAheadSeconds 0: nothing before the slot; at the slot the three steps in one pass', async () => {
    const s = new Scenario({ prepareAheadSeconds: 0 });
    expect((await s.pass(BEFORE)).actions).toEqual([]);
    const r = await s.pass(at(5));
    expect(r.actions).toEqual([
      `create-job ${JOB} token=1001 suspended`,
      'update-status',
      `unsuspend ${JOB}`,
      'event Normal RunStarted',
    ]);
  });

  it('a template Kueue manages (queue-name label): not prepared (Kueue would hold quota for it all along)', async () => {
    const s = new Scenario({
      jobTemplate: {
        metadata: { labels: { 'kueue.x-k8s.io/queue-name': 'team' } },
        spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] } } },
      },
    });
    expect((await s.pass(BEFORE)).actions.filter((a) => a.startsWith('create-job'))).toEqual([]);
  });

  it('the slot’s name held by a Job that is not ours: not prepared (and not recorded as a failed run every pass); at the slot it ends as JobNameTaken as before', async () => {
    const s = new Scenario();
    s.f.addJob({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: JOB, namespace: 'ns' },
      spec: { template: { spec: { containers: [] } } },
    } as V1Job);
    const r = await s.pass(BEFORE);
    expect(r.actions).toEqual([]);
    expect(s.status.activeRun).toBeUndefined();
    expect(s.status.recentRuns).toHaveLength(1);
    expect((await s.pass(at(-20_000))).actions).toEqual([]);
  });
});
