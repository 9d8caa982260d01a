// Table tests of the active run's state (run-state.ts), in the style of the
// CronJob controller's utils_test.go: an object, the Job under the run's
// name, the Pods and Events when the state needs them, a fixed now → the
// state. What the pass does with each state: pass/reconciler.test.ts.
import type { CoreV1Event, V1Job, V1Pod } from '@kubernetes/client-node';
import type { ActiveRun, SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import { buildJob, NOT_RELEASED } from './jobs.ts';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import { scheduledRunName } from './naming.ts';
import { runState } from './run-state.ts';
import type { RunState, RunView } from './run-state.ts';

const NOW = new Date('2026-06-01T12:00:30Z');
const SLOT = new Date('2026-06-01T12:00:00Z');
const UID = 'job-uid-1';

function sj(over: { spec?: Partial<SingletonJob['spec']>; status?: SingletonJobStatus } = {}): SingletonJob {
  return {
    apiVersion: 'singleton.dev/v1alpha1',
    kind: 'SingletonJob',
    metadata: { name: 'sj', namespace: 'ns', uid: 'sj-uid', generation: 1 },
    spec: {
      jobTemplate: {
        spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] } } },
      },
      ...over.spec,
    },
    status: over.status ?? {},
  } as SingletonJob;
}

const run = (over: Partial<ActiveRun> = {}): ActiveRun => ({
  name: scheduledRunName('sj', SLOT),
  token: 600,
  term: 500,
  kind: 'Scheduled',
  slot: SLOT.toISOString(),
  reservedTime: SLOT.toISOString(),
  jobUID: UID,
  ...over,
});

interface JobOptions {
  uid?: string;
  token?: number;
  owner?: boolean;
  suspend?: boolean;
  released?: boolean;
  outcome?: 'Complete' | 'Failed';
  deleting?: boolean;
  startedAgoMs?: number;
  ready?: number;
  completionTime?: Date;
}

function job(r: ActiveRun, o: JobOptions = {}): V1Job {
  const j = buildJob(sj(), { ...r, token: o.token ?? r.token }, { suspended: o.suspend ?? false });
  j.metadata!.uid = o.uid ?? UID;
  j.metadata!.ownerReferences![0]!.uid = 'sj-uid';
  if (o.owner === false) j.metadata!.ownerReferences = [];
  if (o.deleting) j.metadata!.deletionTimestamp = NOW;
  j.metadata!.annotations = {
    ...j.metadata!.annotations,
    [Keys.released]: o.released === false ? NOT_RELEASED : (j.metadata!.annotations?.[Keys.released] ?? NOT_RELEASED),
  };
  if (o.released) j.metadata!.annotations[Keys.released] = SLOT.toISOString();
  j.status = {};
  if (o.startedAgoMs !== undefined) j.status.startTime = new Date(NOW.getTime() - o.startedAgoMs);
  if (o.ready) j.status.ready = o.ready;
  if (o.completionTime) j.status.completionTime = o.completionTime;
  if (o.outcome) j.status.conditions = [{ type: o.outcome, status: 'True' }];
  return j;
}

function pod(name: string, phase: string, o: { run?: string; deleting?: boolean; waiting?: string } = {}): V1Pod {
  return {
    metadata: {
      name,
      namespace: 'ns',
      labels: o.run ? { [Keys.run]: o.run } : {},
      ...(o.deleting ? { deletionTimestamp: NOW } : {}),
    },
    status: {
      phase,
      ...(o.waiting
        ? {
            containerStatuses: [
              {
                name: 'main',
                image: 'x',
                imageID: '',
                ready: false,
                restartCount: 0,
                state: { waiting: { reason: o.waiting, message: 'no' } },
              },
            ],
          }
        : {}),
    },
  };
}

const stalledStatus = (): SingletonJobStatus => ({
  conditions: [
    {
      type: 'RunStalled',
      status: 'True',
      reason: 'ImagePullBackOff',
      message: 'old',
      lastTransitionTime: SLOT.toISOString(),
    },
  ],
});

