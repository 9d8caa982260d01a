// GitOps health of a SingletonJob (issue 25 item 3), on real objects: each
// state a user can see is produced on the real control plane by the operator
// (running as the chart's ServiceAccount), recorded, and judged by the real
// kstatus library (test/tools/kstatus: what Flux and the cli-utils appliers
// wait for) and by the chart's Argo CD health check under a real Lua 5.4.
// The object is kstatus Current while the operator handles it (a run in
// flight, a stalled run, a pause after failures, another installation
// acting) and Failed only when the object itself cannot run.
//
// RECORD_GITOPS_FIXTURES=1 also writes the recorded objects to
// test/fixtures/gitops/, which the unit tests (test/packaging/argocd.test.ts)
// judge again without a control plane.
import * as k8s from '@kubernetes/client-node';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from '../support/cluster.ts';
import { controllerTestEnv, conditionOf, fakeLeadership, requestRun, singletonJob } from '../support/singletonjobs.ts';
import type { Api } from '../support/singletonjobs.ts';
import { haveLua, health, luaMissing } from '../support/argocd.ts';
import { haveKstatus, kstatus, kstatusMissing } from '../support/kstatus.ts';
import { expected } from '../support/gitops-states.ts';
import type { SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';

const env = controllerTestEnv();
const { kc, onCleanup } = env;
const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/gitops');
const missing = [haveKstatus ? undefined : kstatusMissing, haveLua ? undefined : luaMissing].filter(Boolean);
if (missing.length) console.warn(`GitOps health tests skipped: ${missing.join('; ')}`);
const itWithTools = missing.length ? it.skip : it;

const longRun = { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '600s' } };
const withPodSpec = (sj: SingletonJob, podSpec: Record<string, unknown>): SingletonJob => {
  Object.assign(sj.spec.jobTemplate.spec!.template.spec!, podSpec);
  return sj;
};

/** The object as `kubectl get -o json` shows it, less managedFields (noise for every reader). */
function recorded(sj: SingletonJob): SingletonJob {
  const copy = structuredClone(sj);
  delete copy.metadata!.managedFields;
  return copy;
}

async function until(
  api: Api,
  name: string,
  what: string,
  ok: (sj: SingletonJob) => boolean,
  timeoutMs = 40_000,
): Promise<SingletonJob> {
  return eventually(
    what,
    async () => {
      const sj = await api.get(name);
      return ok(sj) ? recorded(sj) : undefined;
    },
    timeoutMs,
  );
}

const ready = (sj: SingletonJob, status: 'True' | 'False', reason?: string) => {
  const c = conditionOf(sj, 'Ready');
  return (
    c?.status === status &&
    (reason === undefined || c.reason === reason) &&
    sj.status?.observedGeneration === sj.metadata?.generation
  );
};

