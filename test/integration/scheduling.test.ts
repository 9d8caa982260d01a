// Scheduling beyond CronJob (issue 14), against the real control plane:
// stalled runs end instead of holding the schedule, the template is checked
// on apply, Queue never overlaps, pause after failures and resume, and the
// next run visible in status and in `kubectl get`.

import { eventually } from '../support/cluster.ts';
import { installedKubeConfig } from '../support/installed.ts';
import {
  Api,
  controllerTestEnv,
  fakeLeadership,
  kubectl,
  podOverlapMonitor,
  singletonJob,
  conditionOf as condition,
  whenConditionTrue,
} from '../support/singletonjobs.ts';
import { Keys } from '../../src/api/v1alpha1/singletonjob.ts';
import type { SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';

const env = controllerTestEnv();
const { cluster, kc } = env;

/** A namespace with its own controller leading in it (retries after 0.5 s). */
async function namespace(prefix: string): Promise<{ name: string; api: Api }> {
  const ns = await env.namespace(prefix);
  const c = await env.controller(ns.name, { retryBackoffMs: 500 });
  void c.lead(fakeLeadership(1000));
  return ns;
}

const withSpec = (
  name: string,
  spec: Record<string, unknown>,
  podSpec: Record<string, unknown> = {},
  podMeta: Record<string, unknown> = {},
): SingletonJob => {
  const sj = singletonJob(name, spec, podMeta as { labels?: Record<string, string> });
  Object.assign(sj.spec.jobTemplate.spec!.template.spec!, podSpec);
  return sj;
};

describe('a run that cannot start (issue 14 item 2)', () => {
  it('Pods that cannot be created (missing ServiceAccount): RunStalled (Ready=True RunStalled: the object itself is fine) before the deadline, then ended, and the next slot runs', async () => {
    const { api } = await namespace('stall-sa');
    await api.create(
      withSpec(
        'no-sa',
        { schedule: '*/5 * * * * *', podStartDeadlineSeconds: 20 },
        { serviceAccountName: 'does-not-exist' },
      ),
    );
    const stalled = await whenConditionTrue(api, 'no-sa', 'RunStalled', 40_000);
    expect(condition(stalled, 'RunStalled')!.reason).toBe('FailedCreate');
    expect(condition(stalled, 'RunStalled')!.message).toContain('does-not-exist');
    expect(condition(stalled, 'Ready')).toMatchObject({ status: 'True', reason: 'RunStalled' });
    expect(stalled.status!.activeRun).toBeDefined();
    const ended = await eventually(
      'the run ended as Stalled',
      async () => {
        const sj = await api.get('no-sa');
        return sj.status?.recentRuns?.find((r) => r.outcome === 'Stalled') && sj;
      },
      40_000,
    );
    expect(ended.status!.recentRuns![0]!.name).toBe(stalled.status!.activeRun!.name);
    // The schedule goes on: a later slot is reserved (it stalls too — the template is still broken).
    await eventually(
      'a later run',
      async () => {
        const sj = await api.get('no-sa');
        return Boolean(sj.status?.activeRun && sj.status.activeRun.name !== stalled.status!.activeRun!.name);
      },
      20_000,
    );
    await eventually(
      'the RunStalled Event',
      async () => (await api.events('no-sa')).some((e) => e.reason === 'RunStalled'),
      15_000,
    );
    await api.patch('no-sa', { spec: { suspend: true } });
  });

  it('without `list` on events (the chart up to 0.1.0 granted only create): still RunStalled, with reason PodNotCreated naming the permission, ended at the deadline, and the next slot runs', async () => {
    const ns = await env.namespace('stall-rbac');
    // The chart's own RBAC for this namespace, minus `list` on events, under a ServiceAccount of its own.
    const restricted = await installedKubeConfig(kc, cluster.kubeconfig, 'namespaced', [ns.name], {
      release: 'singleton-operator-no-event-list',
      edit: (rules) =>
        rules
          .map((r) => (r.resources?.includes('events') ? { ...r, verbs: r.verbs.filter((v) => v !== 'list') } : r))
          .filter((r) => r.verbs.length > 0),
    });
    void (await env.controller(ns.name, { kubeConfig: restricted, retryBackoffMs: 500 })).lead(fakeLeadership(1000));
    const { api } = ns;
    await api.create(
      withSpec(
        'no-sa',
        { schedule: '*/5 * * * * *', podStartDeadlineSeconds: 15 },
        { serviceAccountName: 'does-not-exist' },
      ),
    );
    const stalled = await whenConditionTrue(api, 'no-sa', 'RunStalled', 40_000);
    expect(condition(stalled, 'RunStalled')).toMatchObject({ reason: 'PodNotCreated' });
    expect(condition(stalled, 'RunStalled')!.message).toContain('`list` on events');
    expect(condition(stalled, 'Ready')).toMatchObject({ status: 'True', reason: 'RunStalled' });
    const first = stalled.status!.activeRun!.name;
    await eventually(
      'the run ended as Stalled and a later one reserved',
      async () => {
        const sj = await api.get('no-sa');
        return (
          sj.status?.recentRuns?.some((r) => r.name === first && r.outcome === 'Stalled') &&
          sj.status.activeRun &&
          sj.status.activeRun.name !== first
        );
      },
      60_000,
    );
    await api.patch('no-sa', { spec: { suspend: true } });
  });

  it('an unschedulable Pod: Stalled with reason Unschedulable', async () => {
    const { api } = await namespace('stall-sched');
    await api.create(withSpec('nowhere', { podStartDeadlineSeconds: 60 }, { nodeSelector: { 'no-such-label': 'x' } }));
    await api.patch('nowhere', { metadata: { annotations: { [Keys.runNow]: 'r1' } } });
    const sj = await whenConditionTrue(api, 'nowhere', 'RunStalled', 40_000);
    expect(condition(sj, 'RunStalled')!.reason).toBe('Unschedulable');
    expect(condition(sj, 'Ready')!.reason).toBe('RunStalled');
  });
});

describe('the template checked on apply (issue 14 item 3)', () => {
  it('a Job the API server refuses is Ready=False with its message within seconds, long before the first slot', async () => {
    const { api } = await namespace('dryrun');
    const started = Date.now();
    await api.create(withSpec('bad', { schedule: '@yearly' }, { containers: [{ name: 'main' }] }));
    const sj = await eventually(
      'Ready=False JobRejected',
      async () => {
        const live = await api.get('bad');
        return condition(live, 'Ready')?.reason === 'JobRejected' && live;
      },
      15_000,
    );
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(condition(sj, 'Ready')!.message).toMatch(/image/i);
    expect(sj.status!.activeRun).toBeUndefined();
    // Fixed on the next apply.
    await api.patch('bad', {
      spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'main', image: 'busybox' }] } } } } },
    });
    await eventually(
      'Ready=True again',
      async () => condition(await api.get('bad'), 'Ready')?.status === 'True',
      15_000,
    );
  });
});

