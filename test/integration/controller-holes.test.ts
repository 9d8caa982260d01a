// The holes an outside review found in the guarantees (issue 12, items 1–5),
// each reproduced with the user's or attacker's own actions against the real
// control plane. Every test here failed on the controller before the fix.
import * as k8s from '@kubernetes/client-node';
import { eventually } from '../support/cluster.ts';
import {
  Api,
  controllerTestEnv,
  fakeLeadership,
  podOverlapMonitor,
  requestRun,
  singletonJob,
  token,
} from '../support/singletonjobs.ts';
import { Keys } from '../../src/api/v1alpha1/singletonjob.ts';
import type { ActiveRun } from '../../src/api/v1alpha1/singletonjob.ts';
import { buildJob, Env } from '../../src/controller/rules/jobs.ts';

const { kc, namespace, controller, onCleanup } = controllerTestEnv();
const HOLD = 'singleton.dev/test-hold';

const longRun = (delay: string) => ({ annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': delay } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function podsOf(api: Api, name: string): Promise<k8s.V1Pod[]> {
  const list = await api.core.listNamespacedPod({ namespace: api.ns });
  return list.items.filter((p) => p.metadata?.annotations?.[Keys.singletonJob] === name);
}

async function setFinalizers(api: Api, pod: k8s.V1Pod, finalizers: string[]): Promise<void> {
  await api.core.patchNamespacedPod(
    { namespace: api.ns, name: pod.metadata!.name!, body: { metadata: { finalizers } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}

describe('a run whose Job is deleted and re-created mid-run (item 1)', () => {
  it('never adopts or releases the re-created Job, waits for the terminating Pod, and ends the run as Deleted', async () => {
    const { api, name: ns } = await namespace('rejob');
    const overlap = await podOverlapMonitor(kc, ns);
    await api.create(singletonJob('rejob', {}, longRun('60s')));
    void (await controller(ns)).lead(fakeLeadership(1000));
    await requestRun(api, 'rejob', 'r1');
    const recorded = await eventually('the run to record its Job UID', async () => {
      const live = await api.get('rejob');
      return live.status?.activeRun?.jobUID ? live : undefined;
    });
    const run = recorded.status!.activeRun! as ActiveRun;
    const pod = await eventually('the run Pod', async () =>
      (await podsOf(api, 'rejob')).find((p) => p.status?.phase === 'Running'),
    );
    // The Pod will terminate slowly (a finalizer stands in for a long grace period).
    await setFinalizers(api, pod, [HOLD]);
    await api.batch.deleteNamespacedJob({ namespace: ns, name: run.name, body: { propagationPolicy: 'Background' } });
    await eventually(
      'the Job to be gone',
      async () => !(await api.batch.readNamespacedJob({ namespace: ns, name: run.name }).catch(() => undefined)),
    );
    await eventually('the Pod to be terminating', async () =>
      Boolean(
        (await api.core.readNamespacedPod({ namespace: ns, name: pod.metadata!.name! })).metadata?.deletionTimestamp,
      ),
    );

    // A deposed leader's delayed create: same name, same owner, same token, suspended.
    const duplicate = await api.batch.createNamespacedJob({
      namespace: ns,
      body: buildJob(recorded, run, { suspended: true }),
    });
    const event = await eventually('the DuplicateJobDeleted Event', async () =>
      (await api.events('rejob')).find((e) => e.reason === 'DuplicateJobDeleted'),
    );
    expect(event.message).toContain(duplicate.metadata!.uid!);
    await eventually('the duplicate to be gone', async () => {
      const live = await api.batch.readNamespacedJob({ namespace: ns, name: run.name }).catch(() => undefined);
      return !live || live.metadata?.uid !== duplicate.metadata!.uid || Boolean(live.metadata?.deletionTimestamp);
    });
    await sleep(3000);
    // The first Pod is still terminating: the run is not over, and no second Pod exists.
    const during = await api.get('rejob');
    expect(during.status?.activeRun?.name).toBe(run.name);
    expect(during.status?.activeRun?.jobUID).toBe(run.jobUID);
    expect(overlap.pods('rejob')).toBe(1);

    await setFinalizers(api, pod, []);
    const finished = await eventually('the run to end', async () =>
      (await api.get('rejob')).status?.recentRuns?.find((r) => r.name === run.name),
    );
    expect(finished).toMatchObject({ token: run.token, outcome: 'Deleted' });
    expect(overlap.max('rejob')).toBe(1);
    expect(overlap.pods('rejob')).toBe(1);
    overlap.stop();
  });
});

describe('manual request ids (item 2)', () => {
  it('a, b, a runs three times under distinct names, repeats of one value run once, and nothing wedges the schedule', async () => {
    const { api, name: ns } = await namespace('reqid');
    const sj = await api.create(singletonJob('reqid', {}));
    void (await controller(ns)).lead(fakeLeadership(1000));
    for (const [i, id] of ['a', 'b', 'a'].entries()) {
      await requestRun(api, 'reqid', id);
      await eventually(`run ${i + 1} (${id}) to finish`, async () => {
        const s = (await api.get('reqid')).status;
        return !s?.activeRun && (s?.recentRuns?.length ?? 0) === i + 1 && s;
      });
      // Applying the same value again is not a new request.
      await requestRun(api, 'reqid', id);
    }
    await sleep(2000);
    const status = (await api.get('reqid')).status!;
    expect(status.recentRuns!.map((r) => [r.requestId, r.outcome])).toEqual([
      ['a', 'Succeeded'],
      ['b', 'Succeeded'],
      ['a', 'Succeeded'],
    ]);
    const names = status.recentRuns!.map((r) => r.name);
    expect(new Set(names).size).toBe(3);
    const tokens = status.recentRuns!.map((r) => r.token).reverse();
    expect(tokens[1]).toBeGreaterThan(tokens[0]!);
    expect(tokens[2]).toBeGreaterThan(tokens[1]!);
    expect(status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect((await api.jobs(sj)).length).toBe(3);
  });

  it("a Job squatting on a slot's name ends that run (JobNameTaken) and the next slot still runs", async () => {
    const { api, name: ns } = await namespace('squat');
    // Every 10 s; the squatter takes the name of the first slot at least 4 s ahead.
    const now = Date.now();
    const slot = Math.ceil((now + 4000) / 10_000) * 10;
    await api.batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name: `squat-${slot}` },
        spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] } } },
      },
    });
    await api.create(singletonJob('squat', { schedule: '*/10 * * * * *' }));
    void (await controller(ns)).lead(fakeLeadership(1000));
    const status = await eventually(
      'a later slot to succeed after the squatted one',
      async () => {
        const s = (await api.get('squat')).status;
        const runs = s?.recentRuns ?? [];
        return (
          runs.some((r) => r.name === `squat-${slot}` && r.outcome === 'Failed') &&
          runs.some((r) => r.outcome === 'Succeeded' && r.slot && Date.parse(r.slot) / 1000 > slot) &&
          s
        );
      },
      45_000,
    );
    expect(status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    // Events are written off the critical path (src/controller/cluster/events.ts): wait for it.
    await eventually(
      'the JobNameTaken Event',
      async () => (await api.events('squat')).some((e) => e.reason === 'JobNameTaken'),
      15_000,
    );
  });
});