describe('GitOps health of recorded SingletonJobs (kstatus and the Argo CD health check)', () => {
  itWithTools(
    'every state a user can see: Current while the operator handles it, Failed only when the object itself cannot run',
    async () => {
      const states: Record<string, SingletonJob> = {};
      const { name: ns, api } = await env.namespace('gitops');
      void (await env.controller(ns, { retryBackoffMs: 500 })).lead(fakeLeadership(1000));

      await api.create(singletonJob('idle', { schedule: '@yearly' }));
      await api.create(singletonJob('running', {}, longRun));
      await requestRun(api, 'running', 'r1');
      await api.create(withPodSpec(singletonJob('stalled-run', {}), { serviceAccountName: 'does-not-exist' }));
      await requestRun(api, 'stalled-run', 'r1');
      await api.create(
        singletonJob(
          'paused-after-failures',
          { schedule: '*/2 * * * * *', suspendAfterFailures: 1 },
          { labels: { 'pod-container-running-failed.stage.kwok.x-k8s.io': 'true' } },
        ),
      );
      await api.create(singletonJob('suspended', { schedule: '@daily', suspend: true }));
      await api.create(singletonJob('invalid-spec', { schedule: '@daily', timeZone: 'Mars/Olympus_Mons' }));
      await api.create(
        withPodSpec(singletonJob('template-rejected', { schedule: '@yearly' }), { containers: [{ name: 'main' }] }),
      );

      states.idle = await until(api, 'idle', 'idle: Ready', (sj) => ready(sj, 'True', 'Scheduled'));
      states.running = await until(
        api,
        'running',
        'running: its run recorded and released',
        (sj) => Boolean(sj.status?.activeRun?.jobUID) && ready(sj, 'True'),
      );
      states['stalled-run'] = await until(
        api,
        'stalled-run',
        'stalled-run: RunStalled',
        (sj) => conditionOf(sj, 'RunStalled')?.status === 'True',
      );
      states['paused-after-failures'] = await until(api, 'paused-after-failures', 'paused after failures', (sj) =>
        ready(sj, 'True', 'PausedAfterFailures'),
      );
      states.suspended = await until(api, 'suspended', 'suspended: Ready', (sj) => ready(sj, 'True', 'Suspended'));
      states['invalid-spec'] = await until(api, 'invalid-spec', 'invalid-spec: Ready=False', (sj) =>
        ready(sj, 'False', 'InvalidTimeZone'),
      );
      states['template-rejected'] = await until(api, 'template-rejected', 'template-rejected: Ready=False', (sj) =>
        ready(sj, 'False', 'JobRejected'),
      );

      // A spec change the operator has not seen yet (its controller stopped).
      const quiet = await env.namespace('gitops-quiet');
      const stopped = await env.controller(quiet.name, { retryBackoffMs: 500 });
      void stopped.lead(fakeLeadership(1000));
      await quiet.api.create(singletonJob('spec-not-observed', { schedule: '@yearly' }));
      await until(quiet.api, 'spec-not-observed', 'spec-not-observed: Ready', (sj) => ready(sj, 'True'));
      await stopped.stop();
      await quiet.api.patch('spec-not-observed', { spec: { schedule: '@monthly' } });
      states['spec-not-observed'] = recorded(await quiet.api.get('spec-not-observed'));

      // Another installation acts (its Lease alive): this one stands by, condition Contended.
      const shared = await env.namespace('gitops-contended');
      const coord = kc.makeApiClient(k8s.CoordinationV1Api);
      const lease = (name: string, holder: string) =>
        coord.createNamespacedLease({
          namespace: shared.name,
          body: {
            metadata: { name },
            spec: { holderIdentity: holder, leaseDurationSeconds: 3, renewTime: new k8s.V1MicroTime() },
          },
        });
      const lb = await lease('inst-b', 'b-0');
      const la = await lease('inst-a', 'a-0');
      const renewer = setInterval(() => {
        for (const name of ['inst-a', 'inst-b']) {
          void coord
            .patchNamespacedLease(
              { namespace: shared.name, name, body: { spec: { renewTime: new k8s.V1MicroTime() } } },
              k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
            )
            .catch(() => undefined);
        }
      }, 1000);
      onCleanup(async () => clearInterval(renewer));
      await shared.api.create(singletonJob('contended', { schedule: '@yearly' }));
      const a = await env.controller(shared.name, {
        lease: { namespace: shared.name, name: 'inst-a', durationMs: 3000 },
        rbac: 'cluster',
      });
      void a.lead(fakeLeadership(Number(la.metadata!.resourceVersion), 'a-0'));
      await until(
        shared.api,
        'contended',
        'A to act',
        (sj) => sj.status?.leaderLease === `${shared.name}/inst-a` && ready(sj, 'True'),
      );
      const b = await env.controller(shared.name, {
        lease: { namespace: shared.name, name: 'inst-b', durationMs: 3000 },
        rbac: 'cluster',
      });
      void b.lead(fakeLeadership(Number(lb.metadata!.resourceVersion), 'b-0'));
      states.contended = await until(
        shared.api,
        'contended',
        'the Contended condition',
        (sj) => conditionOf(sj, 'Contended')?.status === 'True',
      );

      // What the operator wrote: a run's trouble is RunStalled, kstatus' Stalled only for an object that cannot run.
      expect(conditionOf(states['stalled-run']!, 'Stalled')).toBeUndefined();
      expect(conditionOf(states['invalid-spec']!, 'Stalled')).toMatchObject({
        status: 'True',
        reason: 'InvalidTimeZone',
      });
      expect(conditionOf(states['template-rejected']!, 'Stalled')).toMatchObject({
        status: 'True',
        reason: 'JobRejected',
      });

      const names = Object.keys(expected);
      expect(Object.keys(states).sort()).toEqual([...names].sort());
      const verdicts = kstatus(names.map((n) => states[n]));
      const seen = Object.fromEntries(
        names.map((n, i) => [n, { kstatus: verdicts[i]!.status, argo: health(states[n]).status }]),
      );
      expect(seen).toEqual(
        Object.fromEntries(names.map((n) => [n, { kstatus: expected[n]!.kstatus, argo: expected[n]!.argo }])),
      );
      for (const n of names)
        if (expected[n]!.says)
          expect([n, health(states[n]).message]).toEqual([n, expect.stringMatching(expected[n]!.says!)]);

      if (process.env.RECORD_GITOPS_FIXTURES === '1') {
        mkdirSync(fixtures, { recursive: true });
        for (const n of names)
          writeFileSync(path.join(fixtures, `${n}.json`), `${JSON.stringify(states[n], null, 2)}\n`);
      }
    },
  );
});
