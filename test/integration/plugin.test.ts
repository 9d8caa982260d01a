// kubectl singleton (bin/kubectl-singleton) against the real control plane,
// with the controller running (Jobs really run on the kwok node): run now,
// backfill, history with tokens, outcomes and durations, next, suspend and
// resume, and the status view — in the namespace of the kubeconfig's context,
// like kubectl.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { testCluster, withNamespace, eventually } from '../support/cluster.ts';
import {
  Api,
  fakeLeadership,
  installCrd,
  kubectl,
  singletonJob,
  startController,
  token,
} from '../support/singletonjobs.ts';
import type { FakeLeadership, RunningController } from '../support/singletonjobs.ts';
import type { SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cluster = testCluster();
const kc = cluster.kubeConfig();
const TERM = 4000;
let ns: { name: string; cleanup: () => Promise<void> };
let api: Api;
let running: RunningController;
let leadership: FakeLeadership;
let dir: string;
let kubeconfig: string;

beforeAll(async () => {
  await installCrd(cluster.kubeconfig);
  ns = await withNamespace(kc, 'plugin');
  api = new Api(kc, ns.name);
  running = await startController(kc, [ns.name]);
  leadership = fakeLeadership(TERM);
  void running.lead(leadership);
  // A kubeconfig whose context names the namespace: the plugin must use it when -n is not given.
  dir = mkdtempSync(path.join(tmpdir(), 'plugin-'));
  kubeconfig = path.join(dir, 'kubeconfig');
  copyFileSync(cluster.kubeconfig, kubeconfig);
  kubectl(kubeconfig, ['config', 'set-context', '--current', `--namespace=${ns.name}`]);
});
afterAll(async () => {
  leadership.lose();
  await running.stop();
  await ns.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function plugin(...args: string[]): string {
  const res = spawnSync(path.join(root, 'bin/kubectl-singleton'), ['--kubeconfig', kubeconfig, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (res.status !== 0) throw new Error(`kubectl singleton ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
  return res.stdout;
}

interface HistoryRow {
  job: string;
  token: number;
  term: number;
  kind: string;
  outcome: string;
  started: string;
  duration: string;
}
function history(name: string): HistoryRow[] {
  const [header, ...rows] = plugin('history', name).trim().split('\n');
  expect(header).toMatch(/^JOB\s+TOKEN\s+TERM\s+KIND\s+OUTCOME\s+STARTED\s+DURATION$/);
  return rows.map((r) => {
    const [job, tok, term, kind, outcome, started, duration] = r.trim().split(/\s+/);
    return {
      job: job!,
      token: Number(tok),
      term: Number(term),
      kind: kind!,
      outcome: outcome!,
      started: started ?? '',
      duration: duration ?? '',
    };
  });
}

describe('kubectl singleton against a live SingletonJob', () => {
  it('runs now, backfills, shows the history with tokens and durations and the next slot, suspends and resumes', async () => {
    const created = await api.create(
      singletonJob('yearly', { schedule: '0 0 1 1 *', timeZone: 'UTC', successfulJobsHistoryLimit: 10 }),
    );
    const next = await eventually('the next slot', async () => {
      const out = plugin('next', 'yearly').trim();
      return out.includes(': next slot ') ? out : undefined;
    });
    const year = new Date().getUTCFullYear() + 1;
    expect(next).toBe(`${ns.name}/yearly: next slot ${year}-01-01T00:00:00.000Z (schedule 0 0 1 1 * UTC)`);

    // Run now: one Manual run, in the context's namespace.
    expect(plugin('run', 'yearly')).toMatch(
      new RegExp(`^Requested a run of ${ns.name}/yearly \\(request id kubectl-\\S+\\)`),
    );
    const manual = await eventually('the manual run to succeed', async () => {
      const rows = history('yearly');
      return rows.length === 1 && rows[0]!.outcome === 'Succeeded' ? rows[0] : undefined;
    });
    expect(manual).toMatchObject({ kind: 'Manual', term: TERM });
    expect(manual.token).toBeGreaterThanOrEqual(TERM);
    expect(manual.started).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(manual.duration).toMatch(/^(\d+h)?(\d+m)?\d+s$/);

    // Backfill two past slots: they run one after another, oldest first, each with its own token.
    const from = `${year - 3}-12-31T00:00:00Z`;
    const to = `${year - 1}-01-01T00:00:00Z`;
    expect(plugin('backfill', 'yearly', from, to)).toContain(
      `Requested a backfill of ${ns.name}/yearly for the slots in (${from}, ${to}]`,
    );
    const rows = await eventually(
      'both backfill runs to succeed',
      async () => {
        const r = history('yearly');
        return r.filter((x) => x.kind === 'Backfill' && x.outcome === 'Succeeded').length === 2 ? r : undefined;
      },
      60_000,
    );
    expect(rows.map((r) => [r.kind, r.outcome])).toEqual([
      ['Backfill', 'Succeeded'],
      ['Backfill', 'Succeeded'],
      ['Manual', 'Succeeded'],
    ]);
    // Newest first, tokens strictly decreasing down the list, and each the token its Job carries.
    for (let i = 1; i < rows.length; i++) expect(rows[i - 1]!.token).toBeGreaterThan(rows[i]!.token);
    const jobs = new Map((await api.jobs(created)).map((j) => [j.metadata!.name!, token(j)]));
    for (const r of rows) expect({ job: r.job, token: jobs.get(r.job) }).toEqual({ job: r.job, token: r.token });
    const sj = await api.get('yearly');
    expect(sj.status?.backfill).toMatchObject({
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      runs: 2,
      completed: true,
    });

    // Suspend and resume.
    expect(plugin('suspend', 'yearly').trim()).toBe(
      `Suspended ${ns.name}/yearly: no scheduled runs (a run in flight continues)`,
    );
    expect((await api.get('yearly')).spec.suspend).toBe(true);
    expect(plugin('next', 'yearly').trim()).toBe(
      `${ns.name}/yearly is suspended (schedule 0 0 1 1 *): kubectl singleton resume yearly`,
    );
    expect(plugin('resume', 'yearly').trim()).toBe(`Resumed ${ns.name}/yearly`);
    const resumed: SingletonJob = await api.get('yearly');
    expect(resumed.spec.suspend).toBe(false);
    expect(resumed.metadata?.annotations?.['singleton.dev/resume']).toMatch(/^kubectl-/);
  });

  it('shows the leader from the Lease and every SingletonJob with its token and term', async () => {
    const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    await coordination.createNamespacedLease({
      namespace: ns.name,
      body: {
        metadata: { name: 'singleton-operator' },
        spec: { holderIdentity: 'operator-0_1234', leaseDurationSeconds: 15, leaseTransitions: 2 },
      },
    });
    const sj = await api.get('yearly');
    const out = plugin('--operator-namespace', ns.name, '--lease', 'singleton-operator');
    expect(out).toContain('LEADER    operator-0_1234');
    expect(out).toContain(`LEASE     ${ns.name}/singleton-operator  transitions=2`);
    const row = out.split('\n').find((l) => l.trim().startsWith(`${ns.name} `) && l.includes('yearly'));
    expect(row?.trim().split(/\s+/)).toEqual(
      expect.arrayContaining([
        ns.name,
        'yearly',
        '0',
        '0',
        '1',
        '1',
        '*',
        'UTC',
        String(sj.status!.currentToken),
        String(TERM),
      ]),
    );
  });
});
