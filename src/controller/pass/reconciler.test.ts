// Table tests of the reconciler's decisions, in the style of
// kube-controller-manager's TestControllerV2SyncCronJob: named cases, a fixed
// now, one reconcile pass against in-memory ports that keep the API server's
// rules (test/support/fake-cluster.ts), and what it did: creates, deletes,
// releases and status writes in order, Events as a set, the requeue time.
// The integration tests (test/integration/controller*.test.ts) prove the
// same against the real control plane; these reach every branch in seconds.
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import type { ActiveRun, SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import { apiError, FakeCluster } from '../../../test/support/fake-cluster.ts';
import { buildJob } from '../rules/jobs.ts';
import { controllerMetrics } from '../metrics.ts';
import { backfillRunName, manualRunName, scheduledRunName } from '../rules/naming.ts';
import { Reconciler } from './reconciler.ts';
import { isNamespaceTerminating } from '../../kube/errors.ts';
import type { ReconcilerDeps, Result } from './reconciler.ts';

const NOW = new Date('2026-06-01T12:00:30Z');
const SLOT = new Date('2026-06-01T12:00:00Z');
const TERM = 500;
const KEY = 'ns/sj';
const MINE = 'ops/singleton-operator';
/** The Job of the backfill run of slot 10:01 with token 1001. */
const BACKFILL_RUN = backfillRunName('sj', new Date('2026-06-01T10:01:00Z'), 1001);

type Setup = (f: FakeCluster) => void;

interface Case {
  name: string;
  spec?: Partial<SingletonJob['spec']>;
  status?: SingletonJobStatus;
  runNow?: string;
  setup?: Setup;
  term?: number;
  latestRevision?: number;
  lease?: boolean;
  /** The API server is 1.31 or later: a finished Job proves its Pods ended. */
  finishAfterPods?: boolean;
  /** Expected mutating calls: creates, deletes, releases and status writes in order; Events (`event …`) as a set. */
  actions: string[];
  /** When the pass asks to come back (ms); null: the pass throws. Every table case states it. */
  requeueAfterMs?: number | null;
  check?: (f: FakeCluster, r: Result) => void;
  /** The pass is expected to fail with this error (checked by the function). */
  rejects?: (err: unknown) => void;
}

function template(labels: Record<string, string> = {}) {
  return {
    spec: {
      template: {
        metadata: { labels },
        spec: { restartPolicy: 'Never' as const, containers: [{ name: 'main', image: 'busybox' }] },
      },
    },
  };
}

function makeSJ(c: Case): SingletonJob {
  return {
    apiVersion: 'singleton.dev/v1alpha1',
    kind: 'SingletonJob',
    metadata: { name: 'sj', namespace: 'ns', ...(c.runNow ? { annotations: { [Keys.runNow]: c.runNow } } : {}) },
    spec: { jobTemplate: template(), ...c.spec },
    ...(c.status ? { status: c.status } : {}),
  } as SingletonJob;
}

const run = (over: Partial<ActiveRun> = {}): ActiveRun => ({
  name: scheduledRunName('sj', SLOT),
  token: 600,
  term: TERM,
  kind: 'Scheduled',
  slot: SLOT.toISOString(),
  reservedTime: SLOT.toISOString(),
  ...over,
});

/** The Job of `r`, as the controller would have created it; `outcome` sets its terminal condition. */
function addRunJob(
  f: FakeCluster,
  r: ActiveRun,
  opts: { uid?: string; suspend?: boolean; outcome?: 'Complete' | 'Failed'; owner?: boolean } = {},
): V1Job {
  const sj = f.sj();
  const job = buildJob(sj, r, { suspended: opts.suspend ?? false });
  if (opts.owner === false) job.metadata!.ownerReferences = [];
  if (opts.uid) job.metadata!.uid = opts.uid;
  // As the Job controller of Kubernetes ≥ 1.31 finishes a Job: the interim condition (SuccessCriteriaMet/FailureTarget) first, then the terminal one.
  if (opts.outcome)
    job.status = {
      conditions: [
        { type: opts.outcome === 'Complete' ? 'SuccessCriteriaMet' : 'FailureTarget', status: 'True' },
        { type: opts.outcome, status: 'True' },
      ],
    };
  return f.addJob(job);
}

function addPod(f: FakeCluster, job: V1Job, phase: string, opts: { deleting?: boolean; name?: string } = {}): V1Pod {
  return f.addPod({
    metadata: {
      name: opts.name ?? `${job.metadata!.name}-pod`,
      namespace: 'ns',
      labels: { ...job.spec!.template.metadata!.labels },
      annotations: { ...job.spec!.template.metadata!.annotations },
      ownerReferences: [
        { apiVersion: 'batch/v1', kind: 'Job', name: job.metadata!.name!, uid: job.metadata!.uid!, controller: true },
      ],
      ...(opts.deleting ? { deletionTimestamp: new Date() } : {}),
    },
    status: { phase },
  });
}

/** The active run with its Job recorded (the usual in-flight state). */
function inFlight(
  f: FakeCluster,
  r: ActiveRun,
  opts: { outcome?: 'Complete' | 'Failed'; podPhase?: string } = {},
): V1Job {
  const job = addRunJob(f, r, { outcome: opts.outcome });
  const sj = f.sjs.get(KEY)!;
  sj.status!.activeRun = { ...r, jobUID: job.metadata!.uid! };
  if (opts.podPhase) addPod(f, job, opts.podPhase);
  return job;
}

/** The Job of generation 1 was accepted (a dry run or a run's create): no dry run is due. */
/** The active run, released a minute ago, whose one Pod waits in ImagePullBackOff. */
function imagePullBackOff(f: FakeCluster): void {
  const job = inFlight(f, run());
  f.jobMap.get(`ns/${job.metadata!.name}`)!.status = { startTime: new Date(NOW.getTime() - 60_000), active: 1 };
  const pod = addPod(f, job, 'Pending');
  f.pods[0]!.status = {
    ...pod.status,
    containerStatuses: [
      {
        name: 'main',
        image: 'nope',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "nope"' } },
      },
    ],
  };
}

const templateAccepted = {
  type: 'TemplateAccepted',
  status: 'True' as const,
  reason: 'DryRunAccepted',
  message: 'The API server accepts the Job this template makes (server-side dry run of generation 1)',
  lastTransitionTime: '2026-01-01T00:00:00Z',
  observedGeneration: 1,
};
/** Refusals and failures of a Job create, as the API server words them. */
const quota403 = (job: V1Job) =>
  apiError(
    403,
    `jobs.batch "${job.metadata?.name}" is forbidden: exceeded quota: jobs, requested: count/jobs.batch=1, used: count/jobs.batch=2, limited: count/jobs.batch=2`,
    { reason: 'Forbidden' },
  );
const webhook500 = () =>
  apiError(
    500,
    'Internal error occurred: failed calling webhook "jobs.policy.example": failed to call webhook: Post "https://policy.example.svc:443/validate?timeout=10s": dial tcp 10.0.0.1:443: connect: connection refused',
    { reason: 'InternalError' },
  );
const terminating403 = (job: V1Job) =>
  apiError(
    403,
    `jobs.batch "${job.metadata?.name}" is forbidden: unable to create new content in namespace ns because it is being terminated`,
    {
      reason: 'Forbidden',
      details: {
        name: job.metadata?.name,
        group: 'batch',
        kind: 'jobs',
        causes: [
          { reason: 'NamespaceTerminating', message: 'namespace ns is being terminated', field: 'metadata.namespace' },
        ],
      },
    },
  );
/** Answers a run's Job create (not the template's dry run) with `err`. */
const refuseRuns = (f: FakeCluster, err: (job: V1Job) => Error) =>
  void (f.refuseJobCreate = (job, o) => (o.dryRun ? undefined : err(job)));
/** Answers the template's dry run with `err`. */
const refuseDryRuns = (f: FakeCluster, err: (job: V1Job) => Error) =>
  void (f.refuseJobCreate = (job, o) => (o.dryRun ? err(job) : undefined));
const conditionOf = (f: FakeCluster, type: string) => f.sj().status?.conditions?.find((c) => c.type === type);

const healthy = {
  conditions: [
    {
      type: 'Ready',
      status: 'True' as const,
      reason: 'Scheduled',
      message: 'Runs on schedule "* * * * *" in UTC',
      lastTransitionTime: '2026-01-01T00:00:00Z',
      observedGeneration: 1,
    },
    templateAccepted,
  ],
  observedGeneration: 1,
};
const scheduled = { schedule: '* * * * *' };
/** The same, with no run prepared ahead of its slot: for cases about what a pass does at or after a slot. */
const unprepared = { schedule: '* * * * *', prepareAheadSeconds: 0 };
const atSlot = { lastScheduleTime: SLOT.toISOString(), currentToken: 600, leaderTerm: TERM, ...healthy };

const finishedBefore = {
  recentRuns: [
    {
      name: 'sj-old',
      token: 9,
      term: 400,
      kind: 'Scheduled' as const,
      slot: '2026-06-01T11:58:00Z',
      outcome: 'Succeeded' as const,
      finishedTime: '2026-06-01T11:58:05Z',
    },
  ],
};

const cases: Case[] = [
  {
    name: 'the Job of an earlier attempt at this run, never recorded nor released, token above the recorded one: adopted with its token',
    requeueAfterMs: 30005,
    spec: scheduled,
    status: { lastScheduleTime: '2026-06-01T11:59:00Z', currentToken: 10, leaderTerm: 400, ...healthy },
    setup: (f) => void addRunJob(f, run({ token: 900, term: 400, slot: SLOT.toISOString() }), { suspend: true }),
    actions: ['update-status', `unsuspend ${scheduledRunName('sj', SLOT)}`, 'event Normal RunStarted'],
    check: (f) => {
      const job = f.jobMap.get(`ns/${scheduledRunName('sj', SLOT)}`)!;
      expect(f.sj().status!.activeRun).toMatchObject({ token: 900, term: 400, jobUID: job.metadata!.uid });
      expect(f.sj().status!.currentToken).toBe(900);
    },
  },
  {
    name: 'the Job of an earlier attempt whose token was spent meanwhile: deleted as a stray (it never ran), and the run gets its own Job',
    requeueAfterMs: 30005,
    spec: scheduled,
    status: { lastScheduleTime: '2026-06-01T11:59:00Z', currentToken: 950, leaderTerm: 400, ...healthy },
    setup: (f) => void addRunJob(f, run({ token: 900, term: 400, slot: SLOT.toISOString() }), { suspend: true }),
    actions: [
      `delete-job ${scheduledRunName('sj', SLOT)} uid=job-uid-2`,
      'event Warning StrayJobDeleted',
      `create-job ${scheduledRunName('sj', SLOT)} token=1001 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', SLOT)}`,
      'event Normal RunStarted',
    ],
  },
  {
    name: 'Kubernetes ≥ 1.31, a run finished before and every Job of it finished: the start needs no Pod list',
    requeueAfterMs: 30005,
    finishAfterPods: true,
    spec: scheduled,
    status: {
      lastScheduleTime: '2026-06-01T11:59:00Z',
      currentToken: 10,
      leaderTerm: 400,
      ...healthy,
      ...finishedBefore,
    },
    setup: (f) =>
      void addRunJob(f, run({ name: 'sj-old', token: 9, slot: '2026-06-01T11:58:00Z' }), { outcome: 'Complete' }),
    actions: [
      `create-job ${scheduledRunName('sj', SLOT)} token=1001 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', SLOT)}`,
      'event Normal RunStarted',
    ],
    check: (f) => expect(f.podLists).toBe(0),
  },
  {
    name: 'Kubernetes ≥ 1.31 but the first run of this object: Pods are listed live (a deleted predecessor of the same name may have left one)',
    requeueAfterMs: 30005,
    finishAfterPods: true,
    spec: scheduled,
    status: { lastScheduleTime: '2026-06-01T11:59:00Z', currentToken: 10, leaderTerm: 400, ...healthy },
    actions: [
      `create-job ${scheduledRunName('sj', SLOT)} token=1001 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', SLOT)}`,
      'event Normal RunStarted',
    ],
    check: (f) => expect(f.podLists).toBe(1),
  },
  {
    name: 'Kubernetes ≥ 1.31 but a released, unfinished stray Job: deleted, and as its Pods outlive it in the cache, Pods are listed live and its terminating Pod holds the run',
    requeueAfterMs: 1000,
    finishAfterPods: true,
    spec: scheduled,
    status: {
      lastScheduleTime: '2026-06-01T11:59:00Z',
      currentToken: 10,
      leaderTerm: 400,
      ...healthy,
      ...finishedBefore,
    },
    setup: (f) =>
      void addPod(f, addRunJob(f, run({ name: 'sj-person', token: 5, slot: '2026-06-01T11:58:00Z' })), 'Running'),
    actions: ['delete-job sj-person uid=job-uid-2', 'event Warning StrayJobDeleted'],
    check: (f, r) => {
      expect(f.podLists).toBe(1);
      expect(r.requeueAfterMs).toBeGreaterThan(0);
    },
  },
  {
    name: 'Kubernetes ≥ 1.31, a new object seen idle: one live Pod list finds no Pod of a predecessor of that name, recorded once (no start lists Pods for it)',
    requeueAfterMs: 0,
    finishAfterPods: true,
    spec: { schedule: '0 0 1 1 *' },
    actions: ['dry-run-job sj-0', 'update-status'],
    check: (f) => {
      expect(f.podLists).toBe(1);
      expect(f.sj().status?.predecessorPodsChecked).toBe(true);
    },
  },
  {
    name: 'Kubernetes ≥ 1.31, an object created this very second: no list yet (one sent a second later serves every object created before it), looked at again then',
    requeueAfterMs: 0,
    finishAfterPods: true,
    spec: { schedule: '0 0 1 1 *' },
    setup: (f) => void (f.sjs.get(KEY)!.metadata!.creationTimestamp = NOW),
    actions: ['dry-run-job sj-0', 'update-status'],
    check: (f, r) => {
      expect(f.podLists).toBe(0);
      expect(f.sj().status?.predecessorPodsChecked).toBeUndefined();
      expect(r.requeueAfterMs).toBeLessThanOrEqual(1100);
    },
  },
  {
    name: "Kubernetes ≥ 1.31, a new object whose deleted predecessor's orphaned Pod still runs: not recorded as checked (its first start lists Pods again)",
    requeueAfterMs: 0,
    finishAfterPods: true,
    spec: { schedule: '0 0 1 1 *' },
    setup: (f) =>
      void f.addPod({
        metadata: {
          name: 'orphan',
          namespace: 'ns',
          annotations: { [Keys.singletonJob]: 'sj' },
          labels: { [Keys.ownerUid]: 'uid-of-a-deleted-predecessor' },
        },
        status: { phase: 'Running' },
      }),
    actions: ['dry-run-job sj-0', 'update-status'],
    check: (f) => expect(f.sj().status?.predecessorPodsChecked).toBeUndefined(),
  },
  {
    name: 'Kubernetes ≥ 1.31, predecessor Pods checked before: the first start needs no Pod list',
    requeueAfterMs: 30005,
    finishAfterPods: true,
    spec: scheduled,
    status: {
      lastScheduleTime: '2026-06-01T11:59:00Z',
      currentToken: 10,
      leaderTerm: 400,
      ...healthy,
      predecessorPodsChecked: true,
    },
    actions: [
      `create-job ${scheduledRunName('sj', SLOT)} token=1001 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', SLOT)}`,
      'event Normal RunStarted',
    ],
    check: (f) => expect(f.podLists).toBe(0),
  },
  {
    name: 'Kubernetes ≥ 1.31: a Complete Job that proves its own Pods terminal still ends its run only after a live Pod list',
    requeueAfterMs: 0,
    finishAfterPods: true,
    spec: scheduled,
    status: { ...atSlot },
    setup: (f) => void inFlight(f, run(), { outcome: 'Complete' }),
    actions: ['update-status', 'event Normal RunFinished'],
    check: (f) => expect(f.podLists).toBe(1),
  },
  {
    name: "issue 21 item 1c: a run's Pod relabelled out of its Job (controller-uid edited) still runs after the Job completed with its replacement: the run does not end",
    requeueAfterMs: 1000,
    finishAfterPods: true,
    spec: scheduled,
    status: { ...atSlot },
    setup: (f) => {
      const job = inFlight(f, run(), { outcome: 'Complete' });
      const pod = addPod(f, job, 'Running', { name: 'quarantined' });
      // Released by the Job controller: no owner reference, controller-uid label changed; our annotation stays.
      const live = f.pods.find((x) => x.metadata?.uid === pod.metadata?.uid)!;
      live.metadata!.ownerReferences = [];
      live.metadata!.labels = { ...live.metadata!.labels, 'batch.kubernetes.io/controller-uid': 'quarantine' };
    },
    actions: [],
    check: (f, r) => {
      expect(f.sj().status?.activeRun?.name).toBe(run().name);
      expect(r.requeueAfterMs).toBeGreaterThan(0);
    },
  },
  {
    name: 'a due slot with nothing in flight: reserve, create suspended, record the UID, release',
    requeueAfterMs: 30005,
    spec: scheduled,
    status: { lastScheduleTime: '2026-06-01T11:59:00Z', currentToken: 10, leaderTerm: 400, ...healthy },
    actions: [
      `create-job ${scheduledRunName('sj', SLOT)} token=1001 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', SLOT)}`,
      'event Normal RunStarted',
    ],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.activeRun).toMatchObject({
        name: scheduledRunName('sj', SLOT),
        token: 1001,
        term: TERM,
        kind: 'Scheduled',
        slot: SLOT.toISOString(),
      });
      expect(s.activeRun!.jobUID).toBe(f.jobMap.get(`ns/${scheduledRunName('sj', SLOT)}`)!.metadata!.uid);
      expect(s.leaderTerm).toBe(TERM);
    },
  },
  {
    name: 'the token is at least the revision the reservation is computed from (a re-created object starts above its predecessor)',
    requeueAfterMs: 30005,
    spec: scheduled,
    status: { lastScheduleTime: '2026-06-01T11:59:00Z', ...healthy },
    setup: (f) => {
      f.revision = 90_000;
      f.sjs.get(KEY)!.metadata!.resourceVersion = f.nextRv();
    },
    actions: [
      `create-job ${scheduledRunName('sj', SLOT)} token=90001 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', SLOT)}`,
      'event Normal RunStarted',
    ],
  },
  {
    name: 'a new manual request: the Job name hashes the id and the token',
    requeueAfterMs: 60000,
    status: { lastManualRequestId: 'b', currentToken: 1500, leaderTerm: TERM, ...healthy },
    runNow: 'a',
    setup: (f) => {
      // The Job of an earlier request "a" is still in history: no collision.
      f.addJob({
        metadata: {
          name: manualRunName('sj', 'a', 700),
          annotations: { [Keys.token]: '700' },
          ownerReferences: [
            {
              apiVersion: 'singleton.dev/v1alpha1',
              kind: 'SingletonJob',
              name: 'sj',
              uid: f.sjs.get(KEY)!.metadata!.uid!,
              controller: true,
            },
          ],
        },
        status: { conditions: [{ type: 'Complete', status: 'True' }] },
      });
    },
    actions: [
      `create-job ${manualRunName('sj', 'a', 1501)} token=1501 suspended`,
      'update-status',
      `unsuspend ${manualRunName('sj', 'a', 1501)}`,
      'event Normal RunStarted',
    ],
    check: (f) => expect(f.sj().status!.lastManualRequestId).toBe('a'),
  },
  {
    name: 'the latest request id applied again is not a new request',
    requeueAfterMs: 60000,
    status: {
      lastManualRequestId: 'a',
      currentToken: 1500,
      leaderTerm: TERM,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'OnDemand',
          message: 'No schedule: runs start only on request (annotation singleton.dev/run-now)',
          lastTransitionTime: '2026-01-01T00:00:00Z',
          observedGeneration: 1,
        },
        templateAccepted,
      ],
      observedGeneration: 1,
    },
    runNow: 'a',
    actions: [],
  },
  {
    name: 'Forbid: a due slot waits while the run is in flight',
    requeueAfterMs: 2000,
    spec: scheduled,
    status: { ...atSlot, lastScheduleTime: '2026-06-01T11:59:00Z' },
    setup: (f) => void inFlight(f, run({ slot: '2026-06-01T11:59:00Z', name: 'sj-prev' }), { podPhase: 'Running' }),
    actions: ['event Normal RunHeld'],
    check: (_f, r) => expect(r.requeueAfterMs).toBeLessThanOrEqual(2000),
  },
  {
    name: 'Replace: a due slot marks the run replacing',
    requeueAfterMs: 0,
    spec: { ...scheduled, concurrencyPolicy: 'Replace' },
    status: { ...atSlot, lastScheduleTime: '2026-06-01T11:59:00Z' },
    setup: (f) => void inFlight(f, run({ slot: '2026-06-01T11:59:00Z', name: 'sj-prev' }), { podPhase: 'Running' }),
    actions: ['update-status', 'event Normal RunReplacing'],
    check: (f) => expect(f.sj().status!.activeRun!.replacing).toBe(true),
  },
  {
    name: 'a replacing run: its Job is deleted',
    requeueAfterMs: 1000,
    spec: { ...scheduled, concurrencyPolicy: 'Replace' },
    status: atSlot,
    setup: (f) => {
      const job = inFlight(f, run(), { podPhase: 'Running' });
      f.sjs.get(KEY)!.status!.activeRun!.replacing = true;
      void job;
    },
    actions: [`delete-job ${scheduledRunName('sj', SLOT)} uid=job-uid-2`],
  },
  {
    name: 'a replacing run whose Job is gone: Pods it left behind are cancelled, the run waits for them',
    requeueAfterMs: 1000,
    spec: { ...scheduled, concurrencyPolicy: 'Replace' },
    status: atSlot,
    setup: (f) => {
      const job = inFlight(f, run(), { podPhase: 'Running' });
      f.jobMap.clear();
      f.sjs.get(KEY)!.status!.activeRun!.replacing = true;
      void job;
    },
    actions: [`delete-pod ${scheduledRunName('sj', SLOT)}-pod`],
    check: (f) => expect(f.sj().status!.activeRun).toBeDefined(),
  },
  {
    name: 'a completed Job whose Pods are all terminal: the run finishes',
    requeueAfterMs: 0,
    spec: scheduled,
    status: atSlot,
    setup: (f) => void inFlight(f, run(), { outcome: 'Complete', podPhase: 'Succeeded' }),
    actions: ['update-status', 'event Normal RunFinished'],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.activeRun).toBeUndefined();
      expect(s.recentRuns![0]).toMatchObject({ name: scheduledRunName('sj', SLOT), outcome: 'Succeeded', token: 600 });
    },
  },
  {
    name: 'a completed Job with a Pod still running: the run waits',
    requeueAfterMs: 1000,
    spec: scheduled,
    status: atSlot,
    setup: (f) => void inFlight(f, run(), { outcome: 'Complete', podPhase: 'Running' }),
    actions: [],
    check: (f, r) => {
      expect(f.sj().status!.activeRun).toBeDefined();
      expect(r.requeueAfterMs).toBe(1000);
    },
  },
  {
    name: 'a reservation without a Job (the leader paused): confirmed live, its Job created with the reserved token',
    requeueAfterMs: 30005,
    spec: scheduled,
    status: { ...atSlot, activeRun: run() },
    actions: [
      `create-job ${scheduledRunName('sj', SLOT)} token=600 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', SLOT)}`,
      'event Normal RunStarted',
    ],
  },
  {
    name: 'a predecessor created the Job but did not record it: adopted (it never ran)',
    requeueAfterMs: 0,
    spec: scheduled,
    status: { ...atSlot, activeRun: run() },
    setup: (f) => void addRunJob(f, run(), { suspend: true }),
    actions: ['update-status'],
    check: (f) => expect(f.sj().status!.activeRun!.jobUID).toBe('job-uid-2'),
  },
  {
    name: 'a recorded Job still suspended: released',
    requeueAfterMs: 1000,
    spec: scheduled,
    status: atSlot,
    setup: (f) => {
      const job = inFlight(f, run());
      f.jobMap.get(`ns/${job.metadata!.name}`)!.spec!.suspend = true;
    },
    actions: [`unsuspend ${scheduledRunName('sj', SLOT)}`],
  },
  {
    // Issue 23 (no election): two writers saw the run recorded and its Job
    // suspended; the other released it, someone suspended it again, and only
    // then does this writer's release arrive. It tests the resourceVersion it
    // read: refused, nothing unsuspended; the next pass reads the Job again.
    name: 'a release decided from an older read of the Job (another writer released it and it was suspended again since): refused, the Job stays suspended',
    requeueAfterMs: 0,
    spec: scheduled,
    status: atSlot,
    setup: (f) => {
      const job = inFlight(f, run());
      f.jobMap.get(`ns/${job.metadata!.name}`)!.spec!.suspend = true;
      f.beforeUnsuspend = (live) => {
        live.metadata = {
          ...live.metadata,
          annotations: { ...live.metadata?.annotations, [Keys.released]: SLOT.toISOString() },
          resourceVersion: f.nextRv(),
        };
        live.spec = { ...live.spec!, suspend: true };
      };
    },
    actions: [`unsuspend ${scheduledRunName('sj', SLOT)} refused`],
    check: (f, r) => {
      expect(f.jobMap.get(`ns/${scheduledRunName('sj', SLOT)}`)?.spec?.suspend).toBe(true);
      expect(r.requeueAfterMs).toBe(0);
    },
  },
  {
    name: 'the recorded Job was deleted and a same-name, same-token Job re-created: deleted, never released; the terminating Pod holds the run',
    requeueAfterMs: 1000,
    spec: scheduled,
    status: atSlot,
    setup: (f) => {
      const job = inFlight(f, run());
      const pod = addPod(f, job, 'Running', { deleting: true });
      void pod;
      f.jobMap.clear();
      addRunJob(f, run(), { suspend: true, uid: 'duplicate-uid' });
    },
    actions: [
      `delete-job ${scheduledRunName('sj', SLOT)} uid=duplicate-uid`,
      'event Warning DuplicateJobDeleted',
      'event Warning RunJobDeleted',
    ],
    check: (f) => {
      expect(f.sj().status!.activeRun!.jobUID).toBe('job-uid-2');
      expect(f.actions.some((a) => a.startsWith('unsuspend'))).toBe(false);
    },
  },
  {
    name: 'a re-created Job under the recorded run’s name, once no Pod of the run can run: the run ends as Deleted',
    requeueAfterMs: 0,
    spec: scheduled,
    status: atSlot,
    setup: (f) => {
      inFlight(f, run());
      f.jobMap.clear();
      addRunJob(f, run(), { suspend: true, uid: 'duplicate-uid' });
    },
    actions: [
      `delete-job ${scheduledRunName('sj', SLOT)} uid=duplicate-uid`,
      'event Warning DuplicateJobDeleted',
      'update-status',
      'event Warning RunFinished',
    ],
    check: (f) => expect(f.sj().status!.recentRuns![0]!.outcome).toBe('Deleted'),
  },
  {
    name: "a Job that is not this run's holds its name: the run ends Failed (JobNameTaken), nothing wedges",
    requeueAfterMs: 0,
    status: {
      lastManualRequestId: 'a',
      currentToken: 600,
      leaderTerm: TERM,
      activeRun: run({ kind: 'Manual', requestId: 'a', slot: undefined, name: 'sj-m-taken' }),
    },
    setup: (f) => void f.addJob({ metadata: { name: 'sj-m-taken' } }),
    actions: ['event Warning JobNameTaken', 'update-status', 'event Warning RunFinished'],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.activeRun).toBeUndefined();
      expect(s.recentRuns![0]).toMatchObject({ name: 'sj-m-taken', outcome: 'Failed' });
    },
  },
  {
    name: "a Pod of a deleted predecessor with the same name still runs: the new object's first run waits",
    requeueAfterMs: 1000,
    spec: scheduled,
    status: { lastScheduleTime: '2026-06-01T11:59:00Z', ...healthy },
    setup: (f) => {
      f.addPod({
        metadata: {
          name: 'old-pod',
          namespace: 'ns',
          labels: { [Keys.ownerUid]: 'predecessor-uid' },
          annotations: { [Keys.singletonJob]: 'sj' },
        },
        status: { phase: 'Running' },
      });
    },
    actions: [],
    check: (f, r) => {
      expect(f.sj().status!.activeRun).toBeUndefined();
      expect(r.requeueAfterMs).toBe(1000);
    },
  },
  {
    name: 'a failed attempt with budget left: a new reservation with a new, higher token and a backoff',
    requeueAfterMs: 10005,
    spec: { ...scheduled, jobTemplate: { spec: { ...template().spec, backoffLimit: 2 } } },
    status: atSlot,
    setup: (f) => void inFlight(f, run(), { outcome: 'Failed', podPhase: 'Failed' }),
    // Prepared: the next attempt's Job is created suspended and recorded with it; only its release waits for the backoff.
    actions: [
      `create-job ${scheduledRunName('sj', SLOT, 2)} token=1001 suspended`,
      'update-status',
      'event Warning RunRetrying',
    ],
    check: (f, r) => {
      const s = f.sj().status!;
      expect(s.activeRun).toMatchObject({
        name: scheduledRunName('sj', SLOT, 2),
        attempt: 2,
        slot: SLOT.toISOString(),
      });
      expect(s.activeRun!.token).toBeGreaterThan(600);
      expect(s.currentToken).toBe(s.activeRun!.token);
      expect(s.activeRun!.jobUID).toBe(f.jobMap.get(`ns/${scheduledRunName('sj', SLOT, 2)}`)!.metadata!.uid);
      expect(f.jobMap.get(`ns/${scheduledRunName('sj', SLOT, 2)}`)!.spec!.suspend).toBe(true);
      expect(Date.parse(s.activeRun!.notBefore!) - NOW.getTime()).toBe(10_000);
      expect(s.activeRun!.releaseTime).toBe(s.activeRun!.notBefore);
      expect(s.recentRuns![0]).toMatchObject({ outcome: 'Failed', token: 600 });
      expect(r.requeueAfterMs).toBe(10_005);
    },
  },
  {
    name: 'a retry before its backoff has passed: nothing yet',
    requeueAfterMs: 4005,
    spec: { ...scheduled, jobTemplate: { spec: { ...template().spec, backoffLimit: 2 } } },
    status: {
      ...atSlot,
      currentToken: 700,
      activeRun: run({
        name: scheduledRunName('sj', SLOT, 2),
        token: 700,
        attempt: 2,
        notBefore: new Date(NOW.getTime() + 4000).toISOString(),
      }),
    },
    actions: [],
    check: (_f, r) => expect(r.requeueAfterMs).toBe(4005),
  },
  {
    name: "a retry whose backoff has passed: its own Job with the attempt's token",
    requeueAfterMs: 30005,
    spec: { ...scheduled, jobTemplate: { spec: { ...template().spec, backoffLimit: 2 } } },
    status: {
      ...atSlot,
      currentToken: 700,
      activeRun: run({
        name: scheduledRunName('sj', SLOT, 2),
        token: 700,
        attempt: 2,
        notBefore: new Date(NOW.getTime() - 1).toISOString(),
      }),
    },
    actions: [
      `create-job ${scheduledRunName('sj', SLOT, 2)} token=700 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', SLOT, 2)}`,
      'event Normal RunStarted',
    ],
    check: (f) => {
      const job = f.jobMap.get(`ns/${scheduledRunName('sj', SLOT, 2)}`)!;
      expect(job.spec!.backoffLimit).toBe(0);
      expect(job.metadata!.annotations![Keys.attempt]).toBe('2');
    },
  },
  {
    name: 'the last attempt failed: the run finishes Failed',
    requeueAfterMs: 0,
    spec: { ...scheduled, jobTemplate: { spec: { ...template().spec, backoffLimit: 1 } } },
    status: atSlot,
    setup: (f) =>
      void inFlight(f, run({ attempt: 2, name: scheduledRunName('sj', SLOT, 2) }), {
        outcome: 'Failed',
        podPhase: 'Failed',
      }),
    actions: ['update-status', 'event Warning RunFinished'],
    check: (f) => expect(f.sj().status!.recentRuns![0]).toMatchObject({ outcome: 'Failed', attempt: 2 }),
  },
  {
    name: "another installation's live Lease wrote it: stand by, say so once, term and Lease unchanged",
    requeueAfterMs: 1000,
    lease: true,
    spec: scheduled,
    status: { ...atSlot, leaderTerm: 900, leaderLease: 'other/op', lastScheduleTime: '2026-06-01T11:59:00Z' },
    actions: ['update-status', 'event Warning ClaimedByAnotherInstallation'],
    check: (f) => {
      const s = f.sj().status!;
      expect(s).toMatchObject({ leaderTerm: 900, leaderLease: 'other/op', contender: MINE });
      expect(s.conditions!.find((c) => c.type === 'Contended')).toMatchObject({
        status: 'True',
        reason: 'ClaimedByAnotherInstallation',
      });
      expect(s.activeRun).toBeUndefined();
    },
  },
  {
    name: "the other installation's Lease has gone: take over with the term raised above theirs",
    requeueAfterMs: 0,
    lease: true,
    latestRevision: 950,
    spec: scheduled,
    status: {
      ...atSlot,
      leaderTerm: 900,
      leaderLease: 'other/op',
      currentToken: 600,
      lastScheduleTime: '2026-06-01T11:59:00Z',
    },
    setup: (f) => f.leases.set('other/op', { alive: false, why: 'Lease other/op does not exist', recheckMs: 0 }),
    // The claim is written at once (a pass that writes nothing else must not
    // take the object over again on every pass); the run starts on the next pass.
    actions: ['event Normal TakenOver', 'update-status'],
    check: (f, result) => {
      expect(f.sj().status).toMatchObject({ leaderTerm: 950, leaderLease: MINE, currentToken: 600 });
      expect(result.requeueAfterMs).toBe(0);
    },
  },
  {
    name: 'a recorded term above every revision (written by hand): reported, not written',
    requeueAfterMs: 2000,
    lease: true,
    latestRevision: 950,
    spec: scheduled,
    status: { ...atSlot, leaderTerm: 9_000_000, leaderLease: 'nowhere/none', lastScheduleTime: '2026-06-01T11:59:00Z' },
    setup: (f) =>
      f.leases.set('nowhere/none', { alive: false, why: 'Lease nowhere/none does not exist', recheckMs: 0 }),
    actions: ['event Warning TermAboveLeader'],
  },
  {
    name: 'a newer leader of this installation wrote it: left alone',
    requeueAfterMs: 30005,
    lease: true,
    spec: scheduled,
    status: { ...atSlot, leaderTerm: 900, leaderLease: MINE, lastScheduleTime: '2026-06-01T11:59:00Z' },
    actions: [],
  },
  {
    name: 'a stray (unfinished Job of no active run, token already issued): confirmed live and deleted',
    requeueAfterMs: 30005,
    spec: unprepared,
    status: { ...atSlot, currentToken: 700 },
    setup: (f) => void addRunJob(f, run({ name: 'sj-stray', token: 650 }), { suspend: true }),
    actions: ['delete-job sj-stray uid=job-uid-2', 'event Warning StrayJobDeleted'],
  },
  {
    name: 'history limits: finished Jobs beyond them are pruned, newest kept',
    requeueAfterMs: 30005,
    spec: { ...unprepared, successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 0 },
    status: { ...atSlot, currentToken: 700 },
    setup: (f) => {
      addRunJob(f, run({ name: 'sj-a', token: 610 }), { outcome: 'Complete' });
      addRunJob(f, run({ name: 'sj-b', token: 620 }), { outcome: 'Complete' });
      addRunJob(f, run({ name: 'sj-c', token: 630 }), { outcome: 'Failed' });
    },
    actions: ['delete-job sj-a uid=job-uid-2', 'delete-job sj-c uid=job-uid-4'],
  },
  {
    name: 'an invalid time zone: Ready=False with the reason and kstatus Stalled=True (the object cannot run), no run',
    requeueAfterMs: 60000,
    spec: { schedule: '* * * * *', timeZone: 'Mars/Olympus' },
    status: { lastScheduleTime: '2026-06-01T11:59:00Z' },
    actions: ['update-status', 'event Warning InvalidTimeZone'],
    check: (f) => {
      expect(conditionOf(f, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidTimeZone' });
      expect(conditionOf(f, 'Stalled')).toMatchObject({
        status: 'True',
        reason: 'InvalidTimeZone',
        message: conditionOf(f, 'Ready')!.message,
        observedGeneration: 1,
      });
    },
  },
  {
    name: 'slots missed beyond the starting deadline: skipped and counted, no run',
    requeueAfterMs: 0,
    spec: { ...scheduled, startingDeadlineSeconds: 10 },
    status: { ...healthy, lastScheduleTime: '2026-06-01T11:55:00Z' },
    actions: ['update-status', 'event Warning SlotsSkipped'],
    check: (f) => expect(f.sj().status).toMatchObject({ lastScheduleTime: SLOT.toISOString(), skippedSlots: 5 }),
  },
  {
    name: 'the API server refuses the Job: the run ends Failed, Ready says why, and kstatus Stalled=True (the template cannot run)',
    requeueAfterMs: 0,
    spec: scheduled,
    status: { ...atSlot, lastScheduleTime: '2026-06-01T11:59:00Z' },
    setup: (f) => (f.rejectJobs = 'spec.template.spec.containers[0].image: Required value'),
    actions: ['event Warning JobRejected', 'update-status', 'update-status', 'event Warning RunFinished'],
    check: (f) => {
      expect(conditionOf(f, 'Ready')).toMatchObject({ status: 'False', reason: 'JobRejected' });
      expect(conditionOf(f, 'Stalled')).toMatchObject({ status: 'True', reason: 'JobRejected' });
    },
  },
  {
    name: "migration: a previous version's Stalled condition of a stalled run is rewritten as RunStalled by the next status write",
    requeueAfterMs: 0,
    spec: scheduled,
    status: atSlot,
    setup: (f) => {
      imagePullBackOff(f);
      f.sjs.get(KEY)!.status!.conditions!.push({
        type: 'Stalled',
        status: 'True',
        reason: 'ImagePullBackOff',
        message: 'old words',
        lastTransitionTime: '2026-06-01T12:00:20Z',
        observedGeneration: 1,
      });
    },
    actions: ['update-status', 'event Warning RunStalled'],
    check: (f) => {
      expect(conditionOf(f, 'Stalled')).toBeUndefined();
      expect(conditionOf(f, 'RunStalled')).toMatchObject({
        status: 'True',
        reason: 'ImagePullBackOff',
        lastTransitionTime: '2026-06-01T12:00:20Z',
      });
      expect(conditionOf(f, 'RunStalled')!.message).toContain('has not started');
    },
  },
  {
    name: 'the next token would reach 2^53: Ready=False TokenExhausted, no reservation',
    requeueAfterMs: 30005,
    spec: scheduled,
    status: { ...atSlot, currentToken: Number.MAX_SAFE_INTEGER, lastScheduleTime: '2026-06-01T11:59:00Z' },
    actions: ['update-status', 'event Warning TokenExhausted'],
  },
  {
    name: 'the object changed between the read and the reservation (409): decided again from a fresh read',
    requeueAfterMs: 1000,
    spec: scheduled,
    status: { ...healthy, lastScheduleTime: '2026-06-01T11:59:00Z', leaderTerm: 400 },
    setup: (f) => {
      let once = true;
      f.beforeStatusWrite = () => {
        if (!once) return;
        once = false;
        // Someone else reserved this slot meanwhile (a same-term twin).
        const sj = f.sjs.get(KEY)!;
        sj.status = {
          ...sj.status,
          lastScheduleTime: SLOT.toISOString(),
          currentToken: 800,
          activeRun: run({ token: 800 }),
        };
        sj.metadata!.resourceVersion = f.nextRv();
      };
    },
    // Our attempt's Job is created; its record is refused (409, no action); the fresh read finds the
    // other reservation, and our never-released attempt goes so the reserved run gets its Job next.
    actions: [
      `create-job ${scheduledRunName('sj', SLOT)} token=1001 suspended`,
      `delete-job ${scheduledRunName('sj', SLOT)} uid=job-uid-2`,
    ],
    check: (f) => {
      expect(f.jobMap.size).toBe(0);
      expect(f.sj().status?.activeRun).toMatchObject({ token: 800 });
    },
  },
  {
    name: "status.nextScheduleTime: every write carries the next slot this operator acts on; lastRunTime is the run's start",
    requeueAfterMs: 30005,
    spec: scheduled,
    status: { lastScheduleTime: '2026-06-01T11:59:00Z', currentToken: 10, leaderTerm: 400, ...healthy },
    actions: [
      `create-job ${scheduledRunName('sj', SLOT)} token=1001 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', SLOT)}`,
      'event Normal RunStarted',
    ],
    check: (f) =>
      expect(f.sj().status).toMatchObject({
        nextScheduleTime: '2026-06-01T12:01:00.000Z',
        lastRunTime: NOW.toISOString(),
      }),
  },
  {
    name: "jitter: a slot is due only after the object's fixed offset",
    requeueAfterMs: 50833,
    spec: { ...scheduled, jitterSeconds: 3600 },
    status: { lastScheduleTime: '2026-06-01T11:59:00Z', ...healthy },
    actions: [],
    check: (f, r) => {
      // The offset comes from the UID (fixed per object): this one's is above 30 s, so 12:00:00 is not due at 12:00:30.
      expect(f.sj().status!.activeRun).toBeUndefined();
      expect(r.requeueAfterMs).toBeGreaterThan(0);
    },
  },
  {
    name: 'Queue: a slot due while a run is in flight is queued (lastScheduleTime advances, no hold)',
    requeueAfterMs: 2000,
    spec: { ...scheduled, concurrencyPolicy: 'Queue' },
    status: { ...atSlot, lastScheduleTime: '2026-06-01T11:59:00Z' },
    setup: (f) => void inFlight(f, run({ slot: '2026-06-01T11:59:00Z', name: 'sj-prev' }), { podPhase: 'Running' }),
    actions: ['update-status', 'event Normal RunQueued'],
    check: (f) =>
      expect(f.sj().status).toMatchObject({
        queuedSlot: SLOT.toISOString(),
        lastScheduleTime: SLOT.toISOString(),
        nextScheduleTime: SLOT.toISOString(),
      }),
  },
  {
    name: 'Queue: a second slot while one is queued is skipped (at most one waits)',
    requeueAfterMs: 2000,
    spec: { ...scheduled, concurrencyPolicy: 'Queue' },
    status: { ...atSlot, lastScheduleTime: '2026-06-01T11:59:00Z', queuedSlot: '2026-06-01T11:59:00Z' },
    setup: (f) => void inFlight(f, run({ slot: '2026-06-01T11:58:00Z', name: 'sj-prev' }), { podPhase: 'Running' }),
    actions: ['update-status', 'event Warning SlotsSkipped'],
    check: (f) =>
      expect(f.sj().status).toMatchObject({
        queuedSlot: '2026-06-01T11:59:00Z',
        skippedSlots: 1,
        lastScheduleTime: SLOT.toISOString(),
      }),
  },
  {
    name: 'Queue: once nothing is in flight, the queued slot runs',
    requeueAfterMs: 30005,
    spec: { ...scheduled, concurrencyPolicy: 'Queue' },
    status: { ...atSlot, queuedSlot: SLOT.toISOString() },
    actions: [
      `create-job ${scheduledRunName('sj', SLOT)} token=1001 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', SLOT)}`,
      'event Normal RunStarted',
    ],
    check: (f) => {
      expect(f.sj().status!.queuedSlot).toBeUndefined();
      expect(f.sj().status!.activeRun!.slot).toBe(SLOT.toISOString());
    },
  },
  {
    name: "stalled: the run's Pod cannot pull its image: RunStalled condition and Ready=True RunStalled before the deadline (no kstatus Stalled: the object is handled)",
    requeueAfterMs: 0,
    spec: scheduled,
    status: atSlot,
    setup: (f) => {
      imagePullBackOff(f);
    },
    actions: ['update-status', 'event Warning RunStalled'],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.conditions!.find((c) => c.type === 'RunStalled')).toMatchObject({
        status: 'True',
        reason: 'ImagePullBackOff',
      });
      expect(s.conditions!.some((c) => c.type === 'Stalled')).toBe(false);
      expect(s.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'RunStalled' });
      expect(s.activeRun!.stalled).toBeUndefined();
    },
  },
  {
    name: 'stalled: Pods that cannot be created at all (FailedCreate) past podStartDeadlineSeconds: the run is ended',
    requeueAfterMs: 0,
    spec: { ...scheduled, podStartDeadlineSeconds: 30 },
    status: atSlot,
    setup: (f) => {
      const job = inFlight(f, run());
      f.jobMap.get(`ns/${job.metadata!.name}`)!.status = { startTime: new Date(NOW.getTime() - 31_000) };
      f.jobEvents.push({
        metadata: {},
        involvedObject: { uid: job.metadata!.uid! },
        reason: 'FailedCreate',
        message:
          'Error creating: pods "x" is forbidden: error looking up service account ns/missing: serviceaccount "missing" not found',
      });
    },
    actions: ['update-status', 'event Warning RunStalled'],
    check: (f) => expect(f.sj().status!.activeRun!.stalled).toContain('FailedCreate'),
  },
  {
    name: 'stalled: a run marked for ending has its Job deleted; once its Pods are gone it finishes as Stalled',
    requeueAfterMs: 1000,
    spec: scheduled,
    status: atSlot,
    setup: (f) => {
      inFlight(f, run());
      f.sjs.get(KEY)!.status!.activeRun!.stalled = 'FailedCreate: no service account';
    },
    actions: [`delete-job ${scheduledRunName('sj', SLOT)} uid=job-uid-2`],
  },
  {
    name: "stalled: … and with the Job gone and no Pod left, the run finishes Stalled and the schedule goes on (a previous version's Stalled condition is read as RunStalled and removed)",
    requeueAfterMs: 0,
    spec: scheduled,
    status: atSlot,
    setup: (f) => {
      inFlight(f, run());
      f.jobMap.clear();
      f.sjs.get(KEY)!.status!.activeRun!.stalled = 'FailedCreate: no service account';
      f.sjs.get(KEY)!.status!.conditions!.push({
        type: 'Stalled',
        status: 'True',
        reason: 'FailedCreate',
        message: 'x',
        lastTransitionTime: '2026-01-01T00:00:00Z',
      });
    },
    actions: ['update-status', 'event Warning RunFinished'],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.recentRuns![0]!.outcome).toBe('Stalled');
      expect(s.conditions!.some((c) => c.type === 'Stalled' || c.type === 'RunStalled')).toBe(false);
      expect(s.conditions!.find((c) => c.type === 'Ready')!.status).toBe('True');
      expect(s.consecutiveFailures).toBe(1);
    },
  },
  {
    name: 'a spec change: the Job it would create is checked by a server-side dry run; a refusal is Ready=False at once',
    requeueAfterMs: 10005,
    spec: unprepared,
    status: { ...atSlot, observedGeneration: 1 },
    setup: (f) => {
      f.sjs.get(KEY)!.metadata!.generation = 2;
      f.rejectJobs = 'Job.batch "sj-0" is invalid: spec.template.spec.containers[0].image: Required value';
    },
    actions: ['update-status', 'event Warning JobRejected'],
    check: (f) =>
      expect(f.sj().status!.conditions!.find((c) => c.type === 'Ready')).toMatchObject({
        status: 'False',
        reason: 'JobRejected',
        observedGeneration: 2,
      }),
  },
  {
    name: 'a spec change the API server accepts: dry run, then Ready for the new generation',
    requeueAfterMs: 0,
    spec: unprepared,
    status: { ...atSlot, observedGeneration: 1 },
    setup: (f) => void (f.sjs.get(KEY)!.metadata!.generation = 2),
    actions: ['dry-run-job sj-0', 'update-status'],
  },
  {
    name: 'pause on failure: the Nth failed run in a row pauses scheduled runs (condition, Event, Ready=True PausedAfterFailures: kstatus Current)',
    requeueAfterMs: 0,
    spec: { ...scheduled, suspendAfterFailures: 2 },
    status: { ...atSlot, consecutiveFailures: 1 },
    setup: (f) => void inFlight(f, run(), { outcome: 'Failed', podPhase: 'Failed' }),
    actions: ['update-status', 'event Warning RunFinished', 'event Warning PausedAfterFailures'],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.consecutiveFailures).toBe(2);
      expect(s.conditions!.find((c) => c.type === 'Paused')).toMatchObject({
        status: 'True',
        reason: 'TooManyFailures',
      });
      expect(s.conditions!.find((c) => c.type === 'Ready')).toMatchObject({
        status: 'True',
        reason: 'PausedAfterFailures',
      });
      expect(s.nextScheduleTime).toBeUndefined();
    },
  },
  {
    name: 'pause on failure: while paused a due slot does not run',
    requeueAfterMs: 0,
    spec: { ...scheduled, suspendAfterFailures: 2 },
    status: { ...atSlot, lastScheduleTime: '2026-06-01T11:59:00Z', consecutiveFailures: 2 },
    actions: ['update-status', 'event Warning PausedAfterFailures'],
    check: (f) => expect(f.sj().status!.activeRun).toBeUndefined(),
  },
  {
    name: 'pause on failure: a new singleton.dev/resume value resumes',
    requeueAfterMs: 0,
    spec: { ...scheduled, suspendAfterFailures: 2 },
    status: { ...atSlot, consecutiveFailures: 2, lastResumeId: 'old' },
    setup: (f) => void (f.sjs.get(KEY)!.metadata!.annotations = { [Keys.resume]: 'now' }),
    actions: ['update-status', 'event Normal Resumed'],
    check: (f) => {
      const s = f.sj().status!;
      expect(s).toMatchObject({ consecutiveFailures: 0, lastResumeId: 'now' });
      expect(s.conditions!.find((c) => c.type === 'Ready')!.status).toBe('True');
      expect(s.nextScheduleTime).toBeDefined();
    },
  },
  {
    name: 'backfill: a new request is recorded with its range',
    requeueAfterMs: 0,
    spec: scheduled,
    status: atSlot,
    setup: (f) =>
      void (f.sjs.get(KEY)!.metadata!.annotations = { [Keys.backfill]: '2026-06-01T10:00:00Z/2026-06-01T10:03:00Z' }),
    actions: ['update-status', 'event Normal BackfillRequested'],
    check: (f) =>
      expect(f.sj().status!.backfill).toEqual({
        request: '2026-06-01T10:00:00Z/2026-06-01T10:03:00Z',
        from: '2026-06-01T10:00:00.000Z',
        to: '2026-06-01T10:03:00.000Z',
        runs: 0,
      }),
  },
  {
    name: 'backfill: a range that ends in the future is refused with the reason',
    requeueAfterMs: 0,
    spec: scheduled,
    status: atSlot,
    setup: (f) =>
      void (f.sjs.get(KEY)!.metadata!.annotations = { [Keys.backfill]: '2026-06-01T10:00:00Z/2026-06-02T10:00:00Z' }),
    actions: ['update-status', 'event Warning BackfillRefused'],
    check: (f) => expect(f.sj().status!.backfill!.error).toContain('future'),
  },
  {
    name: 'backfill: more than 1000 slots is refused',
    requeueAfterMs: 0,
    spec: { schedule: '* * * * * *' },
    status: atSlot,
    setup: (f) =>
      void (f.sjs.get(KEY)!.metadata!.annotations = { [Keys.backfill]: '2026-06-01T10:00:00Z/2026-06-01T11:00:00Z' }),
    actions: ['update-status', 'event Warning BackfillRefused'],
    check: (f) => expect(f.sj().status!.backfill!.error).toContain('1000'),
  },
  {
    name: 'backfill: with nothing due or in flight, the oldest slot of the range runs as its own run (own name, own token)',
    requeueAfterMs: 30005,
    spec: scheduled,
    status: {
      ...atSlot,
      backfill: { request: 'r', from: '2026-06-01T10:00:00.000Z', to: '2026-06-01T10:03:00.000Z', runs: 0 },
    },
    actions: [
      `create-job ${BACKFILL_RUN} token=1001 suspended`,
      'update-status',
      `unsuspend ${BACKFILL_RUN}`,
      'event Normal RunStarted',
    ],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.activeRun).toMatchObject({ kind: 'Backfill', slot: '2026-06-01T10:01:00.000Z' });
      expect(s.backfill).toMatchObject({ cursor: '2026-06-01T10:01:00.000Z', runs: 1 });
      expect(s.lastScheduleTime).toBe(SLOT.toISOString());
    },
  },
  {
    name: 'backfill: a due scheduled slot goes first',
    requeueAfterMs: 30005,
    spec: scheduled,
    status: {
      ...atSlot,
      lastScheduleTime: '2026-06-01T11:59:00Z',
      backfill: { request: 'r', from: '2026-06-01T10:00:00.000Z', to: '2026-06-01T10:03:00.000Z', runs: 0 },
    },
    actions: [
      `create-job ${scheduledRunName('sj', SLOT)} token=1001 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', SLOT)}`,
      'event Normal RunStarted',
    ],
  },
  {
    name: 'backfill: once every slot has run, the request is completed',
    requeueAfterMs: 0,
    spec: scheduled,
    status: {
      ...atSlot,
      backfill: {
        request: 'r',
        from: '2026-06-01T10:00:00.000Z',
        to: '2026-06-01T10:03:00.000Z',
        cursor: '2026-06-01T10:03:00.000Z',
        runs: 3,
      },
    },
    actions: ['update-status', 'event Normal BackfillCompleted'],
    check: (f) => expect(f.sj().status!.backfill!.completed).toBe(true),
  },
  // Issue 21 item 5: refusals that held a schedule silently.
  {
    name: "a run's Job create refused with 403 (a quota on count/jobs.batch): the run ends Failed with the API server's message, an Event, Ready=False and TemplateAccepted=False",
    requeueAfterMs: 0,
    spec: scheduled,
    status: { ...atSlot, lastScheduleTime: '2026-06-01T11:59:00Z' },
    setup: (f) => refuseRuns(f, quota403),
    actions: [
      `refused-job ${scheduledRunName('sj', SLOT)} (403)`,
      'event Warning JobRejected',
      'update-status',
      'update-status',
      'event Warning RunFinished',
    ],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.activeRun).toBeUndefined();
      expect(s.recentRuns![0]).toMatchObject({ name: scheduledRunName('sj', SLOT), outcome: 'Failed' });
      expect(s.lastScheduleTime).toBe(SLOT.toISOString());
      expect(s.consecutiveFailures).toBe(1);
      expect(conditionOf(f, 'Ready')).toMatchObject({ status: 'False', reason: 'JobRejected' });
      expect(conditionOf(f, 'Ready')!.message).toContain('exceeded quota');
      expect(conditionOf(f, 'TemplateAccepted')).toMatchObject({
        status: 'False',
        reason: 'JobRejected',
        observedGeneration: 1,
      });
      expect(f.eventLog.find((e) => e.reason === 'JobRejected')!.message).toContain('exceeded quota');
    },
  },
  {
    name: "a retry attempt's Job create refused with 400: the run ends Failed instead of being retried forever with every later slot held",
    requeueAfterMs: 0,
    spec: { ...scheduled, jobTemplate: { spec: { ...template().spec, backoffLimit: 2 } } },
    status: {
      ...atSlot,
      currentToken: 700,
      activeRun: run({
        name: scheduledRunName('sj', SLOT, 2),
        token: 700,
        attempt: 2,
        notBefore: new Date(NOW.getTime() - 1).toISOString(),
      }),
    },
    setup: (f) =>
      refuseRuns(f, () =>
        apiError(400, 'admission webhook "jobs.policy.example" denied the request: no jobs after hours', {
          reason: 'BadRequest',
        }),
      ),
    actions: [
      `refused-job ${scheduledRunName('sj', SLOT, 2)} (400)`,
      'event Warning JobRejected',
      'update-status',
      'update-status',
      'event Warning RunFinished',
    ],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.activeRun).toBeUndefined();
      expect(s.recentRuns![0]).toMatchObject({ name: scheduledRunName('sj', SLOT, 2), outcome: 'Failed', attempt: 2 });
      expect(conditionOf(f, 'Ready')).toMatchObject({ status: 'False', reason: 'JobRejected' });
      expect(conditionOf(f, 'Ready')!.message).toContain('no jobs after hours');
    },
  },
  {
    name: "a run's Job create failing with 5xx (a webhook the API server cannot call): reserved without its Job, RunStalled says why, retried",
    requeueAfterMs: 1000,
    spec: scheduled,
    status: { ...atSlot, lastScheduleTime: '2026-06-01T11:59:00Z' },
    setup: (f) => refuseRuns(f, webhook500),
    actions: [`refused-job ${scheduledRunName('sj', SLOT)} (500)`, 'update-status', 'event Warning RunStalled'],
    check: (f, r) => {
      const s = f.sj().status!;
      expect(s.activeRun).toMatchObject({ name: scheduledRunName('sj', SLOT), token: 1001, slot: SLOT.toISOString() });
      expect(s.activeRun!.jobUID).toBeUndefined();
      expect(s.currentToken).toBe(1001);
      expect(conditionOf(f, 'RunStalled')).toMatchObject({ status: 'True', reason: 'JobCreateFailed' });
      expect(conditionOf(f, 'RunStalled')!.message).toContain('failed calling webhook');
      expect(conditionOf(f, 'RunStalled')!.message).toContain('2026-06-01T12:15:30.000Z');
      expect(conditionOf(f, 'Stalled')).toBeUndefined();
      expect(conditionOf(f, 'Ready')).toMatchObject({ status: 'True', reason: 'RunStalled' });
      expect(r.requeueAfterMs).toBeGreaterThan(0);
      expect(r.requeueAfterMs).toBeLessThanOrEqual(30_000);
    },
  },
  {
    name: 'a reservation whose Job create keeps failing with 5xx, within its deadline: retried, the RunStalled condition already says why (no write)',
    requeueAfterMs: 10000,
    spec: { ...scheduled, podStartDeadlineSeconds: 60 },
    status: {
      ...atSlot,
      activeRun: run({ reservedTime: new Date(NOW.getTime() - 20_000).toISOString() }),
      conditions: [
        ...healthy.conditions,
        {
          type: 'RunStalled',
          status: 'True',
          reason: 'JobCreateFailed',
          message: `Run ${scheduledRunName('sj', SLOT)} has not started — its Job could not be created: ${webhook500().message}. The create is retried; the run is ended at 2026-06-01T12:01:10.000Z (podStartDeadlineSeconds) unless its Job is created by then.`,
          lastTransitionTime: '2026-06-01T12:00:10Z',
          observedGeneration: 1,
        },
      ],
    },
    setup: (f) => refuseRuns(f, webhook500),
    actions: [`refused-job ${scheduledRunName('sj', SLOT)} (500)`],
    check: (f, r) => {
      expect(f.sj().status!.activeRun).toBeDefined();
      expect(r.requeueAfterMs).toBe(10_000);
    },
  },
  {
    name: 'a reservation whose Job create still fails with 5xx at its deadline (podStartDeadlineSeconds from the reservation): the run ends as Stalled and later slots go on',
    requeueAfterMs: 0,
    spec: { ...scheduled, podStartDeadlineSeconds: 30 },
    status: { ...atSlot, activeRun: run({ reservedTime: new Date(NOW.getTime() - 31_000).toISOString() }) },
    setup: (f) => refuseRuns(f, webhook500),
    actions: [
      `refused-job ${scheduledRunName('sj', SLOT)} (500)`,
      'event Warning RunStalled',
      'update-status',
      'event Warning RunFinished',
    ],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.activeRun).toBeUndefined();
      expect(s.recentRuns![0]).toMatchObject({ name: scheduledRunName('sj', SLOT), outcome: 'Stalled' });
      expect(s.consecutiveFailures).toBe(1);
      expect(s.conditions!.some((c) => c.type === 'Stalled')).toBe(false);
      expect(f.eventLog.find((e) => e.reason === 'RunStalled')!.message).toContain('failed calling webhook');
    },
  },
  {
    name: "a run's Job create throttled (429, API Priority and Fairness): thrown for the workqueue's backoff, nothing recorded, no alarm",
    requeueAfterMs: null,
    spec: scheduled,
    status: { ...atSlot, lastScheduleTime: '2026-06-01T11:59:00Z' },
    setup: (f) =>
      refuseRuns(f, () => apiError(429, 'Too many requests, please try again later.', { reason: 'TooManyRequests' })),
    actions: [`refused-job ${scheduledRunName('sj', SLOT)} (429)`],
    rejects: (err) => expect((err as { code?: number }).code).toBe(429),
    check: (f) => expect(f.sj().status!.activeRun).toBeUndefined(),
  },
  {
    name: "a reservation's Job create throttled (429) past its deadline: ended as Stalled all the same (bounded whatever the answer)",
    requeueAfterMs: 0,
    spec: { ...scheduled, podStartDeadlineSeconds: 30 },
    status: { ...atSlot, activeRun: run({ reservedTime: new Date(NOW.getTime() - 31_000).toISOString() }) },
    setup: (f) =>
      refuseRuns(f, () => apiError(429, 'Too many requests, please try again later.', { reason: 'TooManyRequests' })),
    actions: [
      `refused-job ${scheduledRunName('sj', SLOT)} (429)`,
      'event Warning RunStalled',
      'update-status',
      'event Warning RunFinished',
    ],
    check: (f) => expect(f.sj().status!.recentRuns![0]).toMatchObject({ outcome: 'Stalled' }),
  },
  {
    name: "a run's Job create in a terminating namespace: not the run's fault — the pass fails with a recognisable error, nothing recorded",
    requeueAfterMs: null,
    spec: scheduled,
    status: { ...atSlot, lastScheduleTime: '2026-06-01T11:59:00Z' },
    setup: (f) => refuseRuns(f, terminating403),
    actions: [`refused-job ${scheduledRunName('sj', SLOT)} (403)`],
    rejects: (err) => expect(isNamespaceTerminating(err)).toBe(true),
    check: (f) => {
      expect(f.sj().status!.activeRun).toBeUndefined();
      expect(f.sj().status!.recentRuns).toBeUndefined();
    },
  },
  {
    name: "a reservation's Job create in a terminating namespace: the reservation is left as it is",
    requeueAfterMs: null,
    spec: scheduled,
    status: { ...atSlot, activeRun: run() },
    setup: (f) => refuseRuns(f, terminating403),
    actions: [`refused-job ${scheduledRunName('sj', SLOT)} (403)`],
    rejects: (err) => expect(isNamespaceTerminating(err)).toBe(true),
    check: (f) => expect(f.sj().status!.activeRun).toEqual(run()),
  },
  {
    name: 'the template dry run in a terminating namespace: not JobRejected — the pass fails with a recognisable error',
    requeueAfterMs: null,
    spec: unprepared,
    status: { ...atSlot },
    setup: (f) => {
      f.sjs.get(KEY)!.metadata!.generation = 2;
      refuseDryRuns(f, terminating403);
    },
    actions: ['refused-dry-run-job sj-0 (403)'],
    rejects: (err) => expect(isNamespaceTerminating(err)).toBe(true),
    check: (f) => expect(conditionOf(f, 'Ready')!.reason).not.toBe('JobRejected'),
  },
  {
    name: 'the template dry run refused with 403 (a quota): JobRejected with the message — and history Jobs beyond the limits are pruned first (a quota full of them must not deadlock)',
    requeueAfterMs: 10005,
    spec: { ...unprepared, successfulJobsHistoryLimit: 1 },
    status: { ...atSlot, currentToken: 700 },
    setup: (f) => {
      f.sjs.get(KEY)!.metadata!.generation = 2;
      addRunJob(f, run({ name: 'sj-a', token: 610 }), { outcome: 'Complete' });
      addRunJob(f, run({ name: 'sj-b', token: 620 }), { outcome: 'Complete' });
      refuseDryRuns(f, quota403);
    },
    actions: [
      'delete-job sj-a uid=job-uid-2',
      'refused-dry-run-job sj-0 (403)',
      'update-status',
      'event Warning JobRejected',
    ],
    check: (f) => {
      expect(conditionOf(f, 'Ready')).toMatchObject({ status: 'False', reason: 'JobRejected', observedGeneration: 2 });
      expect(conditionOf(f, 'Ready')!.message).toContain('exceeded quota');
      expect(conditionOf(f, 'TemplateAccepted')).toMatchObject({
        status: 'False',
        reason: 'JobRejected',
        observedGeneration: 2,
      });
    },
  },
  {
    name: 'a template refused earlier, waiting for its re-probe: history Jobs beyond the limits are still pruned',
    requeueAfterMs: 5005,
    spec: { ...scheduled, successfulJobsHistoryLimit: 1 },
    status: {
      ...atSlot,
      currentToken: 700,
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'JobRejected',
          message: 'refused: exceeded quota',
          lastTransitionTime: '2026-06-01T12:00:25Z',
          observedGeneration: 1,
        },
        {
          type: 'TemplateAccepted',
          status: 'False',
          reason: 'JobRejected',
          message: 'refused: exceeded quota',
          lastTransitionTime: '2026-06-01T12:00:25Z',
          observedGeneration: 1,
        },
      ],
    },
    setup: (f) => {
      addRunJob(f, run({ name: 'sj-a', token: 610 }), { outcome: 'Complete' });
      addRunJob(f, run({ name: 'sj-b', token: 620 }), { outcome: 'Complete' });
      refuseDryRuns(f, quota403);
    },
    actions: ['delete-job sj-a uid=job-uid-2'],
    check: (f, r) => {
      expect(f.sj().status!.activeRun).toBeUndefined();
      // Re-probed 10 s after the refusal (then with backoff), not only on the next spec change.
      expect(r.requeueAfterMs).toBe(5_005);
    },
  },
  {
    name: 'a 422 with hundreds of field errors: the condition messages are cut to fit the CRD (maxLength 32768), so the status write itself succeeds',
    requeueAfterMs: 0,
    spec: scheduled,
    status: { ...atSlot, lastScheduleTime: '2026-06-01T11:59:00Z' },
    setup: (f) =>
      refuseRuns(f, (job) =>
        apiError(
          422,
          `Job.batch "${job.metadata?.name}" is invalid: [${Array.from({ length: 600 }, (_, i) => `spec.template.spec.containers[${i}].image: Required value: a container image is required for every container of the template`).join(', ')}]`,
          { reason: 'Invalid' },
        ),
      ),
    actions: [
      `refused-job ${scheduledRunName('sj', SLOT)} (422)`,
      'event Warning JobRejected',
      'update-status',
      'update-status',
      'event Warning RunFinished',
    ],
    check: (f) => {
      const ready = conditionOf(f, 'Ready')!;
      expect(ready).toMatchObject({ status: 'False', reason: 'JobRejected' });
      expect(ready.message.length).toBeLessThanOrEqual(32768);
      expect(ready.message).toContain('containers[0].image: Required value');
      expect(ready.message).toMatch(/cut/);
      expect(f.sj().status!.recentRuns![0]!.outcome).toBe('Failed');
    },
  },
  {
    name: 'the template dry run failing with 5xx: nothing is held and nothing is rejected (it is only a check; tried again later)',
    requeueAfterMs: 0,
    spec: unprepared,
    status: { ...atSlot },
    setup: (f) => {
      f.sjs.get(KEY)!.metadata!.generation = 2;
      refuseDryRuns(f, webhook500);
    },
    actions: ['refused-dry-run-job sj-0 (500)', 'update-status'],
    check: (f) => {
      expect(conditionOf(f, 'Ready')).toMatchObject({ status: 'True', observedGeneration: 2 });
      // Not recorded as checked: asked again later (backoff), not JobRejected.
      expect(conditionOf(f, 'TemplateAccepted')).toMatchObject({ status: 'True', observedGeneration: 1 });
    },
  },
  {
    name: 'a dry run refused because a webhook with side effects does not support dry runs: says nothing about the Job, not JobRejected',
    requeueAfterMs: 0,
    spec: unprepared,
    status: { ...atSlot },
    setup: (f) => {
      f.sjs.get(KEY)!.metadata!.generation = 2;
      refuseDryRuns(f, () =>
        apiError(400, 'admission webhook "audit.example" does not support dry run', { reason: 'BadRequest' }),
      );
    },
    actions: ['refused-dry-run-job sj-0 (400)', 'update-status'],
    check: (f) => {
      expect(conditionOf(f, 'Ready')).toMatchObject({ status: 'True', observedGeneration: 2 });
      expect(conditionOf(f, 'TemplateAccepted')).toMatchObject({
        status: 'True',
        reason: 'DryRunUnsupported',
        observedGeneration: 2,
      });
    },
  },
  // Issue 21 item 6: Queue, and the dry run on every spec change.
  {
    name: 'Queue: a queued slot once the object was suspended meanwhile: skipped and counted, not started',
    requeueAfterMs: 0,
    spec: { ...scheduled, concurrencyPolicy: 'Queue', suspend: true },
    status: { ...atSlot, queuedSlot: SLOT.toISOString() },
    actions: ['update-status', 'event Warning SlotsSkipped'],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.activeRun).toBeUndefined();
      expect(s.queuedSlot).toBeUndefined();
      expect(s).toMatchObject({ skippedSlots: 1, lastSkippedSlot: SLOT.toISOString() });
      expect(f.eventLog.find((e) => e.reason === 'SlotsSkipped')!.message).toContain('suspended');
    },
  },
  {
    name: 'Queue: a queued slot once scheduled runs were paused after failures meanwhile: skipped and counted, not started',
    requeueAfterMs: 0,
    spec: { ...scheduled, concurrencyPolicy: 'Queue', suspendAfterFailures: 2 },
    status: { ...atSlot, queuedSlot: SLOT.toISOString(), consecutiveFailures: 2, skippedSlots: 4 },
    actions: ['update-status', 'event Warning SlotsSkipped'],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.activeRun).toBeUndefined();
      expect(s.queuedSlot).toBeUndefined();
      expect(s.skippedSlots).toBe(5);
      expect(f.eventLog.find((e) => e.reason === 'SlotsSkipped')!.message).toContain('paused');
    },
  },
  {
    name: 'Queue: a queued slot past startingDeadlineSeconds: skipped and counted, not started',
    requeueAfterMs: 0,
    spec: { ...scheduled, concurrencyPolicy: 'Queue', startingDeadlineSeconds: 60 },
    status: { ...atSlot, queuedSlot: '2026-06-01T11:59:00Z' },
    actions: ['update-status', 'event Warning SlotsSkipped'],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.activeRun).toBeUndefined();
      expect(s.queuedSlot).toBeUndefined();
      expect(s).toMatchObject({
        skippedSlots: 1,
        lastSkippedSlot: '2026-06-01T11:59:00.000Z',
        lastScheduleTime: SLOT.toISOString(),
      });
      expect(f.eventLog.find((e) => e.reason === 'SlotsSkipped')!.message).toContain('startingDeadlineSeconds');
    },
  },
  {
    name: 'Queue: a queued slot still within startingDeadlineSeconds runs',
    requeueAfterMs: 30005,
    spec: { ...scheduled, concurrencyPolicy: 'Queue', startingDeadlineSeconds: 120 },
    status: { ...atSlot, queuedSlot: '2026-06-01T11:59:00Z' },
    actions: [
      `create-job ${scheduledRunName('sj', new Date('2026-06-01T11:59:00Z'))} token=1001 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', new Date('2026-06-01T11:59:00Z'))}`,
      'event Normal RunStarted',
    ],
  },
  {
    name: 'a spec change made while a run was in flight (observedGeneration stamped by its writes): the dry run still happens, and is recorded',
    requeueAfterMs: 0,
    spec: scheduled,
    status: { ...atSlot, observedGeneration: 2 },
    setup: (f) => {
      f.sjs.get(KEY)!.metadata!.generation = 2;
      inFlight(f, run(), { podPhase: 'Running' });
    },
    actions: ['dry-run-job sj-0', 'update-status'],
    check: (f) => {
      expect(conditionOf(f, 'TemplateAccepted')).toMatchObject({ status: 'True', observedGeneration: 2 });
      expect(f.sj().status!.activeRun).toBeDefined();
    },
  },
  {
    name: 'a spec change made while a run is in flight that the API server refuses: Ready=False JobRejected at once, the run goes on',
    requeueAfterMs: 10005,
    spec: scheduled,
    status: { ...atSlot, observedGeneration: 2 },
    setup: (f) => {
      f.sjs.get(KEY)!.metadata!.generation = 2;
      inFlight(f, run(), { podPhase: 'Running' });
      refuseDryRuns(f, (job) =>
        apiError(
          422,
          `Job.batch "${job.metadata?.name}" is invalid: spec.template.spec.containers[0].image: Required value`,
        ),
      );
    },
    actions: ['refused-dry-run-job sj-0 (422)', 'update-status', 'event Warning JobRejected'],
    check: (f) => {
      expect(conditionOf(f, 'Ready')).toMatchObject({ status: 'False', reason: 'JobRejected', observedGeneration: 2 });
      expect(f.sj().status!.activeRun!.jobUID).toBeDefined();
    },
  },
  {
    name: 'a spec change made during a run that has ended since: the dry run happens once nothing is in flight',
    requeueAfterMs: 0,
    spec: unprepared,
    status: { ...atSlot, observedGeneration: 2, ...finishedBefore },
    setup: (f) => void (f.sjs.get(KEY)!.metadata!.generation = 2),
    actions: ['dry-run-job sj-0', 'update-status'],
    check: (f) => expect(conditionOf(f, 'TemplateAccepted')).toMatchObject({ status: 'True', observedGeneration: 2 }),
  },
  {
    name: "a run's own Job created for a new generation: the template counts as accepted for it (no dry run needed after)",
    requeueAfterMs: 30005,
    spec: scheduled,
    status: { lastScheduleTime: '2026-06-01T11:59:00Z', currentToken: 10, leaderTerm: 400, ...healthy },
    setup: (f) => void (f.sjs.get(KEY)!.metadata!.generation = 2),
    actions: [
      `create-job ${scheduledRunName('sj', SLOT)} token=1001 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', SLOT)}`,
      'event Normal RunStarted',
    ],
    check: (f) =>
      expect(conditionOf(f, 'TemplateAccepted')).toMatchObject({
        status: 'True',
        reason: 'JobCreated',
        observedGeneration: 2,
      }),
  },
  // Issue 21 item 1b: a Job released once is never released again.
  {
    name: "a run's Job suspended again by someone else after its release, its Pod still terminating: not released again, the attempt waits for the Pod",
    requeueAfterMs: 1000,
    spec: scheduled,
    status: { ...atSlot },
    setup: (f) => {
      const job = inFlight(f, run(), { podPhase: 'Running' });
      const live = f.jobMap.get(`ns/${job.metadata!.name}`)!;
      live.spec!.suspend = true;
      live.metadata!.annotations![Keys.released] = SLOT.toISOString();
      f.pods[0]!.metadata!.deletionTimestamp = new Date();
    },
    actions: ['event Warning RunJobSuspended'],
    check: (f, r) => {
      expect(f.sj().status?.activeRun?.name).toBe(run().name);
      expect(r.requeueAfterMs).toBeGreaterThan(0);
    },
  },
  {
    name: "a run's Job suspended again after its release, its Pods gone, retry budget left: the attempt ends Failed, the next attempt gets a new token, the suspended Job goes",
    requeueAfterMs: 10005,
    spec: { ...scheduled, jobTemplate: { spec: { ...template().spec, backoffLimit: 1 } } },
    status: { ...atSlot },
    setup: (f) => {
      const job = inFlight(f, run());
      const live = f.jobMap.get(`ns/${job.metadata!.name}`)!;
      live.spec!.suspend = true;
      live.metadata!.annotations![Keys.released] = SLOT.toISOString();
    },
    actions: [
      'event Warning RunJobSuspended',
      `create-job ${scheduledRunName('sj', SLOT, 2)} token=1001 suspended`,
      'update-status',
      'event Warning RunRetrying',
      `delete-job ${scheduledRunName('sj', SLOT)} uid=job-uid-2`,
    ],
    check: (f) => {
      const s = f.sj().status!;
      expect(s.recentRuns?.[0]).toMatchObject({ name: run().name, outcome: 'Failed' });
      expect(s.activeRun?.attempt).toBe(2);
      expect(s.activeRun!.token).toBeGreaterThan(run().token);
      expect(f.jobMap.has(`ns/${run().name}`)).toBe(false);
    },
  },
  // Issue 21 item 3: a terminal condition proves the Pods terminal only from a delaying Job controller.
  {
    name: 'Kubernetes ≥ 1.31 API server, but a Job finished without the interim condition (an older kube-controller-manager): a live Pod list decides',
    requeueAfterMs: 0,
    finishAfterPods: true,
    spec: scheduled,
    status: { ...atSlot },
    setup: (f) => {
      const job = inFlight(f, run());
      f.jobMap.get(`ns/${job.metadata!.name}`)!.status = { conditions: [{ type: 'Complete', status: 'True' }] };
    },
    actions: ['update-status', 'event Normal RunFinished'],
    check: (f) => expect(f.podLists).toBe(1),
  },
  // Issue 21 item 2: a deleted predecessor's released Job of this namespace/name, orphaned, with no Pod yet.
  {
    name: "a deleted predecessor's orphaned, released Job with no Pod yet (FailedCreate): deleted, and the due slot waits until it is gone",
    requeueAfterMs: 1000,
    finishAfterPods: true,
    spec: scheduled,
    status: {
      lastScheduleTime: '2026-06-01T11:59:00Z',
      currentToken: 10,
      leaderTerm: 400,
      ...healthy,
      predecessorPodsChecked: true,
    },
    setup: (f) => {
      const orphan = buildJob(f.sj(), run({ name: 'sj-1780000000', token: 5 }), { suspended: false });
      orphan.metadata!.ownerReferences = [];
      orphan.metadata!.uid = 'orphan-uid';
      orphan.metadata!.labels![Keys.ownerUid] = 'uid-of-a-deleted-predecessor';
      orphan.status = { startTime: new Date('2026-06-01T10:00:00Z') };
      f.addJob(orphan);
    },
    actions: ['delete-job sj-1780000000 uid=orphan-uid', 'event Warning PredecessorJobDeleted'],
    check: (f, r) => {
      expect(f.sj().status?.activeRun).toBeUndefined();
      expect(r.requeueAfterMs).toBeGreaterThan(0);
    },
  },
  {
    name: "once the predecessor's Job is gone, the start lists Pods live (its Pods may outlive it) before reserving",
    requeueAfterMs: 30005,
    finishAfterPods: true,
    spec: scheduled,
    status: {
      lastScheduleTime: '2026-06-01T11:59:00Z',
      currentToken: 10,
      leaderTerm: 400,
      ...healthy,
      predecessorPodsChecked: true,
    },
    // A Job of its name deleted while it might still run Pods.
    setup: (f) => f.lostJobs.deleted(buildJob(f.sj(), run({ name: 'sj-earlier' }))),
    actions: [
      `create-job ${scheduledRunName('sj', SLOT)} token=1001 suspended`,
      'update-status',
      `unsuspend ${scheduledRunName('sj', SLOT)}`,
      'event Normal RunStarted',
    ],
    check: (f) => expect(f.podLists).toBe(1),
  },
  {
    name: "issue 21 item 7: another installation's live Lease and a slot due: stand by, saying it is taken over if that one leaves due work unwritten (claims.test.ts)",
    requeueAfterMs: 1000,
    lease: true,
    spec: scheduled,
    status: { ...atSlot, leaderTerm: 900, leaderLease: 'other/op', lastScheduleTime: '2026-06-01T11:59:00Z' },
    actions: ['update-status', 'event Warning ClaimedByAnotherInstallation'],
    check: (f) =>
      expect(conditionOf(f, 'Contended')?.message).toContain(
        'unless that one leaves work due on it unwritten for 90 s',
      ),
  },
  {
    name: "issue 21 item 7: another installation's live Lease, its run's Job finished: stand by until the bound (no takeover on the first look)",
    requeueAfterMs: 1000,
    lease: true,
    spec: scheduled,
    status: { ...atSlot, leaderTerm: 900, leaderLease: 'other/op' },
    setup: (f) => void inFlight(f, run({ term: 900 }), { outcome: 'Complete', podPhase: 'Succeeded' }),
    actions: ['update-status', 'event Warning ClaimedByAnotherInstallation'],
    check: (f) => expect(f.sj().status).toMatchObject({ leaderLease: 'other/op', leaderTerm: 900, contender: MINE }),
  },
];