interface Case {
  name: string;
  view: Omit<RunView, 'now' | 'sj'> & { sj?: SingletonJob };
  want: Partial<RunState> & { kind: RunState['kind'] };
}

const r = run();
const running = pod('p', 'Running', { run: r.name });
const failedCreate: CoreV1Event = {
  metadata: {},
  involvedObject: {},
  reason: 'FailedCreate',
  message: 'serviceaccount "x" not found',
  type: 'Warning',
};

const cases: Case[] = [
  // A Job under the run's name that is not the recorded one.
  {
    name: 'a Job of ours re-created under a recorded run’s name is set aside and deleted',
    view: { run: r, job: job(r, { uid: 'other' }) },
    want: { kind: 'duplicate', deleteIt: true },
  },
  {
    name: 'a re-created Job that is going, or not ours, is set aside without a delete',
    view: { run: r, job: job(r, { uid: 'other', deleting: true }) },
    want: { kind: 'duplicate', deleteIt: false },
  },
  {
    name: 'a re-created Job of someone else is set aside without a delete',
    view: { run: r, job: job(r, { uid: 'other', owner: false }) },
    want: { kind: 'duplicate', deleteIt: false },
  },
  // Reserved without a Job.
  {
    name: 'a replaced reservation ends',
    view: { run: run({ jobUID: undefined, replacing: true }), job: undefined },
    want: { kind: 'reservationReplaced' },
  },
  {
    name: 'a retry reservation waits for its backoff (plus the requeue margin)',
    view: { run: run({ jobUID: undefined, notBefore: new Date(NOW.getTime() + 7000).toISOString() }), job: undefined },
    want: { kind: 'backingOff', recheckInMs: 7005 },
  },
  {
    name: 'a reservation past its backoff gets its Job',
    view: { run: run({ jobUID: undefined, notBefore: SLOT.toISOString() }), job: undefined },
    want: { kind: 'jobToCreate' },
  },
  // The recorded Job is gone.
  {
    name: 'a recorded run whose Job is gone needs the live Pod list',
    view: { run: r, job: undefined },
    want: { kind: 'needsPods' },
  },
  {
    name: 'a Job deleted with no Pod left ends the run as Deleted',
    view: { run: r, job: undefined, pods: [] },
    want: { kind: 'ended', outcome: 'Deleted' },
  },
  {
    name: 'a replaced run whose Job is gone ends as Replaced',
    view: { run: run({ replacing: true }), job: undefined, pods: [] },
    want: { kind: 'ended', outcome: 'Replaced' },
  },
  {
    name: 'a stalled run whose Job is gone ends as Stalled',
    view: { run: run({ stalled: 'x' }), job: undefined, pods: [] },
    want: { kind: 'ended', outcome: 'Stalled' },
  },
  {
    name: 'Pods of a deleted Job hold the schedule',
    view: { run: r, job: undefined, pods: [running] },
    want: { kind: 'podsOutliveJob', pods: [running] },
  },
  {
    name: 'Pods a replaced run left behind are deleted',
    view: { run: run({ replacing: true }), job: undefined, pods: [running] },
    want: { kind: 'podsLeftBehind', pods: [running] },
  },
  {
    name: 'a replaced run does not delete Pods that are going, or not its own: they hold it',
    view: {
      run: run({ replacing: true }),
      job: undefined,
      pods: [pod('q', 'Running', { run: r.name, deleting: true }), pod('other', 'Running')],
    },
    want: { kind: 'podsOutliveJob' },
  },
  // A Job under the name of a run that has not recorded it.
  {
    name: 'an unrecorded, never released attempt with another token goes',
    view: { run: run({ jobUID: undefined }), job: job(r, { token: 599, suspend: true, released: false }) },
    want: { kind: 'staleAttempt' },
  },
  {
    name: 'the name held by a Job that is not ours ends the run (JobNameTaken)',
    view: { run: run({ jobUID: undefined }), job: job(r, { owner: false }) },
    want: { kind: 'nameTaken' },
  },
  {
    name: 'the name held by a Job of ours with another token, released, ends the run',
    view: { run: r, job: job(r, { token: 42, suspend: false }) },
    want: { kind: 'nameTaken' },
  },
  {
    name: 'this run’s Job, created and not recorded, is recorded',
    view: { run: run({ jobUID: undefined }), job: job(r, { suspend: true }) },
    want: { kind: 'unrecordedJob', uid: UID },
  },
  // A recorded Job.
  {
    name: 'a Job Kueue manages follows its admission',
    view: { run: r, job: job(r, { suspend: true }), kueue: true },
    want: { kind: 'kueueAdmission' },
  },
  {
    name: 'a finished Job Kueue manages is judged like any other',
    view: { run: r, job: job(r, { outcome: 'Complete' }), kueue: true },
    want: { kind: 'needsPods' },
  },
  {
    name: 'a recorded Job not released yet is released',
    view: { run: r, job: job(r, { suspend: true }) },
    want: { kind: 'toRelease' },
  },
  {
    name: 'a released Job suspended again by someone else ends the attempt',
    view: { run: r, job: job(r, { suspend: true, released: true }) },
    want: { kind: 'resuspended' },
  },
  {
    name: 'a replaced run’s suspended Job is deleted, never released',
    view: { run: run({ replacing: true }), job: job(r, { suspend: true }) },
    want: { kind: 'jobToDelete', deleting: false },
  },
  {
    name: 'a finished Job needs the live Pod list',
    view: { run: r, job: job(r, { outcome: 'Complete' }) },
    want: { kind: 'needsPods' },
  },
  {
    name: 'a finished Job whose Pods still run waits for them',
    view: { run: r, job: job(r, { outcome: 'Complete' }), pods: [running] },
    want: { kind: 'podsEnding' },
  },
  {
    name: 'a completed Job with no Pod left ends the run as Succeeded, at its completion time',
    view: { run: r, job: job(r, { outcome: 'Complete', completionTime: SLOT }), pods: [] },
    want: { kind: 'ended', outcome: 'Succeeded', completion: SLOT },
  },
  {
    name: 'a failed Job ends the run as Failed without retry budget',
    view: { run: r, job: job(r, { outcome: 'Failed' }), pods: [] },
    want: { kind: 'ended', outcome: 'Failed' },
  },
  {
    name: 'a failed Job with retry budget left is a failed attempt',
    view: {
      sj: sj({ spec: { jobTemplate: { spec: { backoffLimit: 1, template: { spec: { containers: [] } } } } } }),
      run: r,
      job: job(r, { outcome: 'Failed' }),
      pods: [],
    },
    want: { kind: 'failedAttempt' },
  },
  {
    name: 'the last attempt’s failure ends the run',
    view: {
      sj: sj({ spec: { jobTemplate: { spec: { backoffLimit: 1, template: { spec: { containers: [] } } } } } }),
      run: run({ attempt: 2 }),
      job: job(r, { outcome: 'Failed' }),
      pods: [],
    },
    want: { kind: 'ended', outcome: 'Failed' },
  },
  {
    name: 'a replaced run’s finished Job ends it as Replaced',
    view: { run: run({ replacing: true }), job: job(r, { outcome: 'Failed' }), pods: [] },
    want: { kind: 'ended', outcome: 'Replaced' },
  },
  {
    name: 'a replaced run’s running Job is deleted',
    view: { run: run({ replacing: true }), job: job(r, { startedAgoMs: 1000 }) },
    want: { kind: 'jobToDelete', deleting: false },
  },
  {
    name: 'a stalled run’s Job already going is waited for',
    view: { run: run({ stalled: 'x' }), job: job(r, { deleting: true }) },
    want: { kind: 'jobToDelete', deleting: true },
  },
  // Released: running, starting, stalled.
  {
    name: 'a released Job with a ready Pod runs',
    view: { run: r, job: job(r, { startedAgoMs: 60_000, ready: 1 }) },
    want: { kind: 'running' },
  },
  {
    name: 'within the start grace a Pod is on its way',
    view: { run: r, job: job(r, { startedAgoMs: 4000 }) },
    want: { kind: 'starting', recheckInMs: 6005 },
  },
  {
    name: 'past the grace the Pods are looked at',
    view: { run: r, job: job(r, { startedAgoMs: 60_000 }) },
    want: { kind: 'needsPods' },
  },
  {
    name: 'a running Pod means the run runs',
    view: { run: r, job: job(r, { startedAgoMs: 60_000 }), pods: [running] },
    want: { kind: 'running' },
  },
  {
    name: 'a run that starts after a RunStalled condition clears it',
    view: { sj: sj({ status: stalledStatus() }), run: r, job: job(r, { startedAgoMs: 60_000, ready: 1 }), pods: [] },
    want: { kind: 'stallOver' },
  },
  {
    name: 'no Pod at all: the Job’s Events tell why',
    view: { run: r, job: job(r, { startedAgoMs: 60_000 }), pods: [] },
    want: { kind: 'needsJobEvents' },
  },
  {
    name: 'a pending Pod with nothing telling why is simply looked at again',
    view: { run: r, job: job(r, { startedAgoMs: 60_000 }), pods: [pod('p', 'Pending', { run: r.name })] },
    want: { kind: 'starting', recheckInMs: 5000 },
  },
  {
    name: 'a Pod in ImagePullBackOff is a stall, written once',
    view: {
      run: r,
      job: job(r, { startedAgoMs: 60_000 }),
      pods: [pod('p', 'Pending', { run: r.name, waiting: 'ImagePullBackOff' })],
    },
    want: { kind: 'stalled', changed: true, recheckInMs: 5000 },
  },
  {
    name: 'FailedCreate Events of a Job without Pods are a stall',
    view: { run: r, job: job(r, { startedAgoMs: 60_000 }), pods: [], jobEvents: { events: [failedCreate] } },
    want: { kind: 'stalled', changed: true },
  },
  {
    name: 'Events that cannot be read are a stall all the same (PodNotCreated)',
    view: {
      run: r,
      job: job(r, { startedAgoMs: 60_000 }),
      pods: [],
      jobEvents: { events: [], failure: '403: forbidden' },
    },
    want: { kind: 'stalled', changed: true },
  },
  {
    name: 'at podStartDeadlineSeconds the run is ended',
    view: {
      sj: sj({ spec: { podStartDeadlineSeconds: 30 } }),
      run: r,
      job: job(r, { startedAgoMs: 30_000 }),
      pods: [pod('p', 'Pending', { run: r.name })],
    },
    want: { kind: 'startDeadline', why: 'its Pod is still pending', deadlineSeconds: 30 },
  },
  {
    name: 'the recheck never passes the deadline (plus the margin)',
    view: {
      sj: sj({ spec: { podStartDeadlineSeconds: 62 } }),
      run: r,
      job: job(r, { startedAgoMs: 60_000 }),
      pods: [pod('p', 'Pending', { run: r.name })],
    },
    want: { kind: 'starting', recheckInMs: 2005 },
  },
];

describe('the active run’s state', () => {
  it.each(cases)('$name', ({ view, want }) => {
    const state = runState({ sj: sj(), now: NOW, ...view });
    expect(state).toMatchObject(want);
  });

  it('a stall already said in the same words is not written again', () => {
    const pods = [pod('p', 'Pending', { run: r.name, waiting: 'ImagePullBackOff' })];
    const first = runState({ sj: sj(), run: r, job: job(r, { startedAgoMs: 60_000 }), pods, now: NOW });
    if (first.kind !== 'stalled') throw new Error(first.kind);
    const status: SingletonJobStatus = {
      conditions: [
        {
          type: 'RunStalled',
          status: 'True',
          reason: first.stall.reason,
          message: first.message,
          lastTransitionTime: SLOT.toISOString(),
          observedGeneration: 1,
        },
      ],
    };
    expect(
      runState({ sj: sj({ status }), run: r, job: job(r, { startedAgoMs: 60_000 }), pods, now: NOW }),
    ).toMatchObject({ kind: 'stalled', changed: false });
  });
});
