// The chart's Argo CD health check and resource actions
// (charts/singleton-operator/argocd/argocd-cm.yaml) under a real Lua 5.4, on
// SingletonJobs recorded from the real control plane in every state a user
// can see (test/fixtures/gitops/, written by test/integration/gitops-health.test.ts
// with RECORD_GITOPS_FIXTURES=1), and kstatus' verdict on the same objects
// (the real library, test/tools/kstatus). Skipped without lua5.4 or the
// kstatus binary, saying so.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { action, discovery, haveLua, health, luaMissing } from '../support/argocd.ts';
import { expected } from '../support/gitops-states.ts';
import { haveKstatus, kstatus, kstatusMissing } from '../support/kstatus.ts';
import { Keys, singletonJobSchema } from '../../src/api/v1alpha1/singletonjob.ts';
import type { SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/gitops');
const states: Record<string, SingletonJob> = Object.fromEntries(
  readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as SingletonJob]),
);
if (!haveLua) console.warn(`Argo CD health check tests skipped: ${luaMissing}`);
if (!haveKstatus) console.warn(`kstatus verdict tests skipped: ${kstatusMissing}`);
const withLua = haveLua ? it : it.skip;
const withKstatus = haveKstatus ? it : it.skip;

/** The same object as an operator before RunStalled wrote it: the run's stall as Stalled. */
function legacy(sj: SingletonJob): SingletonJob {
  const copy = structuredClone(sj);
  copy.status!.conditions = copy.status!.conditions!.map((c) =>
    c.type === 'RunStalled' ? { ...c, type: 'Stalled' } : c,
  );
  return copy;
}

describe('recorded SingletonJobs', () => {
  it('cover every state of the table', () => {
    expect(Object.keys(states).sort()).toEqual(Object.keys(expected).sort());
  });

  withLua('get the Argo CD health of their state', () => {
    for (const [name, sj] of Object.entries(states)) {
      const h = health(sj);
      expect([name, h.status]).toEqual([name, expected[name]!.argo]);
      if (expected[name]!.says) expect([name, h.message]).toEqual([name, expect.stringMatching(expected[name]!.says!)]);
    }
  });

  withKstatus('get the kstatus verdict of their state from the real library', () => {
    const names = Object.keys(states);
    const verdicts = kstatus(names.map((n) => states[n]));
    expect(Object.fromEntries(names.map((n, i) => [n, verdicts[i]!.status]))).toEqual(
      Object.fromEntries(names.map((n) => [n, expected[n]!.kstatus])),
    );
  });

  withKstatus(
    "a previous version's Stalled run is kstatus Failed (why it is RunStalled now); the health check reads it as a stalled run",
    () => {
      const old = legacy(states['stalled-run']!);
      expect(kstatus([old])[0]!.status).toBe('Failed');
      if (haveLua)
        expect(health(old)).toMatchObject({
          status: 'Healthy',
          message: expect.stringMatching(/^Run stalled \(FailedCreate\)/),
        });
    },
  );
});

describe('Argo CD resource actions', () => {
  withLua(
    'are offered as the state allows: suspend unless suspended, resume when suspended or paused after failures',
    () => {
      const offered = (name: string) =>
        Object.fromEntries(Object.entries(discovery(states[name])).map(([k, v]) => [k, !v.disabled]));
      expect(offered('idle')).toEqual({ 'run-now': true, suspend: true, resume: false });
      expect(offered('suspended')).toEqual({ 'run-now': true, suspend: false, resume: true });
      expect(offered('paused-after-failures')).toEqual({ 'run-now': true, suspend: true, resume: true });
    },
  );

  withLua(
    'run-now sets a new request id, suspend and resume set spec.suspend; the objects stay valid SingletonJobs',
    () => {
      const running = states.running!;
      const requested = action('run-now', running);
      expect(requested.metadata!.annotations![Keys.runNow]).toMatch(/^argocd-\d{8}T\d{6}Z$/);
      expect(requested.metadata!.annotations![Keys.runNow]).not.toBe(running.metadata!.annotations![Keys.runNow]);
      expect(action('suspend', states.idle!).spec.suspend).toBe(true);
      const resumed = action('resume', states.suspended!);
      expect(resumed.spec.suspend).toBe(false);
      expect(resumed.metadata!.annotations?.[Keys.resume]).toBeUndefined();
      for (const out of [requested, resumed, action('suspend', states.idle!)])
        expect(singletonJobSchema.safeParse(out).success).toBe(true);
    },
  );

  withLua(
    'resume ends a pause after failures with a new singleton.dev/resume value, leaving spec.suspend alone',
    () => {
      const paused = states['paused-after-failures']!;
      const resumed = action('resume', paused);
      expect(resumed.metadata!.annotations![Keys.resume]).toMatch(/^argocd-\d{8}T\d{6}Z$/);
      expect(resumed.spec.suspend).toBe(paused.spec.suspend);
    },
  );
});