describe('concurrencyPolicy Queue (issue 14 item 4)', () => {
  it('runs a slot due during a run right after it, one at a time, skipping the rest', async () => {
    const { api, name: ns } = await namespace('queue');
    const overlap = await podOverlapMonitor(kc, ns);
    await api.create(
      singletonJob(
        'queued',
        { schedule: '*/2 * * * * *', concurrencyPolicy: 'Queue' },
        { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '5s' } },
      ),
    );
    const queued = await eventually(
      'a queued slot',
      async () => {
        const sj = await api.get('queued');
        return sj.status?.queuedSlot ? sj : undefined;
      },
      20_000,
    );
    expect(queued.status!.nextScheduleTime).toBe(queued.status!.queuedSlot);
    const status = await eventually(
      'three runs and skipped slots',
      async () => {
        const s = (await api.get('queued')).status;
        return (s?.recentRuns?.length ?? 0) >= 3 && (s?.skippedSlots ?? 0) > 0 && s;
      },
      40_000,
    );
    // The queued slots ran back to back: each run's slot is one the previous run had queued.
    expect(status.recentRuns!.every((r) => r.outcome === 'Succeeded')).toBe(true);
    await api.patch('queued', { spec: { suspend: true } });
    expect(overlap.max('queued')).toBe(1);
    overlap.stop();
  });
});

describe('pause on failure (issue 14 item 6)', () => {
  it('pauses scheduled runs after N failures in a row, and one annotation resumes them', async () => {
    const { api } = await namespace('pause');
    await api.create(
      singletonJob(
        'flaky',
        { schedule: '*/2 * * * * *', suspendAfterFailures: 2 },
        { labels: { 'pod-container-running-failed.stage.kwok.x-k8s.io': 'true' } },
      ),
    );
    const paused = await eventually(
      'Paused=True',
      async () => {
        const sj = await api.get('flaky');
        return condition(sj, 'Paused')?.status === 'True' && !sj.status?.activeRun && sj;
      },
      40_000,
    );
    expect(paused.status!.consecutiveFailures).toBe(2);
    expect(condition(paused, 'Ready')).toMatchObject({ status: 'True', reason: 'PausedAfterFailures' });
    expect(paused.status!.nextScheduleTime).toBeUndefined();
    const runs = paused.status!.recentRuns!.length;
    await new Promise((r) => setTimeout(r, 5000));
    expect((await api.get('flaky')).status!.recentRuns!.length).toBe(runs);
    await eventually(
      'the PausedAfterFailures Event',
      async () => (await api.events('flaky')).some((e) => e.reason === 'PausedAfterFailures'),
      15_000,
    );

    kubectl(cluster.kubeconfig, [
      'annotate',
      'singletonjob',
      'flaky',
      '-n',
      api.ns,
      `${Keys.resume}=first`,
      '--overwrite',
    ]);
    await eventually(
      'runs again after the resume',
      async () => ((await api.get('flaky')).status?.recentRuns?.length ?? 0) > runs,
      20_000,
    );
    // It keeps failing: paused again after two more.
    await eventually(
      'paused again',
      async () => {
        const sj = await api.get('flaky');
        return (
          condition(sj, 'Paused')?.status === 'True' &&
          sj.status?.lastResumeId === 'first' &&
          (sj.status?.recentRuns?.length ?? 0) >= runs + 2
        );
      },
      30_000,
    );
  });
});