describe('a SingletonJob deleted and re-created under the same name (item 4)', () => {
  it('keeps one run in flight per namespace/name (an orphaned run holds the new object) and tokens increasing', async () => {
    const { api, name: ns } = await namespace('phoenix');
    const overlap = await podOverlapMonitor(kc, ns);
    // A real term: the revision of a Lease write made now, as the elector's acquisition would be.
    const coord = kc.makeApiClient(k8s.CoordinationV1Api);
    const lease = await coord.createNamespacedLease({
      namespace: ns,
      body: { metadata: { name: 'term' }, spec: { holderIdentity: 'x' } },
    });
    const first = await api.create(
      singletonJob('phoenix', {}, longRun('15s'), { annotations: { [Keys.runNow]: 'r1' } }),
    );
    void (await controller(ns)).lead(fakeLeadership(Number(lease.metadata!.resourceVersion)));
    const oldJob = await eventually('the first run', async () => (await api.jobs(first))[0]);
    await eventually('its Pod running', async () =>
      (await podsOf(api, 'phoenix')).some((p) => p.status?.phase === 'Running'),
    );
    // The person deletes it leaving its run behind, and applies it again with the same request id.
    await api.custom.deleteNamespacedCustomObject({
      group: 'singleton.dev',
      version: 'v1alpha1',
      plural: 'singletonjobs',
      namespace: ns,
      name: 'phoenix',
      body: { propagationPolicy: 'Orphan' },
    });
    await eventually('the first object to be gone', async () => !(await api.get('phoenix').catch(() => undefined)));
    const second = await api.create(singletonJob('phoenix', {}, {}, { annotations: { [Keys.runNow]: 'r1' } }));
    expect(second.metadata!.uid).not.toBe(first.metadata!.uid);
    const newJob = await eventually("the re-created object's run", async () => (await api.jobs(second))[0], 45_000);
    // Tokens per namespace/name: above every token of the predecessor.
    expect(token(newJob)).toBeGreaterThan(token(oldJob));
    await eventually(
      'the new run to finish',
      async () => (await api.get('phoenix')).status?.recentRuns?.[0]?.outcome === 'Succeeded',
      30_000,
    );
    expect(overlap.max('phoenix')).toBe(1);
    overlap.stop();
  });
});

