// The controller against the real control plane (Jobs really run on the kwok
// node): one run per slot, Forbid, Replace, manual runs, suspend, history
// pruning and bad objects. Schedules use the optional seconds field to keep
// the tests short. Assertions are on cluster state, not on call sequences.
import { testCluster, withNamespace, eventually } from '../support/cluster.ts';
import {
  Api,
  fakeLeadership,
  installCrd,
  isComplete,
  podOverlapMonitor,
  singletonJob,
  startController,
  token,
} from '../support/singletonjobs.ts';
import type { RunningController, FakeLeadership } from '../support/singletonjobs.ts';
import { Keys } from '../../src/api/v1alpha1/singletonjob.ts';
import { RunEnv } from '../../src/controller/index.ts';

const cluster = testCluster();
const kc = cluster.kubeConfig();
const TERM = 1000;
const inFlight = (delay: string) => ({ annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': delay } });
let ns: { name: string; cleanup: () => Promise<void> };
let api: Api;
let running: RunningController;
let leadership: FakeLeadership;
let overlap: Awaited<ReturnType<typeof podOverlapMonitor>>;

beforeAll(async () => {
  await installCrd(cluster.kubeconfig);
  ns = await withNamespace(kc, 'ctl');
  api = new Api(kc, ns.name);
  overlap = await podOverlapMonitor(kc, ns.name);
  running = await startController(kc, [ns.name], { rbac: 'cluster' });
  leadership = fakeLeadership(TERM);
  void running.lead(leadership);
});
afterAll(async () => {
  leadership.lose();
  overlap.stop();
  await running.stop();
  await ns.cleanup();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('scheduled runs', () => {
  it('start one run per slot, stamp the token everywhere, and the Jobs complete', async () => {
    const sj = await api.create(singletonJob('every2s', { schedule: '*/2 * * * * *', successfulJobsHistoryLimit: 10 }));
    const jobs = await eventually(
      'three completed runs',
      async () => {
        const js = await api.jobs(sj);
        return js.filter(isComplete).length >= 3 ? js : undefined;
      },
      40_000,
    );
    const slots = jobs.map((j) => j.metadata!.annotations![Keys.slot]);
    expect(new Set(slots).size).toBe(slots.length);
    const tokens = jobs.map(token);
    expect(tokens[0]).toBeGreaterThanOrEqual(TERM);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
    const job = jobs[0]!;
    expect(job.spec).toMatchObject({ parallelism: 1, completions: 1, podReplacementPolicy: 'Failed', backoffLimit: 0 });
    expect(job.metadata!.name).toBe(`every2s-${Date.parse(job.metadata!.annotations![Keys.slot]!) / 1000}`);
    expect(job.metadata!.ownerReferences![0]).toMatchObject({
      kind: 'SingletonJob',
      name: 'every2s',
      uid: sj.metadata!.uid,
      controller: true,
    });
    const pod = job.spec!.template;
    expect(pod.metadata!.annotations![Keys.token]).toBe(String(token(job)));
    const env = Object.fromEntries((pod.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    expect(env[RunEnv.token]).toBe(String(token(job)));
    expect(env[RunEnv.singletonJob]).toBe('every2s');
    expect(env[RunEnv.slot]).toBe(job.metadata!.annotations![Keys.slot]);
    const status = await eventually('status to record a success', async () => {
      const s = (await api.get('every2s')).status;
      return s?.lastSuccessfulTime && s.recentRuns?.some((r) => r.outcome === 'Succeeded') ? s : undefined;
    });
    expect(status.currentToken).toBeGreaterThanOrEqual(tokens[tokens.length - 1]!);
    expect(status.leaderTerm).toBe(TERM);
    expect(status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Scheduled' });
    // Events are written off the critical path (src/controller/cluster/events.ts): wait for them.
    await eventually(
      'the RunStarted and RunFinished Events',
      async () => {
        const events = await api.events('every2s');
        return (
          events.some((e) => e.reason === 'RunStarted' && e.message?.includes(`fencing token ${tokens[0]}`)) &&
          events.some((e) => e.reason === 'RunFinished' && e.message?.includes('succeeded'))
        );
      },
      15_000,
    );
    await api.patch('every2s', { spec: { suspend: true } });
    expect(overlap.max('every2s')).toBe(1);
  });

  it('Forbid holds the slot while a run is in flight; held slots past their deadline are skipped', async () => {
    const sj = await api.create(
      singletonJob('forbid', { schedule: '*/2 * * * * *', startingDeadlineSeconds: 1 }, inFlight('6s')),
    );
    const first = await eventually('the first run', async () => (await api.jobs(sj))[0]);
    await sleep(4500);
    expect((await api.jobs(sj)).map((j) => j.metadata!.name)).toEqual([first.metadata!.name]);
    const second = await eventually(
      'a second run after the first finished',
      async () => {
        const js = await api.jobs(sj);
        return js.length >= 2 ? js[1] : undefined;
      },
      30_000,
    );
    const status = (await api.get('forbid')).status!;
    const finished = status.recentRuns?.find((r) => r.name === first.metadata!.name);
    expect(finished?.outcome).toBe('Succeeded');
    expect(token(second)).toBeGreaterThan(token(first));
    expect(status.skippedSlots).toBeGreaterThan(0);
    await eventually(
      'the RunHeld and SlotsSkipped Events',
      async () => {
        const reasons = (await api.events('forbid')).map((e) => e.reason);
        return reasons.includes('RunHeld') && reasons.includes('SlotsSkipped');
      },
      15_000,
    );
    await api.patch('forbid', { spec: { suspend: true } });
    expect(overlap.max('forbid')).toBe(1);
  });

  it('Replace deletes the running Job and starts the next run only once its Pods are gone', async () => {
    const sj = await api.create(
      singletonJob('replace', { schedule: '*/3 * * * * *', concurrencyPolicy: 'Replace' }, inFlight('60s')),
    );
    await eventually(
      'three runs',
      async () => {
        const s = (await api.get('replace')).status;
        return (s?.recentRuns?.filter((r) => r.outcome === 'Replaced').length ?? 0) >= 2;
      },
      40_000,
    );
    await eventually('the third run to have its Pod', async () => overlap.pods('replace') >= 3);
    await api.patch('replace', { spec: { suspend: true } });
    expect(overlap.max('replace')).toBe(1);
    await eventually(
      'the RunReplacing Event',
      async () => (await api.events('replace')).some((e) => e.reason === 'RunReplacing'),
      15_000,
    );
    const jobs = await api.jobs(sj);
    expect(jobs.filter((j) => !j.metadata?.deletionTimestamp).length).toBeLessThanOrEqual(1);
  });
});

describe('manual runs, suspend, history', () => {
  it('a manual request runs once and obeys Forbid', async () => {
    const sj = await api.create(singletonJob('manual', {}, inFlight('4s')));
    await api.patch('manual', { metadata: { annotations: { [Keys.runNow]: 'r1' } } });
    const r1 = await eventually('run r1', async () => (await api.jobs(sj))[0]);
    expect(r1.metadata!.annotations![Keys.requestId]).toBe('r1');
    await api.patch('manual', { metadata: { annotations: { [Keys.runNow]: 'r2' } } });
    await sleep(1500);
    expect((await api.jobs(sj)).length).toBe(1);
    const r2 = await eventually('run r2 after r1 finished', async () => (await api.jobs(sj))[1], 30_000);
    expect(r2.metadata!.annotations![Keys.requestId]).toBe('r2');
    expect(token(r2)).toBeGreaterThan(token(r1));
    const status = (await api.get('manual')).status!;
    expect(status.recentRuns?.[0]).toMatchObject({
      name: r1.metadata!.name,
      kind: 'Manual',
      requestId: 'r1',
      outcome: 'Succeeded',
    });
    expect(status.lastManualRequestId).toBe('r2');
    expect(overlap.max('manual')).toBe(1);
  });

  it('suspend stops scheduled runs; resuming runs the latest slot once', async () => {
    const sj = await api.create(singletonJob('suspended', { schedule: '* * * * * *', suspend: true }));
    await eventually('Ready=True Suspended', async () =>
      (await api.get('suspended')).status?.conditions?.find((c) => c.reason === 'Suspended'),
    );
    await sleep(3000);
    expect(await api.jobs(sj)).toHaveLength(0);
    await api.patch('suspended', { spec: { suspend: false, startingDeadlineSeconds: 30 } });
    await eventually('a run after resuming', async () => (await api.jobs(sj)).length >= 1);
    await api.patch('suspended', { spec: { suspend: true } });
    const status = (await api.get('suspended')).status!;
    expect(status.skippedSlots).toBeGreaterThan(0);
  });

  it('history limits prune finished Jobs, never the active one', async () => {
    const sj = await api.create(
      singletonJob('pruned', { schedule: '*/2 * * * * *', successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 1 }),
    );
    const failing = await api.create(
      singletonJob(
        'failing',
        { schedule: '*/2 * * * * *', successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 1 },
        { labels: { 'pod-container-running-failed.stage.kwok.x-k8s.io': 'true' } },
      ),
    );
    await eventually(
      'four finished runs of each',
      async () => {
        const [a, b] = await Promise.all([api.get('pruned'), api.get('failing')]);
        return (a.status?.recentRuns?.length ?? 0) >= 4 && (b.status?.recentRuns?.length ?? 0) >= 4;
      },
      45_000,
    );
    await api.patch('pruned', { spec: { suspend: true } });
    await api.patch('failing', { spec: { suspend: true } });
    const failed = (await api.get('failing')).status!.recentRuns!;
    expect(failed.every((r) => r.outcome === 'Failed')).toBe(true);
    await eventually(
      'pruning down to the limits',
      async () => {
        const [ok, bad] = await Promise.all([api.jobs(sj), api.jobs(failing)]);
        const live = (js: typeof ok) => js.filter((j) => !j.metadata?.deletionTimestamp);
        return live(ok).length <= 2 && live(bad).length <= 2 && live(ok).filter(isComplete).length <= 1;
      },
      20_000,
    );
  });
});

describe('bad objects', () => {
  it('get Ready=False and an Event naming the problem, and never stop the others', async () => {
    await api.create(singletonJob('bad-cron', { schedule: '61 * * * *' }));
    await api.create(singletonJob('bad-zone', { schedule: '0 * * * *', timeZone: 'Mars/Olympus' }));
    const good = await api.create(singletonJob('still-good', {}));
    const ready = await eventually('Ready=False on both', async () => {
      const [a, b] = await Promise.all([api.get('bad-cron'), api.get('bad-zone')]);
      const ca = a.status?.conditions?.find((c) => c.type === 'Ready');
      const cb = b.status?.conditions?.find((c) => c.type === 'Ready');
      return ca?.status === 'False' && cb?.status === 'False' ? [ca, cb] : undefined;
    });
    expect(ready[0]).toMatchObject({ reason: 'InvalidSchedule' });
    expect(ready[0]!.message).toContain('"61 * * * *" is not a valid cron expression');
    expect(ready[1]).toMatchObject({ reason: 'InvalidTimeZone' });
    expect(ready[1]!.message).toContain('Mars/Olympus');
    await eventually(
      'the InvalidTimeZone Event',
      async () => (await api.events('bad-zone')).some((e) => e.reason === 'InvalidTimeZone' && e.type === 'Warning'),
      15_000,
    );
    await api.patch('still-good', { metadata: { annotations: { [Keys.runNow]: 'go' } } });
    await eventually('the good one to run', async () => (await api.jobs(good)).some(isComplete));
    await api.patch('bad-zone', { spec: { timeZone: 'Europe/Berlin' } });
    await eventually('Ready=True once fixed', async () =>
      (await api.get('bad-zone')).status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True'),
    );
  });
});
