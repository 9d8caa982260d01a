// Nobody else hands a run's Pods out (issue 21 item 1): edits a person with
// `edit` rights or another controller (Kueue preemption) makes to a run's Job
// must not give new Pods an old token. Against the real control plane, with
// the operator under the chart's RBAC.
import * as k8s from '@kubernetes/client-node';
import { eventually } from '../support/cluster.ts';
import { controllerLogs } from '../support/installed.ts';
import {
  Api,
  controllerTestEnv,
  fakeLeadership,
  podOverlapMonitor,
  requestRun,
  singletonJob,
} from '../support/singletonjobs.ts';
import { Keys } from '../../src/api/v1alpha1/singletonjob.ts';

const { kc, namespace, controller } = controllerTestEnv();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function podsOf(api: Api, name: string): Promise<k8s.V1Pod[]> {
  const list = await api.core.listNamespacedPod({ namespace: api.ns });
  return list.items.filter((p) => p.metadata?.annotations?.[Keys.singletonJob] === name);
}

describe('a run whose Job someone suspends again after its release (item 1b)', () => {
  it('is never released twice: its attempt ends once the Pods are gone, the next attempt is a new Job with a higher token, and no two Pods ever share a token', async () => {
    const { api, name: ns } = await namespace('resuspend');
    const overlap = await podOverlapMonitor(kc, ns);
    // backoffLimit 1: one retry, so the test sees the next attempt.
    const sj = singletonJob('resuspend', {}, { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '60s' } });
    sj.spec.jobTemplate.spec!.backoffLimit = 1;
    await api.create(sj);
    void (await controller(ns, { retryBackoffMs: 500 })).lead(fakeLeadership(1000));
    await requestRun(api, 'resuspend', 'r1');
    const pod = await eventually('the run Pod running', async () =>
      (await podsOf(api, 'resuspend')).find((p) => p.status?.phase === 'Running'),
    );
    const live = await api.get('resuspend');
    const run = live.status!.activeRun!;
    // What `kubectl patch job … '{"spec":{"suspend":true}}'` does (and Kueue preemption).
    await api.batch.patchNamespacedJob(
      { namespace: ns, name: run.name, body: { spec: { suspend: true } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const event = await eventually(
      'the RunJobSuspended Event',
      async () => (await api.events('resuspend')).find((e) => e.reason === 'RunJobSuspended'),
      20_000,
    );
    expect(event.message).toContain(run.name);
    // The next attempt: another Job, a higher token.
    const next = await eventually(
      'the next attempt',
      async () => {
        const s = await api.get('resuspend');
        return s.status?.activeRun && s.status.activeRun.name !== run.name ? s : undefined;
      },
      30_000,
    );
    expect(next.status!.activeRun!.token).toBeGreaterThan(run.token);
    expect(next.status!.recentRuns?.[0]).toMatchObject({ name: run.name, token: run.token, outcome: 'Failed' });
    await eventually(
      'the next attempt’s Pod',
      async () =>
        (await podsOf(api, 'resuspend')).find(
          (p) => p.metadata?.annotations?.[Keys.token] === String(next.status!.activeRun!.token),
        ),
      20_000,
    );
    await sleep(2000);
    // The suspended Job was never released again: two Pods ever, one per attempt, each with its own token.
    expect(overlap.pods('resuspend')).toBe(2);
    expect((await podsOf(api, 'resuspend')).map((p) => p.metadata!.uid)).not.toContain(pod.metadata!.uid);
    expect(await api.batch.readNamespacedJob({ namespace: ns, name: run.name }).catch(() => undefined)).toBeUndefined();
    expect(overlap.max('resuspend')).toBe(1);
    overlap.stop();
  });
});

describe('what a finished Job proves (item 3)', () => {
  it('this control plane’s Job controller adds the interim condition before the terminal one, so the operator may skip a Pod list only on such evidence', async () => {
    const { api, name: ns } = await namespace('interim');
    await api.create(singletonJob('interim', {}));
    void (await controller(ns)).lead(fakeLeadership(1000));
    await requestRun(api, 'interim', 'r1');
    const run = await eventually('the run to succeed', async () =>
      (await api.get('interim')).status?.recentRuns?.find((r) => r.outcome === 'Succeeded'),
    );
    const job = await api.batch.readNamespacedJob({ namespace: ns, name: run.name });
    const types = (job.status?.conditions ?? []).filter((c) => c.status === 'True').map((c) => c.type);
    expect(types).toEqual(expect.arrayContaining(['SuccessCriteriaMet', 'Complete']));
  });
});

describe('a namespace being deleted (issue 22 item 4)', () => {
  it('its objects are dropped from the queue without a retry storm, said once, and the same names work again once it is back', async () => {
    const { api, name: ns } = await namespace('nsgone');
    // A Pod that holds the namespace in Terminating for a while (a finalizer stands in for a long grace period).
    await api.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'holder', finalizers: ['singleton.dev/test-hold'] },
        spec: { nodeSelector: { type: 'kwok' }, containers: [{ name: 'c', image: 'simulated' }] },
      },
    });
    await api.create(singletonJob('tick', { schedule: '* * * * * *' }));
    const running = await controller(ns, { rbac: 'cluster' });
    void running.lead(fakeLeadership(1000));
    await eventually('a run', async () => (await api.get('tick')).status?.currentToken);
    const since = Date.now();
    await api.core.deleteNamespace({ name: ns });
    await sleep(8000);
    const lines = controllerLogs().filter((l) => (l.time as number) >= since && JSON.stringify(l).includes(ns));
    const failed = lines.filter((l) => l.msg === 'Reconcile failed; retrying with backoff');
    expect(failed.map((l) => l.err)).toEqual([]);
    expect(lines.filter((l) => String(l.msg).startsWith('Namespace is being deleted')).length).toBeLessThanOrEqual(1);
    await api.core.patchNamespacedPod(
      { namespace: ns, name: 'holder', body: { metadata: { finalizers: [] } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually(
      'the namespace to be gone',
      async () => !(await api.core.readNamespace({ name: ns }).catch(() => undefined)),
      60_000,
    );
    // Back, with the same names: a fresh object runs, with its own history.
    await api.core.createNamespace({ body: { metadata: { name: ns } } });
    await api.create(singletonJob('tick', { schedule: '* * * * * *' }));
    const again = await eventually(
      'a run of the re-created object',
      async () => (await api.get('tick')).status?.recentRuns?.find((r) => r.outcome === 'Succeeded'),
      30_000,
    );
    expect(again.token).toBeGreaterThan(0);
    await api.patch('tick', { spec: { suspend: true } });
  });
});

describe('a deleted predecessor’s orphaned Job that has no Pod yet (item 2)', () => {
  it('holds the re-created object’s first run, is deleted as a stray, and never gets its Pod beside the new runs', async () => {
    const { api, name: ns } = await namespace('orphanjob');
    const overlap = await podOverlapMonitor(kc, ns);
    void (await controller(ns)).lead(fakeLeadership(1000));
    // The predecessor: its run's Pod cannot be created yet (the ServiceAccount comes later: FailedCreate, retried by the Job controller).
    const old = singletonJob('orph', { podStartDeadlineSeconds: 3600 });
    old.spec.jobTemplate.spec!.template.spec!.serviceAccountName = 'comes-later';
    await api.create(old);
    await requestRun(api, 'orph', 'r1');
    const run = await eventually('the predecessor’s run released', async () => {
      const live = await api.get('orph');
      const job =
        live.status?.activeRun &&
        (await api.batch.readNamespacedJob({ namespace: ns, name: live.status.activeRun.name }).catch(() => undefined));
      return job && job.spec?.suspend === false ? live.status!.activeRun! : undefined;
    });
    // `kubectl delete sj orph --cascade=orphan`: the garbage collector removes the Job's owner reference and leaves it.
    await api.custom.deleteNamespacedCustomObject({
      group: 'singleton.dev',
      version: 'v1alpha1',
      plural: 'singletonjobs',
      namespace: ns,
      name: 'orph',
      body: { propagationPolicy: 'Orphan' },
    });
    await eventually('the Job orphaned', async () => {
      const job = await api.batch.readNamespacedJob({ namespace: ns, name: run.name });
      return !job.metadata?.ownerReferences?.length;
    });
    // The re-created object, whose Pods can run (kwok keeps each for 20 s).
    await api.create(singletonJob('orph', {}, { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '20s' } }));
    await requestRun(api, 'orph', 'r2');
    const event = await eventually(
      'the PredecessorJobDeleted Event',
      async () => (await api.events('orph')).find((e) => e.reason === 'PredecessorJobDeleted'),
      20_000,
    );
    expect(event.message).toContain(run.name);
    await eventually(
      'the orphaned Job gone',
      async () => !(await api.batch.readNamespacedJob({ namespace: ns, name: run.name }).catch(() => undefined)),
      30_000,
    );
    const started = await eventually('the new object’s run', async () => {
      const active = (await api.get('orph')).status?.activeRun;
      return active?.jobUID ? active : undefined;
    });
    expect(started.token).toBeGreaterThan(run.token);
    // Now the ServiceAccount exists: had the orphaned Job survived, the Job controller would give it its Pod now.
    await api.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'comes-later' } } });
    await sleep(8000);
    const pods = await podsOf(api, 'orph');
    expect(pods.filter((p) => p.metadata?.annotations?.[Keys.token] === String(run.token))).toEqual([]);
    expect(overlap.max('orph')).toBe(1);
    overlap.stop();
  });
});