function deps(f: FakeCluster, c: Case): ReconcilerDeps {
  const ac = new AbortController();
  return {
    status: f.status,
    jobs: f.jobs,
    pods: f.podControl,
    events: f.events,
    leadership: {
      identity: 'me',
      term: c.term ?? TERM,
      signal: ac.signal,
      assertValid: () => undefined,
      ...(c.latestRevision ? { latestRevision: () => c.latestRevision! } : {}),
    },
    logger: pino({ level: 'silent' }),
    metrics: controllerMetrics(new Registry()),
    now: () => NOW,
    retryBackoffMs: 10_000,
    jobsFinishAfterPods: c.finishAfterPods ?? false,
    ...(c.lease
      ? { lease: { namespace: 'ops', name: 'singleton-operator', durationMs: 15_000 }, leases: f.leaseLiveness }
      : {}),
  };
}

describe('reconcile: one pass, expected actions', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const f = new FakeCluster();
    f.addSingletonJob(makeSJ(c));
    if (c.status) f.sjs.get(KEY)!.status = structuredClone(c.status);
    c.setup?.(f);
    f.actions.length = 0;
    const pass = new Reconciler(deps(f, c)).reconcile(KEY);
    const result = c.rejects
      ? await pass.then(
          () => expect('the pass').toBe('rejected'),
          (err: unknown) => (c.rejects!(err), {}),
        )
      : await pass;
    // What the pass did to the cluster, in order; what it said about it (Events are queued and cosmetic), in any order.
    const isEvent = (a: string) => a.startsWith('event ');
    expect(f.actions.filter((a) => !isEvent(a))).toEqual(c.actions.filter((a) => !isEvent(a)));
    expect(f.actions.filter(isEvent).sort()).toEqual(c.actions.filter(isEvent).sort());
    expect(c.requeueAfterMs).toBeDefined();
    expect((result as Result).requeueAfterMs ?? null).toBe(c.requeueAfterMs);
    c.check?.(f, result as Result);
  });
});

