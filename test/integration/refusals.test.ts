// Refusals that used to hold a schedule silently (issue 21 items 5 and 6),
// against the real control plane: a Job create refused by a ResourceQuota
// (403) ends its run as Failed with the quota's message, and runs go on once
// the API server accepts the Job again; a create an admission webhook cannot
// answer (5xx) is Stalled with why and ended at its deadline; a quota full of
// history Jobs is pruned although the template's dry run is refused; a slot
// queued behind a run does not start once the object was suspended.

import * as k8s from '@kubernetes/client-node';
import { eventually } from '../support/cluster.ts';
import {
  controllerTestEnv,
  fakeLeadership,
  requestRun,
  singletonJob,
  conditionOf as condition,
  whenConditionTrue,
} from '../support/singletonjobs.ts';
import type { Api } from '../support/singletonjobs.ts';
import type { SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';

const env = controllerTestEnv();
const { kc } = env;
const core = kc.makeApiClient(k8s.CoreV1Api);
const batch = kc.makeApiClient(k8s.BatchV1Api);
const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);

/** A namespace with its own controller leading in it (retries after 0.5 s), as installed (the chart's RBAC). */
async function namespace(prefix: string): Promise<{ name: string; api: Api }> {
  const ns = await env.namespace(prefix);
  const c = await env.controller(ns.name, { retryBackoffMs: 500 });
  void c.lead(fakeLeadership(1000));
  return ns;
}

/** Ready=True for the object's current generation: its template was checked on apply. */
async function checkedOnApply(api: Api, name: string): Promise<SingletonJob> {
  return eventually(
    `${name}: the template checked on apply`,
    async () => {
      const sj = await api.get(name);
      return (
        condition(sj, 'Ready')?.status === 'True' &&
        condition(sj, 'Ready')?.observedGeneration === sj.metadata?.generation &&
        sj
      );
    },
    20_000,
  );
}

/** A ResourceQuota on count/jobs.batch, once the quota controller has counted it (admission refuses everything before). */
async function jobQuota(ns: string, count: number): Promise<void> {
  await core.createNamespacedResourceQuota({
    namespace: ns,
    body: { metadata: { name: 'jobs' }, spec: { hard: { 'count/jobs.batch': String(count) } } },
  });
  await eventually(
    'the quota counted',
    async () =>
      (await core.readNamespacedResourceQuota({ name: 'jobs', namespace: ns })).status?.used?.['count/jobs.batch'] !==
      undefined,
    30_000,
  );
}

/** A Job that is no run of ours (a person's), suspended: it takes a place in the quota and never gets a Pod. */
async function foreignJob(ns: string, name: string): Promise<void> {
  await batch.createNamespacedJob({
    namespace: ns,
    body: {
      metadata: { name },
      spec: {
        suspend: true,
        template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] } },
      },
    },
  });
}

