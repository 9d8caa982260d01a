// Fencing across leaders, against the real control plane. The elector is
// bypassed: each controller is handed a Leadership directly, which also lets
// two controllers act at once — the case the API server itself must settle.
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
import type { SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';
import { manualRunName } from '../../src/controller/rules/naming.ts';
import { buildJob } from '../../src/controller/rules/jobs.ts';
import { statusCode, apiMessage } from '../../src/kube/errors.ts';

const { kc, namespace, controller } = controllerTestEnv();

async function finishedRun(api: Api, name: string, runName: string) {
  return eventually(`run ${runName} recorded as finished`, async () =>
    (await api.get(name)).status?.recentRuns?.find((r) => r.name === runName),
  );
}

describe('tokens', () => {
  it('strictly increase across runs and across a leader change, and the deposed leader is refused', async () => {
    const { api, name: ns } = await namespace('fence');
    const sj = await api.create(singletonJob('handover', {}));
    const first = await controller(ns);
    const old = fakeLeadership(2000, 'old');
    const oldLead = first.lead(old);
    await requestRun(api, 'handover', 'r1');
    const r1 = await eventually('run r1', async () => (await api.jobs(sj))[0]);
    await finishedRun(api, 'handover', r1.metadata!.name!);
    await requestRun(api, 'handover', 'r2');
    const r2 = await eventually('run r2', async () => (await api.jobs(sj))[1]);
    await finishedRun(api, 'handover', r2.metadata!.name!);
    // At least the term, and at least the revision each reservation was computed from.
    expect(token(r1)).toBeGreaterThanOrEqual(2000);
    expect(token(r2)).toBeGreaterThan(token(r1));

    old.lose();
    const stoppedWithin = await Promise.race([
      oldLead.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 3000)),
    ]);
    expect(stoppedWithin).toBe(true);

    const second = await controller(ns);
    const successor = fakeLeadership(3000, 'new');
    void second.lead(successor);
    await requestRun(api, 'handover', 'r3');
    const r3 = await eventually('run r3', async () => (await api.jobs(sj))[2]);
    expect(token(r3)).toBeGreaterThanOrEqual(3000);
    expect(token(r3)).toBeGreaterThan(token(r2));
    expect(r3.metadata!.annotations![Keys.term]).toBe('3000');
    await finishedRun(api, 'handover', r3.metadata!.name!);
    const status = (await api.get('handover')).status!;
    expect(status.currentToken).toBe(token(r3));
    expect(status.leaderTerm).toBe(3000);

    // A write the old leader had in flight (computed from the current object, so the CAS alone would pass) is refused by CEL.
    const current = await api.get('handover');
    const zombie = { ...current, status: { ...current.status, leaderTerm: 2000 } } as SingletonJob;
    const err = await api.replaceStatus(zombie).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(statusCode(err)).toBe(422);
    expect(apiMessage(err)).toContain('status.leaderTerm may not decrease');
    successor.lose();
  });

  it('a successor completes a reservation the paused leader never created, and the zombie create is harmless', async () => {
    const { api, name: ns } = await namespace('paused');
    const sj = await api.create(
      singletonJob('paused', { successfulJobsHistoryLimit: 0 }, {}, { annotations: { [Keys.runNow]: 'r1' } }),
    );
    // The deposed leader (term 4000) reserved run r1 and paused before creating its Job.
    const runName = manualRunName('paused', 'r1', 4000);
    const reservation = {
      name: runName,
      token: 4000,
      term: 4000,
      kind: 'Manual' as const,
      requestId: 'r1',
      reservedTime: new Date().toISOString(),
    };
    const reserved = await api.replaceStatus({
      ...sj,
      status: { currentToken: 4000, leaderTerm: 4000, lastManualRequestId: 'r1', activeRun: reservation },
    });

    const successor = fakeLeadership(5000, 'successor');
    void (await controller(ns)).lead(successor);
    const job = await eventually('the reserved Job', async () => (await api.jobs(sj))[0]);
    expect(job.metadata!.name).toBe(runName);
    expect(token(job)).toBe(4000);
    expect(job.metadata!.annotations![Keys.term]).toBe('4000');

    // The old leader wakes up and sends its create: the name is taken.
    const zombieCreate = await api.batch
      .createNamespacedJob({ namespace: api.ns, body: buildJob(reserved, reservation, { suspended: true }) })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(statusCode(zombieCreate)).toBe(409);
    const finished = await finishedRun(api, 'paused', runName);
    expect(finished).toMatchObject({ token: 4000, term: 4000, outcome: 'Succeeded' });

    // History limit 0 prunes the finished Job; a create delayed even longer
    // than that now succeeds, and the controller deletes the stray at once.
    await eventually('r1 to be pruned', async () => (await api.jobs(sj)).length === 0);
    // (The zombie runs the same code: its Job is created suspended and would
    // start only once its run recorded the Job's UID, which it cannot any more.)
    const late = await api.batch.createNamespacedJob({
      namespace: api.ns,
      body: buildJob(reserved, reservation, { suspended: true }),
    });
    await eventually('the stray Job to be deleted', async () => {
      const js = await api.jobs(sj);
      return js.every((j) => j.metadata!.uid !== late.metadata!.uid || j.metadata!.deletionTimestamp);
    });
    // The Event is written after the delete returns, so it may trail the deletion we just saw.
    const stray = await eventually('the StrayJobDeleted Event', async () =>
      (await api.events('paused')).find((e) => e.reason === 'StrayJobDeleted'),
    );
    expect(stray.type).toBe('Warning');

    // Another stray whose owner-uid label was edited by hand: the controlling
    // owner reference, not the label, ties a Job to its SingletonJob.
    const relabelled = buildJob(reserved, reservation, { suspended: true });
    relabelled.metadata = {
      ...relabelled.metadata,
      name: `${runName}-copy`,
      labels: { ...relabelled.metadata!.labels, [Keys.ownerUid]: 'edited-by-hand' },
    };
    const copy = await api.batch.createNamespacedJob({ namespace: api.ns, body: relabelled });
    await eventually('the relabelled stray Job to be deleted', async () => {
      const live = await api.batch
        .readNamespacedJob({ namespace: api.ns, name: copy.metadata!.name! })
        .catch(() => undefined);
      return !live || live.metadata?.uid !== copy.metadata!.uid || Boolean(live.metadata?.deletionTimestamp);
    });

    await requestRun(api, 'paused', 'r2');
    const r2 = await eventually('run r2', async () => (await api.jobs(sj)).find((j) => j.metadata!.name !== runName));
    expect(token(r2)).toBeGreaterThanOrEqual(5000);
    successor.lose();
  });
});

