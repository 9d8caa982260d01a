// Prepared runs (issue 26) against the real control plane, the controller
// running as the chart's ServiceAccount: a run's Job is created suspended and
// recorded before its slot and only released at it; whatever stops a run that
// has not started withdraws it (its Job deleted, never a Pod); a successor
// leader releases a prepared run at its slot; a Job edited while it waits is
// never released. Each test has its own namespace and controller, and a slot
// a few seconds ahead; every Pod the namespace ever gets is recorded by a
// watch, so "never ran" is asserted on the Pods the API server saw, not on
// what the operator says.
import * as k8s from '@kubernetes/client-node';
import { eventually } from '../support/cluster.ts';
import { Api, controllerTestEnv, fakeLeadership, kubectl, requestRun, singletonJob } from '../support/singletonjobs.ts';
import { Keys } from '../../src/api/v1alpha1/singletonjob.ts';
import type { SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';
import { scheduledRunName } from '../../src/controller/rules/naming.ts';

const env = controllerTestEnv();
const { cluster, kc } = env;

/** A daily slot `leadMs` from now (whole seconds, UTC), and the schedule that has it. */
function slotIn(leadMs: number): { at: Date; schedule: string } {
  const at = new Date(Math.ceil((Date.now() + leadMs) / 1000) * 1000);
  return { at, schedule: `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} * * *` };
}

/** Every Pod the namespace gets, by the UID of the Job that owns it, recorded from a watch. */
async function podWatch(ns: string): Promise<{ ofJob(uid: string): k8s.V1Pod[]; stop(): void }> {
  const seen = new Map<string, k8s.V1Pod[]>();
  const watch = new k8s.Watch(kc);
  const ac = await watch.watch(
    `/api/v1/namespaces/${ns}/pods`,
    {},
    (type: string, pod: k8s.V1Pod) => {
      if (type !== 'ADDED') return;
      const owner = pod.metadata?.ownerReferences?.find((r) => r.kind === 'Job')?.uid ?? 'none';
      seen.set(owner, [...(seen.get(owner) ?? []), pod]);
    },
    () => undefined,
  );
  return { ofJob: (uid) => seen.get(uid) ?? [], stop: () => ac.abort() };
}

interface Setup {
  ns: string;
  api: Api;
  pods: Awaited<ReturnType<typeof podWatch>>;
  slot: Date;
  job: string;
}

/** A namespace, its watch and controller (term 1000), and object `p` due `leadMs` from now. */
async function setup(prefix: string, leadMs: number, spec: Record<string, unknown> = {}): Promise<Setup> {
  const { name: ns, api } = await env.namespace(prefix);
  const pods = await podWatch(ns);
  env.onCleanup(async () => pods.stop());
  const c = await env.controller(ns, { retryBackoffMs: 500 });
  void c.lead(fakeLeadership(1000));
  const slot = slotIn(leadMs);
  await api.create(singletonJob('p', { schedule: slot.schedule, timeZone: 'Etc/UTC', ...spec }));
  return { ns, api, pods, slot: slot.at, job: scheduledRunName('p', slot.at) };
}

/** The object once its run of `slot` is prepared: recorded with releaseTime, its Job suspended and never released. */
async function prepared(s: Setup): Promise<{ sj: SingletonJob; job: k8s.V1Job }> {
  return eventually(
    'the run prepared before its slot',
    async () => {
      const sj = await s.api.get('p');
      const run = sj.status?.activeRun;
      if (!run?.jobUID || run.name !== s.job) return undefined;
      const job = await s.api.batch.readNamespacedJob({ namespace: s.ns, name: s.job });
      return job.metadata?.uid === run.jobUID && { sj, job };
    },
    20_000,
  );
}

const sleepUntil = (at: Date) => new Promise((r) => setTimeout(r, Math.max(0, at.getTime() - Date.now())));

describe('prepared runs against the real control plane (issue 26)', () => {
  it('prepared ahead of its slot: the Job exists suspended, recorded, shown in kubectl; released at the slot — its Pod created at or after it — and the slot then recorded as taken', async () => {
    const s = await setup('prep-release', 12_000);
    const { sj, job } = await prepared(s);
    expect(Date.now()).toBeLessThan(s.slot.getTime());
    expect(job.spec!.suspend).toBe(true);
    expect(job.metadata!.annotations![Keys.released]).toBe('');
    expect(sj.status!.activeRun).toMatchObject({ releaseTime: s.slot.toISOString(), generation: 1 });
    expect(sj.status!.nextScheduleTime).toBe(s.slot.toISOString());
    expect(sj.status!.lastScheduleTime).toBeUndefined();
    // -o wide shows the prepared run's release time (the Release column).
    const wide = kubectl(cluster.kubeconfig, ['get', 'sj', 'p', '-n', s.ns, '-o', 'wide']);
    expect(wide.split('\n')[0]).toMatch(/\bRELEASE\b/);
    expect(wide).toContain(s.slot.toISOString());
    // No Pod before the slot; at the slot the one Pod, created no earlier than it (server time).
    await sleepUntil(new Date(s.slot.getTime() - 1000));
    expect(s.pods.ofJob(job.metadata!.uid!)).toHaveLength(0);
    const pod = await eventually(
      'the Pod of the released run',
      async () => s.pods.ofJob(job.metadata!.uid!)[0],
      20_000,
    );
    expect(new Date(pod.metadata!.creationTimestamp!).getTime()).toBeGreaterThanOrEqual(s.slot.getTime());
    const released = await s.api.batch.readNamespacedJob({ namespace: s.ns, name: s.job });
    expect(released.metadata!.uid).toBe(job.metadata!.uid);
    expect(new Date(released.metadata!.creationTimestamp!).getTime()).toBeLessThan(s.slot.getTime());
    const done = await eventually(
      'the run recorded as finished with its slot taken',
      async () => {
        const o = await s.api.get('p');
        return o.status?.recentRuns?.[0]?.name === s.job && o;
      },
      30_000,
    );
    expect(done.status!.recentRuns![0]).toMatchObject({ outcome: 'Succeeded', token: sj.status!.activeRun!.token });
    expect(done.status!.lastScheduleTime).toBe(s.slot.toISOString());
    expect(s.pods.ofJob(job.metadata!.uid!)).toHaveLength(1);
  });

  it('a spec change while prepared: the Job is withdrawn (deleted, never a Pod) and prepared again from the new spec, which is what runs at the slot', async () => {
    const s = await setup('prep-spec', 14_000);
    const first = await prepared(s);
    await s.api.patch('p', {
      spec: {
        jobTemplate: {
          spec: {
            template: {
              spec: {
                restartPolicy: 'Never',
                containers: [{ name: 'main', image: 'busybox:edited', command: ['true'] }],
              },
            },
          },
        },
      },
    });
    const again = await eventually(
      'the run prepared again from generation 2',
      async () => {
        const o = await prepared(s);
        return o.sj.status!.activeRun!.generation === 2 && o;
      },
      20_000,
    );
    expect(again.job.metadata!.uid).not.toBe(first.job.metadata!.uid);
    expect(again.job.spec!.template.spec!.containers[0]!.image).toBe('busybox:edited');
    expect(again.sj.status!.activeRun!.token).toBeGreaterThan(first.sj.status!.activeRun!.token);
    expect(again.sj.status!.recentRuns![0]).toMatchObject({
      name: s.job,
      outcome: 'Withdrawn',
      reason: 'SpecChanged',
      token: first.sj.status!.activeRun!.token,
    });
    const pod = await eventually('the new Job’s Pod', async () => s.pods.ofJob(again.job.metadata!.uid!)[0], 30_000);
    expect(pod.spec!.containers[0]!.image).toBe('busybox:edited');
    expect(s.pods.ofJob(first.job.metadata!.uid!)).toHaveLength(0);
  });

  it('a manual request while prepared: the prepared run is withdrawn and the manual run starts at once; the slot is prepared again and runs after it', async () => {
    const s = await setup('prep-manual', 14_000);
    const first = await prepared(s);
    await requestRun(s.api, 'p', 'now-1');
    const withdrawn = await eventually(
      'the prepared run withdrawn for the manual one',
      async () => {
        const o = await s.api.get('p');
        return o.status?.recentRuns?.some((r) => r.reason === 'ManualRequest' && r.outcome === 'Withdrawn') && o;
      },
      15_000,
    );
    expect(withdrawn.status!.lastManualRequestId).toBe('now-1');
    const slotJob = await eventually(
      'the slot’s run prepared again and run at its slot',
      async () => {
        const job = await s.api.batch.readNamespacedJob({ namespace: s.ns, name: s.job }).catch(() => undefined);
        return (
          job && job.metadata!.uid !== first.job.metadata!.uid && s.pods.ofJob(job.metadata!.uid!).length > 0 && job
        );
      },
      40_000,
    );
    expect(s.pods.ofJob(first.job.metadata!.uid!)).toHaveLength(0);
    const pod = s.pods.ofJob(slotJob.metadata!.uid!)[0]!;
    expect(new Date(pod.metadata!.creationTimestamp!).getTime()).toBeGreaterThanOrEqual(s.slot.getTime());
  });

  it('suspended while prepared: withdrawn; nothing runs at the slot', async () => {
    const s = await setup('prep-suspend', 10_000);
    const first = await prepared(s);
    await s.api.patch('p', { spec: { suspend: true } });
    await eventually(
      'the prepared Job deleted',
      async () =>
        !(await s.api.batch.readNamespacedJob({ namespace: s.ns, name: s.job }).catch(() => undefined)) || undefined,
      15_000,
    );
    await sleepUntil(new Date(s.slot.getTime() + 4000));
    expect(s.pods.ofJob(first.job.metadata!.uid!)).toHaveLength(0);
    const sj = await s.api.get('p');
    expect(sj.status!.activeRun).toBeUndefined();
    expect(sj.status!.recentRuns![0]).toMatchObject({ name: s.job, outcome: 'Withdrawn' });
    expect(await s.api.jobs(sj)).toHaveLength(0);
  });

  it('the SingletonJob deleted while prepared: its Job goes with it, never a Pod', async () => {
    const s = await setup('prep-delete', 10_000);
    const first = await prepared(s);
    await s.api.custom.deleteNamespacedCustomObject({
      group: 'singleton.dev',
      version: 'v1alpha1',
      plural: 'singletonjobs',
      namespace: s.ns,
      name: 'p',
    });
    await eventually(
      'the prepared Job collected',
      async () =>
        !(await s.api.batch.readNamespacedJob({ namespace: s.ns, name: s.job }).catch(() => undefined)) || undefined,
      30_000,
    );
    await sleepUntil(new Date(s.slot.getTime() + 3000));
    expect(s.pods.ofJob(first.job.metadata!.uid!)).toHaveLength(0);
  });

  it('its Job edited while it waits (parallelism raised by someone with edit rights): never released — withdrawn as JobModified, and the slot runs from a Job of its own', async () => {
    const s = await setup('prep-tamper', 12_000);
    const first = await prepared(s);
    await s.api.batch.patchNamespacedJob(
      { namespace: s.ns, name: s.job, body: { spec: { parallelism: 3 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const sj = await eventually(
      'the tampered Job withdrawn',
      async () => {
        const o = await s.api.get('p');
        return o.status?.recentRuns?.some((r) => r.reason === 'JobModified') && o;
      },
      15_000,
    );
    expect(sj.status!.recentRuns![0]).toMatchObject({ outcome: 'Withdrawn', token: first.sj.status!.activeRun!.token });
    const fresh = await eventually(
      'the slot’s own Job run',
      async () => {
        const job = await s.api.batch.readNamespacedJob({ namespace: s.ns, name: s.job }).catch(() => undefined);
        return (
          job && job.metadata!.uid !== first.job.metadata!.uid && s.pods.ofJob(job.metadata!.uid!).length > 0 && job
        );
      },
      30_000,
    );
    expect(fresh.spec!.parallelism).toBe(1);
    expect(s.pods.ofJob(first.job.metadata!.uid!)).toHaveLength(0);
  });

  it('a takeover between prepare and slot: the successor releases the run its predecessor prepared, at the slot, once', async () => {
    const { name: ns, api } = await env.namespace('prep-takeover');
    const pods = await podWatch(ns);
    env.onCleanup(async () => pods.stop());
    const a = await env.controller(ns, { retryBackoffMs: 500 });
    void a.lead(fakeLeadership(1000));
    const slot = slotIn(12_000);
    await api.create(singletonJob('p', { schedule: slot.schedule, timeZone: 'Etc/UTC' }));
    const s: Setup = { ns, api, pods, slot: slot.at, job: scheduledRunName('p', slot.at) };
    const { job } = await prepared(s);
    await a.stop();
    const b = await env.controller(ns, { retryBackoffMs: 500 });
    void b.lead(fakeLeadership(2000));
    const pod = await eventually('the Pod of the released run', async () => pods.ofJob(job.metadata!.uid!)[0], 25_000);
    expect(new Date(pod.metadata!.creationTimestamp!).getTime()).toBeGreaterThanOrEqual(slot.at.getTime());
    const done = await eventually(
      'the run finished',
      async () => {
        const o = await api.get('p');
        return o.status?.recentRuns?.[0]?.name === s.job && o;
      },
      30_000,
    );
    expect(done.status!.recentRuns![0]).toMatchObject({ outcome: 'Succeeded', term: 1000 });
    expect(done.status!.leaderTerm).toBe(2000);
    expect(pods.ofJob(job.metadata!.uid!)).toHaveLength(1);
  });

  it('nobody leads through the slot and past its starting deadline: the prepared run is withdrawn as DeadlineMissed and the slot counted as skipped, never released', async () => {
    const { name: ns, api } = await env.namespace('prep-deadline');
    const pods = await podWatch(ns);
    env.onCleanup(async () => pods.stop());
    const a = await env.controller(ns, { retryBackoffMs: 500 });
    void a.lead(fakeLeadership(1000));
    const slot = slotIn(8_000);
    await api.create(singletonJob('p', { schedule: slot.schedule, timeZone: 'Etc/UTC', startingDeadlineSeconds: 2 }));
    const s: Setup = { ns, api, pods, slot: slot.at, job: scheduledRunName('p', slot.at) };
    const { job } = await prepared(s);
    await a.stop();
    await sleepUntil(new Date(slot.at.getTime() + 4000));
    const b = await env.controller(ns, { retryBackoffMs: 500 });
    void b.lead(fakeLeadership(2000));
    const sj = await eventually(
      'the run withdrawn as DeadlineMissed',
      async () => {
        const o = await api.get('p');
        return o.status?.recentRuns?.[0]?.reason === 'DeadlineMissed' && o;
      },
      15_000,
    );
    expect(sj.status!).toMatchObject({ lastScheduleTime: slot.at.toISOString(), skippedSlots: 1 });
    expect(sj.status!.recentRuns![0]).toMatchObject({ outcome: 'Withdrawn', name: s.job });
    expect(pods.ofJob(job.metadata!.uid!)).toHaveLength(0);
  });
});