describe('backfill (issue 14 item 7)', () => {
  it('runs the slots of a past range one after another, oldest first, each with its own token, also while suspended', async () => {
    const { api, name: ns } = await namespace('backfill');
    const overlap = await podOverlapMonitor(kc, ns);
    await api.create(
      singletonJob(
        'late',
        { schedule: '*/2 * * * * *', suspend: true },
        { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '1s' } },
      ),
    );
    const to = new Date(Math.floor(Date.now() / 2000) * 2000 - 2000);
    const from = new Date(to.getTime() - 8000);
    kubectl(cluster.kubeconfig, [
      'annotate',
      'singletonjob',
      'late',
      '-n',
      ns,
      `${Keys.backfill}=${from.toISOString()}/${to.toISOString()}`,
    ]);
    const status = await eventually(
      'the backfill to complete',
      async () => {
        const s = (await api.get('late')).status;
        return s?.backfill?.completed ? s : undefined;
      },
      60_000,
    );
    const runs = [...status.recentRuns!].reverse().filter((r) => r.kind === 'Backfill');
    expect(runs.map((r) => r.slot)).toEqual([2, 4, 6, 8].map((s) => new Date(from.getTime() + s * 1000).toISOString()));
    expect(runs.every((r) => r.outcome === 'Succeeded')).toBe(true);
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.token).toBeGreaterThan(runs[i - 1]!.token);
    expect(status.backfill!.runs).toBe(4);
    expect(overlap.max('late')).toBe(1);
    overlap.stop();
    // A request that cannot be honoured is refused with the reason, and nothing runs.
    kubectl(cluster.kubeconfig, [
      'annotate',
      'singletonjob',
      'late',
      '-n',
      ns,
      `${Keys.backfill}=${new Date().toISOString()}/${new Date(Date.now() + 3_600_000).toISOString()}`,
      '--overwrite',
    ]);
    const refused = await eventually(
      'the refusal',
      async () => (await api.events('late')).find((e) => e.reason === 'BackfillRefused'),
      15_000,
    );
    expect(refused.message).toContain('future');
  });

  it('schedules: runs at the slots of every schedule of the object', async () => {
    const { api } = await namespace('multi');
    await api.create(singletonJob('two', { schedules: ['*/3 * * * * *', '*/5 * * * * *'] }));
    const status = await eventually(
      'runs at both schedules',
      async () => {
        const s = (await api.get('two')).status;
        const seconds = (s?.recentRuns ?? []).map((r) => new Date(r.slot!).getUTCSeconds());
        return seconds.some((x) => x % 3 === 0 && x % 5 !== 0) && seconds.some((x) => x % 5 === 0 && x % 3 !== 0)
          ? s
          : undefined;
      },
      30_000,
    );
    const slots = status.recentRuns!.map((r) => r.slot);
    expect(new Set(slots).size).toBe(slots.length);
    expect(
      kubectlFails([
        '-n',
        api.ns,
        'patch',
        'singletonjob',
        'two',
        '--type=merge',
        '-p',
        '{"spec":{"schedule":"* * * * *"}}',
      ]),
    ).toContain('set schedule or schedules, not both');
    await api.patch('two', { spec: { suspend: true } });
  });
});

function kubectlFails(args: string[]): string {
  try {
    kubectl(cluster.kubeconfig, args);
    return '';
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? err);
  }
}

describe('the next run, visible (issue 14 item 1)', () => {
  it('status.nextScheduleTime and the printer columns', async () => {
    const { api } = await namespace('next');
    await api.create(singletonJob('hourly', { schedule: '0 * * * *', timeZone: 'Europe/Berlin' }));
    const sj = await eventually(
      'nextScheduleTime',
      async () => {
        const live = await api.get('hourly');
        return live.status?.nextScheduleTime ? live : undefined;
      },
      15_000,
    );
    const next = new Date(sj.status!.nextScheduleTime!);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(3_600_000);
    expect(next.getUTCMinutes()).toBe(0);
    const table = kubectl(cluster.kubeconfig, ['get', 'singletonjobs', '-n', api.ns]);
    expect(table).toMatch(/TIME ZONE\s+SUSPEND\s+READY/);
    expect(table).toContain('NEXT RUN');
    expect(table).toContain('Europe/Berlin');
    expect(table).toContain('True');
  });
});