describe('a Job create the API server refuses or cannot answer (issue 21 item 5)', () => {
  it("a ResourceQuota on count/jobs.batch refuses the run's Job (403): the run ends Failed with the quota's message, and the next run is not held", async () => {
    const { api, name: ns } = await namespace('quota-run');
    await api.create(singletonJob('capped', {}));
    await checkedOnApply(api, 'capped');
    await jobQuota(ns, 1);
    await foreignJob(ns, 'filler');

    await requestRun(api, 'capped', 'r1');
    const failed = await eventually(
      'the run ended Failed',
      async () => {
        const sj = await api.get('capped');
        return (
          sj.status?.lastManualRequestId === 'r1' &&
          !sj.status.activeRun &&
          sj.status.recentRuns?.[0]?.outcome === 'Failed' &&
          sj
        );
      },
      30_000,
    );
    expect(condition(failed, 'Ready')).toMatchObject({ status: 'False', reason: 'JobRejected' });
    expect(condition(failed, 'Ready')!.message).toContain('exceeded quota');
    expect(failed.status!.consecutiveFailures).toBe(1);
    await eventually(
      'the JobRejected Event with the quota message',
      async () =>
        (await api.events('capped')).some((e) => e.reason === 'JobRejected' && e.message?.includes('exceeded quota')),
      15_000,
    );
    expect(await api.jobs(failed)).toHaveLength(0);

    // The quota frees up: asked again without a spec change, and the next run runs.
    await batch.deleteNamespacedJob({ name: 'filler', namespace: ns, propagationPolicy: 'Background' });
    await requestRun(api, 'capped', 'r2');
    const next = await eventually(
      'the next run succeeded',
      async () => {
        const sj = await api.get('capped');
        return (
          sj.status?.lastManualRequestId === 'r2' &&
          !sj.status.activeRun &&
          sj.status.recentRuns?.[0]?.outcome === 'Succeeded' &&
          sj
        );
      },
      60_000,
    );
    expect(condition(next, 'Ready')?.status).toBe('True');
  });

  it('a validating webhook the API server cannot call (5xx): the run is Stalled with why, ended at its deadline, and the next run goes on', async () => {
    const { api, name: ns } = await namespace('webhook-down');
    await api.create(singletonJob('gated', { podStartDeadlineSeconds: 15 }));
    await checkedOnApply(api, 'gated');
    const hook = `jobs.${ns}.singleton.test`;
    await admission.createValidatingWebhookConfiguration({
      body: {
        metadata: { name: hook },
        webhooks: [
          {
            name: hook,
            // Nothing listens there: every call fails, and failurePolicy Fail makes the create fail with 500.
            clientConfig: { url: 'https://127.0.0.1:1/validate' },
            rules: [{ apiGroups: ['batch'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['jobs'] }],
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
            failurePolicy: 'Fail',
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
            timeoutSeconds: 1,
          },
        ],
      },
    });
    env.onCleanup(
      async () => void (await admission.deleteValidatingWebhookConfiguration({ name: hook }).catch(() => undefined)),
    );
    // The webhook configuration takes effect once the API server's informer has it.
    await eventually(
      'the webhook in effect',
      async () => {
        try {
          await batch.createNamespacedJob({
            namespace: ns,
            dryRun: 'All',
            body: {
              metadata: { name: 'probe' },
              spec: {
                template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] } },
              },
            },
          });
          return false;
        } catch (err) {
          const body = (err as { body?: unknown }).body;
          return (typeof body === 'string' ? body : JSON.stringify(body)).includes('failed calling webhook');
        }
      },
      20_000,
    );

    const requested = Date.now();
    await requestRun(api, 'gated', 'r1');
    const stalled = await whenConditionTrue(api, 'gated', 'RunStalled', 20_000, 'the RunStalled condition saying why');
    expect(condition(stalled, 'RunStalled')!.reason).toBe('JobCreateFailed');
    expect(condition(stalled, 'RunStalled')!.message).toContain('failed calling webhook');
    expect(condition(stalled, 'Ready')).toMatchObject({ status: 'True', reason: 'RunStalled' });
    expect(stalled.status!.activeRun).toMatchObject({ requestId: 'r1' });
    expect(stalled.status!.activeRun!.jobUID).toBeUndefined();

    const ended = await eventually(
      'the run ended as Stalled at its deadline',
      async () => {
        const sj = await api.get('gated');
        return !sj.status?.activeRun && sj.status?.recentRuns?.[0]?.outcome === 'Stalled' && sj;
      },
      40_000,
    );
    expect(Date.now() - requested).toBeGreaterThanOrEqual(14_000);
    expect(condition(ended, 'RunStalled')).toBeUndefined();
    await eventually(
      'the RunStalled Event',
      async () =>
        (await api.events('gated')).some(
          (e) => e.reason === 'RunStalled' && e.message?.includes('failed calling webhook'),
        ),
      15_000,
    );

    // The webhook is back (here: gone): the next run runs.
    await admission.deleteValidatingWebhookConfiguration({ name: hook });
    await requestRun(api, 'gated', 'r2');
    await eventually(
      'the next run succeeded',
      async () => {
        const s = (await api.get('gated')).status;
        return s?.lastManualRequestId === 'r2' && !s.activeRun && s.recentRuns?.[0]?.outcome === 'Succeeded';
      },
      40_000,
    );
  });

  it('a quota full of history Jobs: lowering the history limit prunes them although the dry run is refused, and runs go on', async () => {
    const { api, name: ns } = await namespace('quota-history');
    await api.create(singletonJob('hoarder', { successfulJobsHistoryLimit: 5 }));
    await checkedOnApply(api, 'hoarder');
    await jobQuota(ns, 2);
    for (const id of ['r1', 'r2']) {
      await requestRun(api, 'hoarder', id);
      await eventually(
        `run ${id} succeeded`,
        async () => {
          const s = (await api.get('hoarder')).status;
          return s?.lastManualRequestId === id && !s.activeRun && s.recentRuns?.[0]?.outcome === 'Succeeded';
        },
        30_000,
      );
    }
    const sj = await api.get('hoarder');
    expect(await api.jobs(sj)).toHaveLength(2); // the quota is full of history

    // A spec change: its dry run is refused by the quota — and the history beyond the new limit goes all the same.
    await api.patch('hoarder', { spec: { successfulJobsHistoryLimit: 1 } });
    await eventually('the history pruned to the new limit', async () => (await api.jobs(sj)).length === 1, 30_000);
    await eventually(
      'Ready=True for the new generation',
      async () => {
        const live = await api.get('hoarder');
        return condition(live, 'Ready')?.status === 'True' && condition(live, 'Ready')?.observedGeneration === 2;
      },
      60_000,
    );
    await requestRun(api, 'hoarder', 'r3');
    await eventually(
      'run r3 succeeded',
      async () => {
        const s = (await api.get('hoarder')).status;
        return s?.lastManualRequestId === 'r3' && !s.activeRun && s.recentRuns?.[0]?.outcome === 'Succeeded';
      },
      60_000,
    );
  });
});