describe('two controllers acting at once', () => {
  it('create at most one Job per slot and never overlap runs', async () => {
    const { api, name: ns } = await namespace('split');
    const overlap = await podOverlapMonitor(kc, ns);
    const sjs = await Promise.all([
      api.create(singletonJob('split-a', { schedule: '*/2 * * * * *' })),
      api.create(
        singletonJob(
          'split-b',
          { schedule: '*/2 * * * * *' },
          { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '3s' } },
        ),
      ),
      api.create(
        singletonJob(
          'split-c',
          { schedule: '*/3 * * * * *', concurrencyPolicy: 'Replace' },
          { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '5s' } },
        ),
      ),
      api.create(singletonJob('split-manual', {})),
    ]);
    // Same term on purpose: only the resourceVersion preconditions and the deterministic names keep them apart.
    const a = fakeLeadership(6000, 'a');
    const b = fakeLeadership(6000, 'b');
    void (await controller(ns)).lead(a);
    void (await controller(ns)).lead(b);
    await requestRun(api, 'split-manual', 'once');
    await new Promise((r) => setTimeout(r, 12_000));
    for (const sj of sjs) await api.patch(sj.metadata!.name!, { spec: { suspend: true } });
    await new Promise((r) => setTimeout(r, 1000));
    for (const sj of sjs) {
      const name = sj.metadata!.name!;
      const jobs = await api.jobs(sj);
      const runs = jobs.map((j) => j.metadata!.annotations![Keys.slot] ?? j.metadata!.annotations![Keys.requestId]);
      expect({ name, duplicates: runs.length - new Set(runs).size }).toEqual({ name, duplicates: 0 });
      const tokens = jobs.map(token);
      expect(new Set(tokens).size).toBe(tokens.length);
      const recorded = (await api.get(name)).status?.recentRuns ?? [];
      expect(new Set(recorded.map((r) => r.name)).size).toBe(recorded.length);
      expect({ name, maxAlive: overlap.max(name) }).toEqual({ name, maxAlive: 1 });
      if (name === 'split-manual') expect(jobs).toHaveLength(1);
      else expect(jobs.length + recorded.filter((r) => r.outcome === 'Replaced').length).toBeGreaterThanOrEqual(2);
    }
    a.lose();
    b.lose();
    overlap.stop();
  });
});
