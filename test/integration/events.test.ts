// The operator's Events as the real API server stores them (events.k8s.io/v1,
// issue 25 item 4): regarding the SingletonJob, related to the run's Job,
// with an action and the reporting controller and instance, so
// `kubectl events --for singletonjob/<name>` tells a run's story; a repeated
// Event is one Event whose series grows. The controller runs as the chart's
// ServiceAccount (its rendered Roles), so a missing permission fails the test.
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { eventually } from '../support/cluster.ts';
import { installedKubeConfig } from '../support/installed.ts';
import { controllerTestEnv, fakeLeadership, kubectl, requestRun, singletonJob } from '../support/singletonjobs.ts';
import { EventRecorder, REPORTING_CONTROLLER } from '../../src/controller/cluster/events.ts';
import type { SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';

const env = controllerTestEnv();
const { cluster, kc } = env;
const events = kc.makeApiClient(k8s.EventsV1Api);

async function eventsOf(namespace: string, name: string): Promise<k8s.EventsV1Event[]> {
  const list = await events.listNamespacedEvent({ namespace });
  return list.items.filter((e) => e.regarding?.kind === 'SingletonJob' && e.regarding.name === name);
}

describe('Events (events.k8s.io/v1)', () => {
  it("tell a run's story: regarding the SingletonJob, related to the run's Job, with an action, readable with kubectl events --for", async () => {
    const { name: ns, api } = await env.namespace('events');
    const leadership = fakeLeadership(1000, 'events-leader');
    void (await env.controller(ns, { retryBackoffMs: 500 })).lead(leadership);
    const sj = await api.create(singletonJob('story', {}));
    await requestRun(api, 'story', 'r1');
    const done = await eventually(
      'the run to succeed',
      async () => {
        const s = await api.get('story');
        return s.status?.recentRuns?.[0]?.outcome === 'Succeeded' ? s : undefined;
      },
      60_000,
    );
    const run = done.status!.recentRuns![0]!;
    const [job] = await api.jobs(sj);
    expect(job!.metadata!.name).toBe(run.name);

    const story = await eventually(
      'the RunStarted and RunFinished Events',
      async () => {
        const all = await eventsOf(ns, 'story');
        const started = all.find((e) => e.reason === 'RunStarted');
        const finished = all.find((e) => e.reason === 'RunFinished');
        return started && finished ? { started, finished } : undefined;
      },
      40_000,
    );
    for (const [e, action] of [
      [story.started, 'StartRun'],
      [story.finished, 'FinishRun'],
    ] as const) {
      expect(e).toMatchObject({
        action,
        type: 'Normal',
        reportingController: REPORTING_CONTROLLER,
        reportingInstance: 'events-leader',
        regarding: {
          apiVersion: 'singleton.dev/v1alpha1',
          kind: 'SingletonJob',
          name: 'story',
          namespace: ns,
          uid: sj.metadata!.uid,
        },
        related: { apiVersion: 'batch/v1', kind: 'Job', name: run.name, namespace: ns, uid: job!.metadata!.uid },
      });
      expect(e.eventTime).toBeDefined();
      expect(e.note).toContain(run.name);
    }

    const told = kubectl(cluster.kubeconfig, ['events', '-n', ns, '--for', 'singletonjob/story']);
    expect(told).toMatch(/RunStarted/);
    expect(told).toMatch(/RunFinished/);
    expect(told).toContain(`Started run ${run.name} with fencing token ${run.token}`);
  });

  it('a repeated Event is one Event whose series counts the repeats (created and patched under the chart RBAC)', async () => {
    const { name: ns, api } = await env.namespace('events-series');
    const asInstalled = await installedKubeConfig(kc, cluster.kubeconfig, 'namespaced', [ns]);
    const sj: SingletonJob = await api.create(singletonJob('repeats', { suspend: true }));
    const recorder = new EventRecorder(
      asInstalled.makeApiClient(k8s.EventsV1Api),
      pino({ level: 'silent' }),
      'series-test',
    );
    for (let i = 0; i < 3; i++) {
      await recorder.emit(sj, 'Normal', 'RunHeld', 'Run held: the same words each time');
      await recorder.flush();
    }
    const written = await eventsOf(ns, 'repeats');
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({ reason: 'RunHeld', action: 'HoldRun', series: { count: 3 } });
    expect(new Date(written[0]!.series!.lastObservedTime).getTime()).toBeGreaterThanOrEqual(
      new Date(written[0]!.eventTime).getTime(),
    );
    recorder.stop();
  });
});