describe('reconcile: a refused template is asked again with backoff (issue 21 item 5)', () => {
  it('a dry run refused by a quota is re-probed after 10 s, then 20 s, …; once accepted (no spec change) Ready=True and the due slot runs', async () => {
    const c: Case = { name: 're-probe', spec: unprepared, status: { ...atSlot }, actions: [] };
    const f = new FakeCluster();
    f.addSingletonJob(makeSJ(c));
    f.sjs.get(KEY)!.status = structuredClone(c.status);
    f.sjs.get(KEY)!.metadata!.generation = 2;
    refuseDryRuns(f, quota403);
    let now = NOW;
    const reconciler = new Reconciler({ ...deps(f, c), now: () => now });
    const pass = async (advanceMs: number) => {
      now = new Date(now.getTime() + advanceMs);
      f.actions.length = 0;
      return reconciler.reconcile(KEY);
    };

    expect(await pass(0)).toEqual({ requeueAfterMs: 10_005 });
    expect(f.actions).toEqual(['refused-dry-run-job sj-0 (403)', 'update-status', 'event Warning JobRejected']);
    expect(conditionOf(f, 'Ready')).toMatchObject({ status: 'False', reason: 'JobRejected' });

    expect(await pass(5_000)).toEqual({ requeueAfterMs: 5_005 });
    expect(f.actions).toEqual([]);

    // Still refused: asked again, nothing rewritten, the next probe twice as far.
    expect(await pass(5_000)).toEqual({ requeueAfterMs: 20_005 });
    expect(f.actions).toEqual(['refused-dry-run-job sj-0 (403)']);

    // The quota freed up: accepted without a spec change, and the slot due meanwhile (12:01) runs.
    f.refuseJobCreate = undefined;
    expect(await pass(20_000)).toEqual({ requeueAfterMs: 0 });
    expect(f.actions).toEqual(['dry-run-job sj-0', 'update-status', 'event Normal JobAccepted']);
    expect(conditionOf(f, 'Ready')).toMatchObject({ status: 'True', observedGeneration: 2 });
    expect(conditionOf(f, 'TemplateAccepted')).toMatchObject({ status: 'True', observedGeneration: 2 });
    await pass(0);
    const slot = scheduledRunName('sj', new Date('2026-06-01T12:01:00Z'));
    expect(f.actions).toEqual([
      `create-job ${slot} token=1003 suspended`,
      'update-status',
      `unsuspend ${slot}`,
      'event Normal RunStarted',
    ]);
  });

  it("a run's Job create refused (403): the next slot is not held for good — re-probed, and it runs once the API server accepts the Job", async () => {
    const c: Case = {
      name: 'refused run',
      spec: scheduled,
      status: { ...atSlot, lastScheduleTime: '2026-06-01T11:59:00Z' },
      actions: [],
    };
    const f = new FakeCluster();
    f.addSingletonJob(makeSJ(c));
    f.sjs.get(KEY)!.status = structuredClone(c.status);
    refuseRuns(f, quota403);
    let now = NOW;
    const reconciler = new Reconciler({ ...deps(f, c), now: () => now });
    await reconciler.reconcile(KEY);
    expect(f.sj().status!.recentRuns![0]).toMatchObject({ outcome: 'Failed' });
    f.refuseJobCreate = undefined;
    now = new Date('2026-06-01T12:01:00.500Z');
    f.actions.length = 0;
    await reconciler.reconcile(KEY); // the re-probe (due 10 s after the refusal)
    await reconciler.reconcile(KEY);
    const slot = scheduledRunName('sj', new Date('2026-06-01T12:01:00Z'));
    expect(f.actions).toEqual([
      'dry-run-job sj-0',
      'update-status',
      'event Normal JobAccepted',
      `create-job ${slot} token=1004 suspended`,
      'update-status',
      `unsuspend ${slot}`,
      'event Normal RunStarted',
    ]);
  });
});