describe('concurrencyPolicy Queue and suspend (issue 21 item 6)', () => {
  it('a slot queued behind a run does not start once the object was suspended meanwhile: it is skipped and counted', async () => {
    const { api } = await namespace('queue-suspend');
    await api.create(
      singletonJob(
        'q',
        { schedule: '*/2 * * * * *', concurrencyPolicy: 'Queue' },
        { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '8s' } },
      ),
    );
    const queued = await eventually(
      'a slot queued behind a run',
      async () => {
        const sj = await api.get('q');
        return sj.status?.queuedSlot && sj.status.activeRun?.jobUID ? sj : undefined;
      },
      30_000,
    );
    const slot = queued.status!.queuedSlot!;
    const skippedBefore = queued.status!.skippedSlots ?? 0;
    await api.patch('q', { spec: { suspend: true } });

    const after = await eventually(
      'the run in flight ended and the queued slot dropped',
      async () => {
        const sj = await api.get('q');
        return !sj.status?.activeRun &&
          !sj.status?.queuedSlot &&
          sj.status?.recentRuns?.some((r) => r.name === queued.status!.activeRun!.name)
          ? sj
          : undefined;
      },
      40_000,
    );
    // Nothing starts for it later either.
    await new Promise((r) => setTimeout(r, 4000));
    const final = await api.get('q');
    expect(final.status?.activeRun).toBeUndefined();
    expect(final.status!.recentRuns!.some((r) => r.slot === slot)).toBe(false);
    expect(final.status!.skippedSlots).toBeGreaterThan(skippedBefore);
    expect(after.status!.lastSkippedSlot! >= slot).toBe(true);
    await eventually(
      'the SlotsSkipped Event',
      async () =>
        (await api.events('q')).some(
          (e) => e.reason === 'SlotsSkipped' && e.message?.includes(slot) && e.message.includes('suspended'),
        ),
      15_000,
    );
  });
});
