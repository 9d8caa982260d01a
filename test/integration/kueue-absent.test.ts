// A template with Kueue's queue-name label where Kueue cannot gate the run
// (issue 25 item 1, the two paths kueue.test.ts cannot take: it runs next to a
// real Kueue). This file runs in npm test's first run, whose control plane
// never serves Kueue's API (kueue.test.ts runs in another, on its own):
// - kueue.enabled=true, no Kueue installed: the Workload API is not served, so
//   the label is only a label — nothing else would unsuspend the Job, and the
//   operator releases it itself after the fenced record, as any run;
// - the chart's default (kueue.enabled=false): the operator may not read
//   Kueue's queues, so it cannot tell whether Kueue would start an unrecorded
//   Job, and refuses the template, saying which value to set; no Job is left.
import { QUEUE_LABEL } from '../../src/controller/cluster/kueue.ts';
import { scheduledRunName } from '../../src/controller/rules/naming.ts';
import type { SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';
import { readFileSync } from 'node:fs';
import { eventually, testCluster } from '../support/cluster.ts';
import { conditionOf, controllerTestEnv, fakeLeadership, requestRun, singletonJob } from '../support/singletonjobs.ts';

const env = controllerTestEnv();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The Job creates the API server logged in this namespace: the Job's name and the request URI (a dry run says dryRun=All there). */
function jobCreates(ns: string): string[] {
  return readFileSync(testCluster().local!.state.auditLog, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(
      (l) =>
        JSON.parse(l) as {
          verb: string;
          requestURI: string;
          stage: string;
          objectRef?: { namespace?: string; name?: string; resource?: string; subresource?: string };
        },
    )
    .filter(
      (e) =>
        e.stage === 'ResponseComplete' &&
        e.verb === 'create' &&
        e.objectRef?.resource === 'jobs' &&
        !e.objectRef.subresource &&
        e.objectRef.namespace === ns,
    )
    .map((e) => `${e.objectRef!.name} ${e.requestURI}`);
}

function labelled(name: string): SingletonJob {
  const sj = singletonJob(name, {}, { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '1s' } });
  sj.spec.jobTemplate.metadata = { labels: { [QUEUE_LABEL]: 'team-queue' } };
  return sj;
}

describe('a queue-name template where Kueue cannot gate the run', () => {
  it('kueue.enabled=true without Kueue installed: the label is only a label, and the operator releases the recorded run itself', async () => {
    const { name: ns, api } = await env.namespace('kueue-absent');
    await api.create(labelled('labelled'));
    void (await env.controller(ns, { chartValues: ['kueue.enabled=true'] })).lead(fakeLeadership(3000));
    await requestRun(api, 'labelled', 'r1');
    const done = await eventually(
      'the run to succeed',
      async () => (await api.get('labelled')).status?.recentRuns?.find((r) => r.outcome === 'Succeeded'),
      60_000,
    );
    expect(done.token).toBeGreaterThanOrEqual(3000);
    const [job] = (await api.batch.listNamespacedJob({ namespace: ns })).items;
    expect(job?.metadata?.labels?.[QUEUE_LABEL]).toBe('team-queue');
    expect(job?.spec?.suspend).toBe(false);
    expect(conditionOf(await api.get('labelled'), 'AwaitingAdmission')).toBeUndefined();
    // An unlabelled template too: with no Kueue API served there is no Kueue webhook to ask, so no dry run
    // precedes its create (discovery says so, once a minute) — one create per run, the run's.
    const plain = singletonJob('plain', {}, { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '1s' } });
    await api.create(plain);
    await requestRun(api, 'plain', 'r1');
    await eventually(
      'the unlabelled run to succeed',
      async () => (await api.get('plain')).status?.recentRuns?.find((r) => r.outcome === 'Succeeded'),
      60_000,
    );
    const creates = await eventually('both creates in the audit log', async () => {
      const c = jobCreates(ns);
      return c.filter((x) => !x.includes('dryRun')).length >= 2 && c;
    });
    // The template check's dry runs (once per generation, under the epoch's run name) are not the question here.
    const probes = new Set(['labelled', 'plain'].map((n) => scheduledRunName(n, new Date(0))));
    const runs = creates.filter((c) => !probes.has(c.split(' ')[0]!));
    expect(runs.filter((c) => c.includes('dryRun'))).toEqual([]);
    expect(runs).toHaveLength(2);
  }, 90_000);

  it('the chart’s default (kueue.enabled=false): refused, naming the value to set, and no Job is left', async () => {
    const { name: ns, api } = await env.namespace('kueue-off');
    await api.create(labelled('labelled'));
    void (await env.controller(ns)).lead(fakeLeadership(3000));
    await requestRun(api, 'labelled', 'r1');
    const refused = await eventually('Ready=False JobRejected', async () => {
      const sj = await api.get('labelled');
      return conditionOf(sj, 'Ready')?.reason === 'JobRejected' && sj;
    });
    expect(conditionOf(refused, 'Ready')!.message).toContain(`LocalQueue ${ns}/team-queue`);
    expect(conditionOf(refused, 'Ready')!.message).toContain('install the chart with kueue.enabled=true');
    await sleep(2000);
    expect(
      (await api.batch.listNamespacedJob({ namespace: ns })).items.filter((j) => !j.metadata?.deletionTimestamp),
    ).toEqual([]);
    expect((await api.core.listNamespacedPod({ namespace: ns })).items).toEqual([]);
  }, 90_000);
});
