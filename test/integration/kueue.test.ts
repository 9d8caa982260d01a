// Kueue (issue 25 item 1), against the real Kueue: its controller manager
// built from sigs.k8s.io/kueue (test/tools/kueue), its CRDs and webhooks from
// the module's config/, its webhooks called by the API server on a loopback
// port (test/controlplane/kueue.ts). The operator runs as installed with
// `kueue.enabled=true` (the chart's RBAC) and is the AdmissionCheck
// controller singleton.dev/fenced-run: Kueue admits a run's Workload only
// once the operator has recorded the run.
//
// Twice, with a fresh Kueue each time: with the template's
// kueue.x-k8s.io/queue-name label, and with manageJobsWithoutQueueName (the
// namespace's LocalQueue "default", which Kueue's webhook files unlabelled Jobs
// under). Each proves (a) no Job of the operator gets a Pod before its run is
// recorded — an attempt held between its create and its record, a deposed
// leader's late create; (b) runs queue for quota, say so on the SingletonJob
// (AwaitingAdmission, not RunStalled or Stalled), and start once admitted;
// (c) at most one Pod of a SingletonJob at a time and tokens in run order.
// And a ClusterQueue without the check is refused with a message naming it.
// As installed: the chart's admission policies (on by default) are applied,
// bound to the namespaces Kueue manages here, and Kueue runs as its own
// ServiceAccount (KUEUE_USER, the chart's kueue.serviceAccount), so every write
// Kueue makes to a run's Job passes the same policies as on a cluster.
import * as k8s from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { Keys } from '../../src/api/v1alpha1/singletonjob.ts';
import type { SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';
import { buildJob } from '../../src/controller/rules/jobs.ts';
import {
  ADMISSION_CHECK_CONTROLLER,
  KUEUE_GROUP,
  KUEUE_VERSION,
  QUEUE_LABEL,
  type Workload,
} from '../../src/controller/cluster/kueue.ts';
import { execFileSync } from 'node:child_process';
import YAML from 'yaml';
import {
  KUEUE_NAMESPACE_LABEL,
  KUEUE_USER,
  resolveKueue,
  startKueue,
  type RunningKueue,
} from '../controlplane/kueue.ts';
import { installedKubeConfig, releaseFor, renderChart } from '../support/installed.ts';
import { eventually, testCluster } from '../support/cluster.ts';
import {
  Api,
  conditionOf,
  controllerTestEnv,
  fakeLeadership,
  podOverlapMonitor,
  requestRun,
  singletonJob,
  type StartOptions,
} from '../support/singletonjobs.ts';

const env = controllerTestEnv();
const { kc } = env;
const bins = process.env.SINGLETON_TEST_CLUSTER_DIR
  ? resolveKueue()
  : { missing: 'no local control plane (USE_EXISTING_CLUSTER)' };
if ('missing' in bins) console.warn(`Kueue tests skipped: ${bins.missing}`);
const describeKueue = 'missing' in bins ? describe.skip : describe;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const asInstalled: StartOptions = { chartValues: ['kueue.enabled=true'] };
/** The release whose admission policies this file applies (cluster-scoped names). */
const policyRelease = `so-kueue-vap-${Date.now().toString(36)}`;

/**
 * The chart's admission policies for the operator's ServiceAccount as the
 * harness runs it, with kueue.enabled, bound (instead of to watchNamespaces)
 * to the namespaces Kueue manages in this file, where every test's operator
 * runs; applied, and in effect once a person's unsuspend is refused.
 */
async function applyAdmissionPolicies(): Promise<void> {
  const policies = renderChart<{ kind: string; spec: { matchResources?: { namespaceSelector?: unknown } } }>(
    policyRelease,
    ['kueue.enabled=true', `kueue.serviceAccount=${KUEUE_USER}`, `serviceAccount.name=${releaseFor('namespaced')}`],
  ).filter((m) => m.kind.startsWith('ValidatingAdmissionPolicy'));
  expect(policies).toHaveLength(6);
  for (const b of policies)
    if (b.kind === 'ValidatingAdmissionPolicyBinding')
      b.spec.matchResources = { namespaceSelector: { matchLabels: { [KUEUE_NAMESPACE_LABEL]: 'true' } } };
  execFileSync('kubectl', ['--kubeconfig', testCluster().kubeconfig, 'apply', '-f', '-'], {
    input: policies.map((m) => YAML.stringify(m)).join('---\n'),
    encoding: 'utf8',
  });
  // In effect: a probe namespace of Kueue's where cluster-admin's dry-run create of a run-labelled Job is refused.
  const { name: ns, api } = await env.namespace('kueue-vap-probe');
  await api.core.patchNamespace(
    { name: ns, body: { metadata: { labels: { [KUEUE_NAMESPACE_LABEL]: 'true' } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  const owner = (await api.create(singletonJob('probe', { suspend: true }))) as SingletonJob;
  const probe = buildJob(owner, {
    name: 'probe',
    token: 1,
    term: 1,
    kind: 'Manual',
    reservedTime: new Date().toISOString(),
  });
  await eventually('the admission policies in effect', async () =>
    api.batch.createNamespacedJob({ namespace: ns, body: probe, dryRun: 'All' }).then(
      () => false,
      (err: { code?: number }) => err.code === 403,
    ),
  );
}

function deleteAdmissionPolicies(): void {
  execFileSync(
    'kubectl',
    [
      '--kubeconfig',
      testCluster().kubeconfig,
      'delete',
      'validatingadmissionpolicybindings,validatingadmissionpolicies',
      '-l',
      `app.kubernetes.io/instance=${policyRelease}`,
      '--ignore-not-found',
    ],
    { encoding: 'utf8' },
  );
}

const kueueObject = (plural: string, body: object, namespace?: string) =>
  namespace
    ? custom.createNamespacedCustomObject({ group: KUEUE_GROUP, version: KUEUE_VERSION, plural, namespace, body })
    : custom.createClusterCustomObject({ group: KUEUE_GROUP, version: KUEUE_VERSION, plural, body });

/**
 * A namespace Kueue manages, a ClusterQueue with `cpu` of quota for it
 * (listing the operator's AdmissionCheck unless `fenced` is false) and a
 * LocalQueue `queue` pointing at it.
 */
async function queueFor(
  prefix: string,
  opts: { queue: string; cpu: string; fenced?: boolean },
): Promise<{ ns: string; api: Api; clusterQueue: string; check: string }> {
  const { name: ns, api } = await env.namespace(prefix);
  await api.core.patchNamespace(
    { name: ns, body: { metadata: { labels: { [KUEUE_NAMESPACE_LABEL]: 'true' } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  const id = `${prefix}-${randomBytes(3).toString('hex')}`;
  await kueueObject('resourceflavors', {
    apiVersion: `${KUEUE_GROUP}/${KUEUE_VERSION}`,
    kind: 'ResourceFlavor',
    metadata: { name: id },
  });
  await kueueObject('admissionchecks', {
    apiVersion: `${KUEUE_GROUP}/${KUEUE_VERSION}`,
    kind: 'AdmissionCheck',
    metadata: { name: id },
    spec: { controllerName: ADMISSION_CHECK_CONTROLLER },
  });
  await kueueObject('clusterqueues', {
    apiVersion: `${KUEUE_GROUP}/${KUEUE_VERSION}`,
    kind: 'ClusterQueue',
    metadata: { name: id },
    spec: {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
      ...(opts.fenced === false ? {} : { admissionChecksStrategy: { admissionChecks: [{ name: id }] } }),
      resourceGroups: [
        { coveredResources: ['cpu'], flavors: [{ name: id, resources: [{ name: 'cpu', nominalQuota: opts.cpu }] }] },
      ],
    },
  });
  await kueueObject(
    'localqueues',
    {
      apiVersion: `${KUEUE_GROUP}/${KUEUE_VERSION}`,
      kind: 'LocalQueue',
      metadata: { name: opts.queue, namespace: ns },
      spec: { clusterQueue: id },
    },
    ns,
  );
  return { ns, api, clusterQueue: id, check: id };
}

/** A SingletonJob whose Pod asks for 1 CPU and "runs" `seconds` (kwok), with the queue label unless `queue` is undefined. */
function queued(
  name: string,
  queue: string | undefined,
  seconds: number,
  spec: Record<string, unknown> = {},
): SingletonJob {
  const sj = singletonJob(name, spec, { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': `${seconds}s` } });
  if (queue) sj.spec.jobTemplate.metadata = { labels: { [QUEUE_LABEL]: queue } };
  sj.spec.jobTemplate.spec!.template.spec!.containers[0]!.resources = { requests: { cpu: '1' } };
  return sj;
}

async function workloadOf(ns: string, job: k8s.V1Job): Promise<Workload | undefined> {
  const list = (await custom.listNamespacedCustomObject({
    group: KUEUE_GROUP,
    version: KUEUE_VERSION,
    plural: 'workloads',
    namespace: ns,
    labelSelector: `kueue.x-k8s.io/job-uid=${job.metadata!.uid}`,
  })) as {
    items: Workload[];
  };
  return list.items[0];
}

const condition = (wl: Workload | undefined, type: string) => wl?.status?.conditions?.find((c) => c.type === type);

/**
 * Watches the namespace's Pods; for each Pod of a run, reads the SingletonJob
 * as soon as the Pod is seen and notes whether its token was recorded (the
 * active run, or a finished one, with the Pod's Job UID). Tokens in order of
 * the Pods' appearance.
 */
async function podRecordWatch(
  api: Api,
): Promise<{ unrecorded: string[]; tokens: (name: string) => number[]; stop(): void }> {
  const unrecorded: string[] = [];
  const tokens = new Map<string, number[]>();
  const seen = new Set<string>();
  const watch = new k8s.Watch(kc);
  const ac = await watch.watch(
    `/api/v1/namespaces/${api.ns}/pods`,
    {},
    (_type: string, pod: k8s.V1Pod) => {
      const owner = pod.metadata?.annotations?.[Keys.singletonJob];
      const uid = pod.metadata!.uid!;
      if (!owner || seen.has(uid)) return;
      seen.add(uid);
      const token = Number(pod.metadata?.annotations?.[Keys.token]);
      tokens.set(owner, [...(tokens.get(owner) ?? []), token]);
      void api.get(owner).then((sj) => {
        const runs = [sj.status?.activeRun, ...(sj.status?.recentRuns ?? [])];
        const jobUID = pod.metadata?.labels?.['batch.kubernetes.io/controller-uid'];
        const active = sj.status?.activeRun;
        const recorded =
          (active?.token === token && active.jobUID === jobUID) ||
          runs.some((r) => r && r.token === token && r !== active);
        if (!recorded) unrecorded.push(`${pod.metadata?.name} (token ${token}, job ${jobUID})`);
      });
    },
    () => undefined,
  );
  return { unrecorded, tokens: (name) => tokens.get(name) ?? [], stop: () => ac.abort() };
}

/** Every Workload of the namespace, by its Job's UID: whether Kueue ever reserved quota for it, or admitted it. */
async function workloadWatch(
  ns: string,
): Promise<{ of(jobUID: string): { seen: boolean; quotaReserved: boolean; admitted: boolean }; stop(): void }> {
  const state = new Map<string, { seen: boolean; quotaReserved: boolean; admitted: boolean }>();
  const watch = new k8s.Watch(kc);
  const ac = await watch.watch(
    `/apis/${KUEUE_GROUP}/${KUEUE_VERSION}/namespaces/${ns}/workloads`,
    {},
    (_type: string, wl: Workload & { metadata: { labels?: Record<string, string> } }) => {
      const uid = wl.metadata.labels?.['kueue.x-k8s.io/job-uid'];
      if (!uid) return;
      const s = state.get(uid) ?? { seen: true, quotaReserved: false, admitted: false };
      s.quotaReserved ||= condition(wl, 'QuotaReserved')?.status === 'True';
      s.admitted ||= condition(wl, 'Admitted')?.status === 'True';
      state.set(uid, s);
    },
    () => undefined,
  );
  return {
    of: (uid) => state.get(uid) ?? { seen: false, quotaReserved: false, admitted: false },
    stop: () => ac.abort(),
  };
}

/** What a deposed leader's create delivers late: the Job of a run, token and all, suspended, never recorded. */
function lateCreate(sj: SingletonJob, name: string, token: number): k8s.V1Job {
  return buildJob(
    sj,
    { name, token, term: 1, kind: 'Manual', requestId: 'late', reservedTime: new Date().toISOString() },
    { suspended: true },
  );
}

/** Holds the leader between a run's Job create and its record (fencing's adversarial moment) until released. */
function holdAfterReserve(): { hooks: StartOptions['hooks']; held: Promise<string>; release(): void } {
  let release!: () => void;
  let heldRun!: (run: string) => void;
  const gate = new Promise<void>((r) => (release = r));
  const held = new Promise<string>((r) => (heldRun = r));
  return {
    hooks: {
      afterReserve: async (_key, run) => {
        heldRun(run);
        await gate;
      },
    },
    held,
    release: () => release(),
  };
}

function scenario(mode: 'queue-name' | 'manageJobsWithoutQueueName') {
  const labelled = mode === 'queue-name';
  // With manageJobsWithoutQueueName the template has no label; Kueue's webhook files the Job under the namespace's LocalQueue "default".
  const queueName = labelled ? 'team-queue' : 'default';
  const templateQueue = labelled ? queueName : undefined;
  let kueue: RunningKueue | undefined;
  beforeAll(async () => {
    kueue = await startKueue(testCluster().local!, bins as Exclude<typeof bins, { missing: string }>, {
      manageJobsWithoutQueueName: !labelled,
    });
    await applyAdmissionPolicies();
  }, 180_000);
  afterAll(async () => {
    deleteAdmissionPolicies();
    await kueue?.stop();
  });

  it('(a) an attempt held between its create and its record, and a deposed leader’s late create, never get a Pod although Kueue has quota for them; the recorded run does', async () => {
    const { ns, api } = await queueFor(labelled ? 'kq-held' : 'km-held', { queue: queueName, cpu: '4' });
    const pods = await podRecordWatch(api);
    const overlap = await podOverlapMonitor(kc, ns);
    await api.create(queued('held', templateQueue, 3));
    const hold = holdAfterReserve();
    const first = await env.controller(ns, { ...asInstalled, hooks: hold.hooks });
    const deposed = fakeLeadership(1000);
    void first.lead(deposed);
    await requestRun(api, 'held', 'r1');
    const runName = await hold.held;
    // Created, suspended, not recorded: Kueue manages it and reserves quota, but its check stays Pending.
    const job = await eventually('the held attempt’s Job', async () =>
      api.batch.readNamespacedJob({ namespace: ns, name: runName }).catch(() => undefined),
    );
    expect(job.metadata?.labels?.[QUEUE_LABEL]).toBe(queueName);
    const wl = await eventually('its Workload with quota reserved', async () => {
      const w = await workloadOf(ns, job);
      return condition(w, 'QuotaReserved')?.status === 'True' && w;
    });
    await sleep(4000);
    const still = (await workloadOf(ns, job))!;
    expect(condition(still, 'Admitted')?.status).not.toBe('True');
    expect(still.status?.admissionChecks?.map((c) => c.state)).toEqual(['Pending']);
    expect((await api.batch.readNamespacedJob({ namespace: ns, name: runName })).spec?.suspend).toBe(true);
    expect(pods.tokens('held')).toEqual([]);
    expect(wl.metadata.uid).toBe(still.metadata.uid);

    // The held leader is deposed; its record is refused (it fences itself). A successor takes the run over, records it, and Kueue admits it.
    deposed.lose();
    hold.release();
    await first.stop();
    void (await env.controller(ns, asInstalled)).lead(fakeLeadership(2000));
    const done = await eventually(
      'the run to succeed under the successor',
      async () => (await api.get('held')).status?.recentRuns?.find((r) => r.outcome === 'Succeeded'),
      60_000,
    );
    expect(pods.tokens('held')).toEqual([done.token]);

    // A deposed leader's create delivered late, under a name that is free (its run's Job deleted): Kueue files it, nobody admits it.
    const sj = await api.get('held');
    await api.batch.deleteNamespacedJob({ namespace: ns, name: done.name, body: { propagationPolicy: 'Background' } });
    await eventually(
      'the run’s Job gone',
      async () => !(await api.batch.readNamespacedJob({ namespace: ns, name: done.name }).catch(() => undefined)),
    );
    const workloads = await workloadWatch(ns);
    // By the operator's own ServiceAccount, as a deposed replica's request would be (the admission policy refuses anyone else's).
    const operator = (
      await installedKubeConfig(kc, testCluster().kubeconfig, 'namespaced', [ns], undefined, ['kueue.enabled=true'])
    ).makeApiClient(k8s.BatchV1Api);
    const late = await operator.createNamespacedJob({ namespace: ns, body: lateCreate(sj, done.name, done.token) });
    expect(late.metadata?.labels?.[QUEUE_LABEL]).toBe(queueName);
    // Kueue files it (a Workload, quota reserved) — unless the operator deletes it as a stray (its token is spent) first.
    const lateGone = async () =>
      (await api.batch.readNamespacedJob({ namespace: ns, name: done.name }).catch(() => undefined))?.metadata?.uid !==
      late.metadata?.uid;
    await eventually(
      'the late Job’s Workload with quota reserved, or the late Job deleted as a stray',
      async () => workloads.of(late.metadata!.uid!).quotaReserved || (await lateGone()),
    );
    await sleep(4000);
    if (!(await lateGone()))
      expect((await api.batch.readNamespacedJob({ namespace: ns, name: done.name })).spec?.suspend).toBe(true);
    expect(workloads.of(late.metadata!.uid!).admitted).toBe(false);
    workloads.stop();
    expect(pods.tokens('held')).toEqual([done.token]);
    expect(pods.unrecorded).toEqual([]);
    expect(overlap.max('held')).toBe(1);
    overlap.stop();
    pods.stop();
  }, 150_000);

  it('(b, c) runs queue for quota — the waiting SingletonJob says AwaitingAdmission, not RunStalled or Stalled — start once admitted, one Pod at a time, tokens in run order', async () => {
    const { ns, api } = await queueFor(labelled ? 'kq-quota' : 'km-quota', { queue: queueName, cpu: '1' });
    const pods = await podRecordWatch(api);
    const overlap = await podOverlapMonitor(kc, ns);
    // Two objects, quota for one Pod: the second waits for the first's quota.
    await api.create(queued('first', templateQueue, 8));
    await api.create(queued('second', templateQueue, 1));
    void (await env.controller(ns, asInstalled)).lead(fakeLeadership(1000));
    await requestRun(api, 'first', 'r1');
    await eventually('the first run’s Pod', async () => pods.tokens('first').length > 0);
    await requestRun(api, 'second', 'r1');
    const waiting = await eventually('the second run awaiting admission', async () => {
      const sj = await api.get('second');
      return conditionOf(sj, 'AwaitingAdmission')?.status === 'True' && sj;
    });
    expect(conditionOf(waiting, 'AwaitingAdmission')).toMatchObject({ reason: 'QueuedByKueue' });
    expect(conditionOf(waiting, 'AwaitingAdmission')!.message).toMatch(
      /waits for Kueue to admit its Workload .*no quota reserved yet/,
    );
    expect(conditionOf(waiting, 'Ready')).toMatchObject({ status: 'True', reason: 'AwaitingAdmission' });
    expect(conditionOf(waiting, 'RunStalled')).toBeUndefined();
    expect(conditionOf(waiting, 'Stalled')).toBeUndefined();
    expect(pods.tokens('second')).toEqual([]);
    // The first run ends, its quota goes to the second, which starts and drops the condition.
    const second = await eventually(
      'the second run to succeed',
      async () => (await api.get('second')).status?.recentRuns?.find((r) => r.outcome === 'Succeeded'),
      60_000,
    );
    const after = await api.get('second');
    expect(conditionOf(after, 'AwaitingAdmission')).toBeUndefined();
    expect(conditionOf(after, 'Ready')?.reason).not.toBe('AwaitingAdmission');
    // Token order: a second run of the same object, admitted straight away, has a higher token.
    await requestRun(api, 'second', 'r2');
    const next = await eventually(
      'the second object’s next run to succeed',
      async () =>
        (await api.get('second')).status?.recentRuns?.find((r) => r.outcome === 'Succeeded' && r.requestId === 'r2'),
      60_000,
    );
    expect(next.token).toBeGreaterThan(second.token);
    expect(pods.tokens('second')).toEqual([second.token, next.token]);
    expect(pods.unrecorded).toEqual([]);
    expect(overlap.max('first')).toBe(1);
    expect(overlap.max('second')).toBe(1);
    overlap.stop();
    pods.stop();
  }, 150_000);

  it('(c) a running run that Kueue evicts (its Workload deactivated) is never admitted again: its attempt ends once its Pod is gone, the next attempt is a new Job with a higher token', async () => {
    const { ns, api } = await queueFor(labelled ? 'kq-evict' : 'km-evict', { queue: queueName, cpu: '2' });
    const pods = await podRecordWatch(api);
    const overlap = await podOverlapMonitor(kc, ns);
    const sj = queued('evicted', templateQueue, 60);
    sj.spec.jobTemplate.spec!.backoffLimit = 1;
    await api.create(sj);
    void (await env.controller(ns, { ...asInstalled, retryBackoffMs: 500 })).lead(fakeLeadership(1000));
    await requestRun(api, 'evicted', 'r1');
    await eventually('the run’s Pod running', async () => {
      const list = await api.core.listNamespacedPod({ namespace: ns });
      return list.items.some((p) => p.status?.phase === 'Running');
    });
    const run = (await api.get('evicted')).status!.activeRun!;
    const job = await api.batch.readNamespacedJob({ namespace: ns, name: run.name });
    const wl = (await workloadOf(ns, job))!;
    // What `kubectl kueue stop workload` does: Kueue evicts it, suspends the Job (its Pod goes) and resets its checks.
    await custom.patchNamespacedCustomObject(
      {
        group: KUEUE_GROUP,
        version: KUEUE_VERSION,
        plural: 'workloads',
        namespace: ns,
        name: wl.metadata.name,
        body: { spec: { active: false } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const next = await eventually(
      'the next attempt',
      async () => {
        const s = await api.get('evicted');
        return s.status?.activeRun && s.status.activeRun.name !== run.name ? s.status.activeRun : undefined;
      },
      40_000,
    );
    expect(next.token).toBeGreaterThan(run.token);
    const said = await eventually('the RunJobSuspended Event', async () =>
      (await api.events('evicted')).find((e) => e.reason === 'RunJobSuspended'),
    );
    expect(said.message).toContain(`Kueue evicted its Workload ${wl.metadata.name}`);
    expect((await api.get('evicted')).status?.recentRuns?.[0]).toMatchObject({
      name: run.name,
      token: run.token,
      outcome: 'Failed',
    });
    await eventually('the next attempt’s Pod', async () => pods.tokens('evicted').includes(next.token), 40_000);
    // The evicted Job was deleted, never re-admitted: one Pod per attempt, each with its own token, never two at once.
    expect(await api.batch.readNamespacedJob({ namespace: ns, name: run.name }).catch(() => undefined)).toBeUndefined();
    expect(pods.tokens('evicted')).toEqual([run.token, next.token]);
    expect(pods.unrecorded).toEqual([]);
    expect(overlap.max('evicted')).toBe(1);
    overlap.stop();
    pods.stop();
  }, 150_000);

  it('a ClusterQueue without the operator’s AdmissionCheck is refused, saying what to configure, and no Job is left for Kueue to start; with the check added, runs go on', async () => {
    const { ns, api, clusterQueue, check } = await queueFor(labelled ? 'kq-unfenced' : 'km-unfenced', {
      queue: queueName,
      cpu: '4',
      fenced: false,
    });
    const pods = await podRecordWatch(api);
    await api.create(queued('plain', templateQueue, 1));
    void (await env.controller(ns, asInstalled)).lead(fakeLeadership(1000));
    await requestRun(api, 'plain', 'r1');
    const refused = await eventually('Ready=False JobRejected', async () => {
      const sj = await api.get('plain');
      return conditionOf(sj, 'Ready')?.reason === 'JobRejected' && sj;
    });
    const message = conditionOf(refused, 'Ready')!.message;
    expect(message).toContain(`ClusterQueue ${clusterQueue}`);
    expect(message).toContain(`controllerName ${ADMISSION_CHECK_CONTROLLER}`);
    expect(refused.status?.recentRuns?.[0]).toMatchObject({ outcome: 'Failed' });
    await sleep(2000);
    expect(
      (await api.batch.listNamespacedJob({ namespace: ns })).items.filter((j) => !j.metadata?.deletionTimestamp),
    ).toEqual([]);
    expect(pods.tokens('plain')).toEqual([]);
    // Configured: the re-probe accepts the template, the next request runs.
    await custom.patchClusterCustomObject(
      {
        group: KUEUE_GROUP,
        version: KUEUE_VERSION,
        plural: 'clusterqueues',
        name: clusterQueue,
        body: { spec: { admissionChecksStrategy: { admissionChecks: [{ name: check }] } } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually(
      'the template accepted again',
      async () => conditionOf(await api.get('plain'), 'Ready')?.reason !== 'JobRejected',
      40_000,
    );
    await requestRun(api, 'plain', 'r2');
    await eventually(
      'the run to succeed',
      async () => (await api.get('plain')).status?.recentRuns?.find((r) => r.outcome === 'Succeeded'),
      60_000,
    );
    expect(pods.unrecorded).toEqual([]);
    pods.stop();
  }, 150_000);
}

describeKueue('Kueue: the template’s kueue.x-k8s.io/queue-name label (the operator as AdmissionCheck controller)', () =>
  scenario('queue-name'),
);
describeKueue('Kueue: manageJobsWithoutQueueName (a LocalQueue named default)', () =>
  scenario('manageJobsWithoutQueueName'),
);