describe('reconcile: a takeover is recorded once', () => {
  it('a run held by Forbid after a takeover: TakenOver once, and later passes act as the owner', async () => {
    const c: Case = {
      name: 'takeover held',
      lease: true,
      latestRevision: 950,
      spec: scheduled,
      status: { ...atSlot, leaderTerm: 900, leaderLease: 'other/op', lastScheduleTime: '2026-06-01T11:59:00Z' },
      actions: [],
    };
    const f = new FakeCluster();
    f.addSingletonJob(makeSJ(c));
    f.sjs.get(KEY)!.status = structuredClone(c.status);
    inFlight(f, run({ slot: '2026-06-01T11:59:00Z', name: 'sj-prev' }), { podPhase: 'Running' });
    f.leases.set('other/op', { alive: false, why: 'Lease other/op does not exist', recheckMs: 0 });
    f.actions.length = 0;
    const reconciler = new Reconciler(deps(f, c));
    for (let pass = 0; pass < 3; pass++) await reconciler.reconcile(KEY);
    expect(f.actions.filter((a) => a === 'event Normal TakenOver')).toHaveLength(1);
    expect(f.actions.filter((a) => a === 'event Normal RunHeld')).toHaveLength(1);
    expect(f.sj().status).toMatchObject({ leaderTerm: 950, leaderLease: MINE });
  });
});
