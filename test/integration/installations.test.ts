// Two installations of the operator and one SingletonJob (issue 21 item 7),
// against the real control plane. Following the README's advice after an
// overlap — narrowing one installation's watchNamespaces — must not leave the
// objects it used to act on standing by for good: its Lease stays alive, so
// liveness of the Lease alone cannot tell. The other installation takes such
// an object over once the named one has left work due on it unwritten for
// CLAIM_LEASE_DURATIONS lease durations (claims.ts). While both watch the
// object, the acting one keeps it — also through a long run held by Forbid,
// when it writes nothing for longer than that bound.
import * as k8s from '@kubernetes/client-node';
import { eventually } from '../support/cluster.ts';
import { controllerTestEnv, fakeLeadership, singletonJob, token } from '../support/singletonjobs.ts';
import type { FakeLeadership } from '../support/singletonjobs.ts';
import { Keys } from '../../src/api/v1alpha1/singletonjob.ts';
import { CLAIM_LEASE_DURATIONS } from '../../src/controller/pass/claims.ts';

const { kc, namespace, controller, onCleanup } = controllerTestEnv();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LEASE_MS = 3000;
/** How long the acting installation may leave due work unwritten before the other takes the object over. */
const BOUND_MS = CLAIM_LEASE_DURATIONS * LEASE_MS;

/** Two installations' Leases in `ns`, renewed every second by the test (as their electors would) until stopped. */
async function twoLeases(ns: string) {
  const coord = kc.makeApiClient(k8s.CoordinationV1Api);
  const body = (name: string, holder: string) => ({
    metadata: { name },
    spec: { holderIdentity: holder, leaseDurationSeconds: LEASE_MS / 1000, renewTime: new k8s.V1MicroTime() },
  });
  // B's Lease first, so A's acquisition is later: A has the higher term.
  const lb = await coord.createNamespacedLease({ namespace: ns, body: body('inst-b', 'b-0') });
  const la = await coord.createNamespacedLease({ namespace: ns, body: body('inst-a', 'a-0') });
  const latest = new Map<string, string>([
    ['inst-a', la.metadata!.resourceVersion!],
    ['inst-b', lb.metadata!.resourceVersion!],
  ]);
  const renewer = setInterval(() => {
    for (const name of latest.keys()) {
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
  return {
    termA,
    termB,
    lease: (name: 'inst-a' | 'inst-b') => ({ namespace: ns, name, durationMs: LEASE_MS }),
    leader: (name: 'inst-a' | 'inst-b', identity: string, term: number): FakeLeadership =>
      fakeLeadership(term, identity, () => Number(latest.get(name))),
  };
}

describe('two installations, one of which stops watching the namespace (issue 21 item 7)', () => {
  it('an installation restarted with narrower watchNamespaces (its Lease alive) loses the object within the bound; the other takes it over and runs it', async () => {
    const { api, name: ns } = await namespace('narrow');
    const { name: elsewhere } = await namespace('narrow-other');
    const inst = await twoLeases(ns);
    const sj = await api.create(singletonJob('shared', { schedule: '*/2 * * * * *' }));

    // Cluster-wide RBAC: reading another installation's Lease is the chart's lease-reader ClusterRole.
    const a = await controller(ns, { lease: inst.lease('inst-a'), rbac: 'cluster' });
    void a.lead(inst.leader('inst-a', 'a-0', inst.termA));
    await eventually(
      'A to act',
      async () => (await api.get('shared')).status?.leaderLease === `${ns}/inst-a` && (await api.jobs(sj)).length > 0,
    );
    const b = await controller(ns, { lease: inst.lease('inst-b'), rbac: 'cluster' });
    void b.lead(inst.leader('inst-b', 'b-0', inst.termB));
    await eventually('B to stand by', async () => (await api.get('shared')).status?.contender === `${ns}/inst-b`);

    // A is restarted watching only another namespace; its Lease is still renewed.
    await a.stop();
    const narrowed = await controller(elsewhere, { lease: inst.lease('inst-a'), rbac: 'cluster' });
    void narrowed.lead(inst.leader('inst-a', 'a-0', inst.termA));
    const narrowedAt = Date.now();
    const jobsOfA = await api.jobs(sj);
    expect(new Set(jobsOfA.map((j) => j.metadata!.annotations![Keys.term]))).toEqual(new Set([String(inst.termA)]));

    const takenOver = await eventually(
      'B to take the object over',
      async () => {
        const s = (await api.get('shared')).status;
        return s?.leaderLease === `${ns}/inst-b` && s;
      },
      BOUND_MS + 20_000,
    );
    const tookMs = Date.now() - narrowedAt;
    // The bound, counted from B's first look at A's last write, plus B's recheck interval.
    expect(tookMs).toBeLessThan(BOUND_MS + LEASE_MS + 4000);
    expect(takenOver.leaderTerm).toBeGreaterThan(inst.termA);
    expect(takenOver.contender).toBeUndefined();
    expect(takenOver.conditions?.some((c) => c.type === 'Contended')).toBe(false);
    const byB = await eventually(
      'a run of B',
      async () => (await api.jobs(sj)).find((j) => Number(j.metadata!.annotations![Keys.term]) > inst.termA),
      20_000,
    );
    expect(token(byB)).toBeGreaterThan(Math.max(...jobsOfA.map(token)));
    const takeOverEvent = await eventually(
      'the TakenOver Event',
      async () => (await api.events('shared')).find((e) => e.reason === 'TakenOver'),
      15_000,
    );
    expect(takeOverEvent.message).toContain(`${ns}/inst-a`);
    await api.patch('shared', { spec: { suspend: true } });
  }, 120_000);

  it('while both watch the object, the acting installation keeps it past the bound — also through a long run held by Forbid, when it writes nothing', async () => {
    const { api, name: ns } = await namespace('bothwatch');
    const inst = await twoLeases(ns);
    // Every 2 s, each run 2 bounds long: slots are due (and held) all the time, and A writes nothing while its run runs.
    const runFor = `${Math.ceil((2 * BOUND_MS) / 1000)}s`;
    const sj = await api.create(
      singletonJob(
        'shared',
        { schedule: '*/2 * * * * *' },
        { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': runFor } },
      ),
    );
    const a = await controller(ns, { lease: inst.lease('inst-a'), rbac: 'cluster' });
    void a.lead(inst.leader('inst-a', 'a-0', inst.termA));
    await eventually('A to act', async () => (await api.get('shared')).status?.activeRun?.jobUID);
    const b = await controller(ns, { lease: inst.lease('inst-b'), rbac: 'cluster' });
    void b.lead(inst.leader('inst-b', 'b-0', inst.termB));
    await eventually('B to stand by', async () => (await api.get('shared')).status?.contender === `${ns}/inst-b`);

    const until = Date.now() + 2 * BOUND_MS + 6000;
    while (Date.now() < until) {
      const s = (await api.get('shared')).status!;
      expect(s.leaderLease).toBe(`${ns}/inst-a`);
      expect(s.leaderTerm).toBe(inst.termA);
      await sleep(1000);
    }
    const jobs = await api.jobs(sj);
    expect(jobs.length).toBeGreaterThanOrEqual(2); // A's run ended and A started the next one
    expect(new Set(jobs.map((j) => j.metadata!.annotations![Keys.term]))).toEqual(new Set([String(inst.termA)]));
    expect((await api.events('shared')).some((e) => e.reason === 'TakenOver')).toBe(false);
    await api.patch('shared', { spec: { suspend: true } });
  }, 120_000);
});