describe('retries (item 5)', () => {
  it('every attempt is its own Job with backoffLimit 0 and its own, higher token', async () => {
    const { api, name: ns } = await namespace('retry');
    const failing = { labels: { 'pod-container-running-failed.stage.kwok.x-k8s.io': 'true' } };
    const sj = await api.create(singletonJob('retry', { failedJobsHistoryLimit: 5 }, failing));
    await api.custom.patchNamespacedCustomObject(
      {
        group: 'singleton.dev',
        version: 'v1alpha1',
        plural: 'singletonjobs',
        namespace: ns,
        name: 'retry',
        body: { spec: { jobTemplate: { spec: { backoffLimit: 2 } } } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    void (await controller(ns, { retryBackoffMs: 500 })).lead(fakeLeadership(1000));
    await requestRun(api, 'retry', 'r1');
    const status = await eventually(
      'three failed attempts',
      async () => {
        const s = (await api.get('retry')).status;
        return !s?.activeRun && (s?.recentRuns?.length ?? 0) >= 3 && s;
      },
      60_000,
    );
    expect(status.recentRuns!.map((r) => [r.requestId, r.outcome, r.attempt ?? 1])).toEqual([
      ['r1', 'Failed', 3],
      ['r1', 'Failed', 2],
      ['r1', 'Failed', 1],
    ]);
    const jobs = await api.jobs(sj);
    expect(jobs).toHaveLength(3);
    expect(jobs.map((j) => j.spec?.backoffLimit)).toEqual([0, 0, 0]);
    expect(jobs.map((j) => j.metadata!.annotations![Keys.attempt])).toEqual(['1', '2', '3']);
    const pods = await podsOf(api, 'retry');
    const podTokens = pods.map((p) => Number(p.metadata!.annotations![Keys.token]));
    expect(pods).toHaveLength(3);
    expect(new Set(podTokens).size).toBe(3);
    const env = pods.map((p) => Object.fromEntries((p.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value])));
    expect(env.map((e) => e[Env.attempt]).sort()).toEqual(['1', '2', '3']);
    expect(env.every((e) => e[Env.key] === `${ns}/retry` && e[Env.token] === String(podTokens[env.indexOf(e)]))).toBe(
      true,
    );
    const tokens = jobs.map(token);
    expect(tokens[1]).toBeGreaterThan(tokens[0]!);
    expect(tokens[2]).toBeGreaterThan(tokens[1]!);
  });
});

describe('two installations claiming the same objects (item 3)', () => {
  it('exactly one acts while both live; the survivor takes over within about a lease duration, raising its term', async () => {
    const { api, name: ns } = await namespace('twoinst');
    const coord = kc.makeApiClient(k8s.CoordinationV1Api);
    const leaseBody = (name: string, holder: string) => ({
      metadata: { name },
      spec: { holderIdentity: holder, leaseDurationSeconds: 3, renewTime: new k8s.V1MicroTime() },
    });
    // Installation B's Lease first, so A's acquisition is later: A has the higher term.
    const lb = await coord.createNamespacedLease({ namespace: ns, body: leaseBody('inst-b', 'b-0') });
    const la = await coord.createNamespacedLease({ namespace: ns, body: leaseBody('inst-a', 'a-0') });
    const latest = new Map<string, string>([
      ['inst-a', la.metadata!.resourceVersion!],
      ['inst-b', lb.metadata!.resourceVersion!],
    ]);
    const renewing = new Set(['inst-a', 'inst-b']);
    const renewer = setInterval(() => {
      for (const name of renewing) {
        void coord
          .patchNamespacedLease(
            { namespace: ns, name, body: { spec: { renewTime: new k8s.V1MicroTime() } } },
            k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
          )
          .then(
            (l) => latest.set(name, l.metadata!.resourceVersion!),
            () => undefined,
          );
      }
    }, 1000);
    onCleanup(async () => clearInterval(renewer));
    const termA = Number(la.metadata!.resourceVersion);
    const termB = Number(lb.metadata!.resourceVersion);
    expect(termA).toBeGreaterThan(termB);

    const sj = await api.create(singletonJob('shared', { schedule: '*/2 * * * * *' }));
    // Cluster-wide RBAC: reading another installation's Lease is the chart's lease-reader ClusterRole, rendered only without watchNamespaces.
    const a = await controller(ns, { lease: { namespace: ns, name: 'inst-a', durationMs: 3000 }, rbac: 'cluster' });
    const leaderA = fakeLeadership(termA, 'a-0', () => Number(latest.get('inst-a')));
    void a.lead(leaderA);
    await eventually('A to act', async () => (await api.get('shared')).status?.leaderLease === `${ns}/inst-a`);
    const b = await controller(ns, { lease: { namespace: ns, name: 'inst-b', durationMs: 3000 }, rbac: 'cluster' });
    void b.lead(fakeLeadership(termB, 'b-0', () => Number(latest.get('inst-b'))));

    // B stands by and says so on the object; every run is A's.
    const contended = await eventually('the Contended condition', async () =>
      (await api.get('shared')).status?.conditions?.find((c) => c.type === 'Contended' && c.status === 'True'),
    );
    expect(contended.message).toContain(`${ns}/inst-b`);
    expect(contended.message).toContain(`${ns}/inst-a`);
    await sleep(4000);
    const whileBoth = (await api.get('shared')).status!;
    expect(whileBoth.leaderLease).toBe(`${ns}/inst-a`);
    expect(whileBoth.contender).toBe(`${ns}/inst-b`);
    const jobsWhileBoth = await api.jobs(sj);
    expect(jobsWhileBoth.length).toBeGreaterThan(0);
    expect(new Set(jobsWhileBoth.map((j) => j.metadata!.annotations![Keys.term]))).toEqual(new Set([String(termA)]));

    // A goes away: its leader stops and its Lease is no longer renewed.
    leaderA.lose();
    renewing.delete('inst-a');
    const goneAt = Date.now();
    const takenOver = await eventually(
      'B to take over',
      async () => {
        const s = (await api.get('shared')).status;
        return s?.leaderLease === `${ns}/inst-b` && s;
      },
      30_000,
    );
    const tookMs = Date.now() - goneAt;
    // Lease duration 3 s + 2 s margin, from B's first look at A's last renew.
    expect(tookMs).toBeLessThan(3000 + 2000 + 4000);
    expect(takenOver.leaderTerm).toBeGreaterThan(termA);
    expect(takenOver.contender).toBeUndefined();
    expect(takenOver.conditions?.some((c) => c.type === 'Contended')).toBe(false);
    const byB = await eventually('a run of B', async () =>
      (await api.jobs(sj)).find((j) => Number(j.metadata!.annotations![Keys.term]) > termA),
    );
    expect(token(byB)).toBeGreaterThan(Math.max(...jobsWhileBoth.map(token)));
    await eventually(
      'the TakenOver Event',
      async () => (await api.events('shared')).some((e) => e.reason === 'TakenOver'),
      15_000,
    );
    await api.patch('shared', { spec: { suspend: true } });
  });
});
