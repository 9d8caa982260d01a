// Issue 23: the guarantees without a single leader, against the real API
// server. Two controllers in the no-election mode (hooks.fencesOnly: no
// stand-by, no "a newer leader wrote it") act on one SingletonJob at the same
// time with different, changing terms; only the fences — CAS'd status writes,
// the CRD's CEL rules, deterministic names, the UID- and
// resourceVersion-tested release — keep at most one run in flight, each slot
// once and the tokens in run order. And the release fence on its own: a
// release decided from an older read of a Job never unsuspends it after it
// was released and suspended again.
import * as k8s from '@kubernetes/client-node';
import { eventually } from '../support/cluster.ts';
import { installedKubeConfig } from '../support/installed.ts';
import { controllerTestEnv, fakeLeadership, podOverlapMonitor, singletonJob, token } from '../support/singletonjobs.ts';
import { Keys } from '../../src/api/v1alpha1/singletonjob.ts';
import { KubeJobControl } from '../../src/controller/cluster/kube.ts';
import { NOT_RELEASED, wasReleased } from '../../src/controller/rules/jobs.ts';

const { cluster, kc, namespace, controller } = controllerTestEnv();
const noCache = { get: () => undefined, byIndex: () => [] };

describe('fences alone (no election)', () => {
  it('a release decided from an older read of the Job is refused once it was released and suspended again', async () => {
    const { name: ns } = await namespace('stale-release');
    const batch = kc.makeApiClient(k8s.BatchV1Api);
    const created = await batch.createNamespacedJob({
      namespace: ns,
      body: {
        // Created as the operator creates a run's Job: suspended, its release marker saying "not yet".
        metadata: { name: 'run-1', annotations: { [Keys.released]: NOT_RELEASED } },
        spec: {
          suspend: true,
          template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] } },
        },
      },
    });
    // As installed: the chart's ServiceAccount does the releases.
    const installed = await installedKubeConfig(kc, cluster.kubeconfig, 'namespaced', [ns]);
    const jobs = new KubeJobControl(
      installed.makeApiClient(k8s.BatchV1Api),
      installed.makeApiClient(k8s.CoreV1Api),
      noCache,
    );
    // The Job controller writes the Job's status meanwhile: the release does not depend on the version read.
    await new Promise((r) => setTimeout(r, 1000));
    const staleRead = structuredClone(created);
    // Writer A releases it from the version it read…
    expect(await jobs.unsuspend(created)).toBe(true);
    const released = await batch.readNamespacedJob({ namespace: ns, name: 'run-1' });
    expect(released.spec?.suspend).toBe(false);
    expect(wasReleased(released)).toBe(true);
    // …a person (or Kueue) suspends it again…
    await batch.patchNamespacedJob(
      { namespace: ns, name: 'run-1', body: { spec: { suspend: true } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    // …and writer B's release, decided from the same first read, arrives late: refused.
    expect(await jobs.unsuspend(staleRead)).toBe(false);
    const after = await batch.readNamespacedJob({ namespace: ns, name: 'run-1' });
    expect(after.spec?.suspend).toBe(true);
    // A Job deleted meanwhile: nothing to release, no error.
    await batch.deleteNamespacedJob({ namespace: ns, name: 'run-1', body: { propagationPolicy: 'Background' } });
    await eventually('the Job gone', async () => (await batch.listNamespacedJob({ namespace: ns })).items.length === 0);
    expect(await jobs.unsuspend(after)).toBe(false);
  });

  it('two controllers acting on one SingletonJob at once, terms changing hands: one run at a time, each slot once, tokens in run order, the term never lowered', async () => {
    const { api, name: ns } = await namespace('no-election');
    const overlap = await podOverlapMonitor(kc, ns);
    const terms: number[] = [];
    const stopTerms = watchTerms(kc, ns, 'both', terms);
    const sj = await api.create(
      singletonJob(
        'both',
        // Every run's Job kept (the default keeps 3 finished): the Jobs listed below are all the runs.
        { schedule: '*/2 * * * * *', successfulJobsHistoryLimit: 100, failedJobsHistoryLimit: 100 },
        { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '1s' } },
      ),
    );
    const released = async () => (await api.jobs(sj)).filter((j) => wasReleased(j)).length;
    const a = await controller(ns, { hooks: { fencesOnly: true } });
    const b = await controller(ns, { hooks: { fencesOnly: true } });
    // Terms interleave: each re-leads with a term above the other's, three times. A round lasts
    // until it has released two runs of its own and every released run's Pod was seen — however
    // slow the machine, not a fixed time.
    let term = 1000;
    for (let round = 0; round < 3; round++) {
      const before = await released();
      const la = fakeLeadership((term += 10), `a-${round}`);
      const lb = fakeLeadership((term += 10), `b-${round}`);
      void a.lead(la);
      void b.lead(lb);
      await eventually(
        `round ${round}: two more runs released (${before} before) and their Pods seen`,
        async () => {
          const n = await released();
          return n >= before + 2 && overlap.pods('both') >= n;
        },
        120_000,
      );
      la.lose();
      lb.lose();
      await new Promise((r) => setTimeout(r, 200));
    }
    // The watch may lag the writes; the check below is over every version it saw.
    await eventually('the watch to have seen three terms', async () => terms.length >= 3, 60_000);
    overlap.stop();
    stopTerms();
    const jobs = (await api.jobs(sj)).filter((j) => wasReleased(j));
    expect(jobs.length).toBeGreaterThanOrEqual(4);
    // Each slot at most once.
    const slots = jobs.map((j) => j.metadata?.annotations?.[Keys.slot]);
    expect(new Set(slots).size).toBe(slots.length);
    // Tokens strictly increase in run (slot) order.
    const bySlot = [...jobs].sort((x, y) =>
      String(x.metadata?.annotations?.[Keys.slot]).localeCompare(String(y.metadata?.annotations?.[Keys.slot])),
    );
    const tokens = bySlot.map(token);
    expect(tokens).toEqual([...tokens].sort((x, y) => x - y));
    expect(new Set(tokens).size).toBe(tokens.length);
    // Never two Pods of it non-terminal at once.
    expect(overlap.pods('both')).toBeGreaterThanOrEqual(4);
    expect(overlap.max('both')).toBe(1);
    // The CEL rule held: the status' leaderTerm, as every version was written, never went down.
    expect(terms.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < terms.length; i++) expect(terms[i]).toBeGreaterThanOrEqual(terms[i - 1]!);
  }, 480_000);
});

/** Every leaderTerm the object's versions carried, in the API server's order (a watch of that object). */
function watchTerms(kc: k8s.KubeConfig, ns: string, name: string, out: number[]): () => void {
  const watch = new k8s.Watch(kc);
  let ac: AbortController | undefined;
  void watch
    .watch(
      `/apis/singleton.dev/v1alpha1/namespaces/${ns}/singletonjobs`,
      { fieldSelector: `metadata.name=${name}` },
      (_type: string, obj: { status?: { leaderTerm?: number } }) => {
        const t = obj.status?.leaderTerm;
        if (t !== undefined && out[out.length - 1] !== t) out.push(t);
      },
      () => undefined,
    )
    .then((c) => (ac = c));
  return () => ac?.abort();
}
