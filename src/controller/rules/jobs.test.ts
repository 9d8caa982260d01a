import type { ActiveRun, SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { guardViolations } from './prepare.ts';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import {
  buildJob,
  Env,
  finishedAfterItsPods,
  isOwnedBy,
  isPodTerminal,
  jobOutcome,
  jobToken,
  mayStillRunPods,
  projectJob,
  wasReleased,
} from './jobs.ts';

const sj = {
  apiVersion: 'singleton.dev/v1alpha1',
  kind: 'SingletonJob',
  metadata: { name: 'payroll', namespace: 'pay', uid: 'uid-1' },
  spec: {
    jobTemplate: {
      metadata: { labels: { team: 'pay' } },
      spec: {
        backoffLimit: 2,
        template: {
          metadata: { annotations: { note: 'x' } },
          spec: {
            initContainers: [{ name: 'init', image: 'busybox' }],
            containers: [
              {
                name: 'main',
                image: 'busybox',
                env: [
                  { name: 'KEEP', value: '1' },
                  { name: Env.token, value: 'forged' },
                ],
              },
              { name: 'side', image: 'busybox' },
            ],
          },
        },
      },
    },
  },
} as unknown as SingletonJob;

const run: ActiveRun = {
  name: 'payroll-1735689600',
  token: 42,
  term: 40,
  kind: 'Scheduled',
  slot: '2025-01-01T00:00:00.000Z',
  reservedTime: '2025-01-01T00:00:00.100Z',
};

describe('buildJob', () => {
  const job = buildJob(sj, run);

  it('forces singleton semantics and keeps the rest of the template', () => {
    expect(job.spec).toMatchObject({
      parallelism: 1,
      completions: 1,
      podReplacementPolicy: 'Failed',
      backoffLimit: 0,
      suspend: false,
    });
    expect(job.spec!.template.spec!.restartPolicy).toBe('Never');
    expect(job.metadata!.labels).toMatchObject({ team: 'pay', [Keys.ownerUid]: 'uid-1', [Keys.run]: run.name });
    expect(job.metadata!.ownerReferences).toEqual([
      {
        apiVersion: 'singleton.dev/v1alpha1',
        kind: 'SingletonJob',
        name: 'payroll',
        uid: 'uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });

  it('stamps the token on the Job, the Pod template and every container, overriding a forged value', () => {
    expect(job.metadata!.annotations![Keys.token]).toBe('42');
    expect(job.spec!.template.metadata!.annotations).toMatchObject({
      note: 'x',
      [Keys.token]: '42',
      [Keys.term]: '40',
      [Keys.slot]: run.slot,
    });
    const pod = job.spec!.template.spec!;
    for (const c of [...pod.containers, ...pod.initContainers!]) {
      const env = c.env!.filter((e) => e.name === Env.token);
      expect(env).toEqual([{ name: Env.token, value: '42' }]);
      expect(c.env!.find((e) => e.name === Env.run)?.value).toBe(run.name);
    }
    expect(pod.containers[0]!.env!.find((e) => e.name === 'KEEP')?.value).toBe('1');
  });
});

describe('run end', () => {
  it('reads the Job outcome from its terminal condition only', () => {
    expect(jobOutcome({ status: { conditions: [{ type: 'Complete', status: 'True' }] } } as never)).toBe('Succeeded');
    expect(jobOutcome({ status: { conditions: [{ type: 'Failed', status: 'True' }] } } as never)).toBe('Failed');
    expect(
      jobOutcome({ status: { active: 0, conditions: [{ type: 'SuccessCriteriaMet', status: 'True' }] } } as never),
    ).toBeUndefined();
  });

  it('treats a Pod that is being deleted but still running as not terminal', () => {
    expect(isPodTerminal({ metadata: { deletionTimestamp: new Date() }, status: { phase: 'Running' } })).toBe(false);
    expect(isPodTerminal({ status: { phase: 'Failed' } })).toBe(true);
  });
});

describe('projectJob (what the Job cache keeps)', () => {
  const created = buildJob(sj, run, { suspended: true });
  created.metadata = {
    ...created.metadata,
    name: run.name,
    namespace: 'pay',
    uid: 'job-uid',
    resourceVersion: '7',
    managedFields: [{ manager: 'x' }],
  };
  created.status = { active: 1, startTime: new Date(0), conditions: [{ type: 'Complete', status: 'True' }] };
  const kept = projectJob(created);

  it('keeps every field the reconciler decides from', () => {
    expect(isOwnedBy(kept, sj)).toBe(true);
    expect(jobToken(kept)).toBe(42);
    expect(jobOutcome(kept)).toBe('Succeeded');
    expect(kept.spec?.suspend).toBe(true);
    expect(kept.metadata).toMatchObject({ name: run.name, namespace: 'pay', uid: 'job-uid', resourceVersion: '7' });
    expect(kept.metadata!.labels![Keys.ownerUid]).toBe('uid-1');
    expect(kept.status).toMatchObject({ active: 1, startTime: new Date(0) });
  });

  it('keeps what a prepared run’s release checks (rules/prepare.ts): an unchanged Job shows no violation, a changed one does', () => {
    expect(guardViolations(kept, sj, run)).toEqual([]);
    const edited = structuredClone(created);
    edited.spec!.parallelism = 4;
    delete edited.spec!.template.metadata!.annotations![Keys.singletonJob];
    expect(guardViolations(projectJob(edited), sj, run)).toHaveLength(2);
  });

  it('drops the rest of the Pod template and managedFields, and is much smaller', () => {
    expect(kept.spec).toEqual({
      suspend: true,
      parallelism: 1,
      template: {
        metadata: {
          labels: { [Keys.ownerUid]: 'uid-1', [Keys.run]: run.name },
          annotations: { [Keys.singletonJob]: sj.metadata!.name },
        },
      },
    });
    expect(kept.metadata!.managedFields).toBeUndefined();
    expect(JSON.stringify(kept).length).toBeLessThan(JSON.stringify(created).length / 2);
  });
});

describe('what a Job itself proves about its Pods', () => {
  const cond = (type: string, reason?: string) => ({ type, status: 'True', ...(reason ? { reason } : {}) });
  const job = (conditions: object[], extra: Record<string, unknown> = {}) =>
    ({ metadata: { name: 'j' }, spec: {}, status: { conditions, ...extra } }) as never;

  it('a terminal condition proves every Pod terminal only after the interim condition a delaying Job controller adds first', () => {
    expect(finishedAfterItsPods(job([cond('SuccessCriteriaMet'), cond('Complete')]))).toBe(true);
    expect(
      finishedAfterItsPods(
        job([cond('FailureTarget', 'BackoffLimitExceeded'), cond('Failed', 'BackoffLimitExceeded')]),
      ),
    ).toBe(true);
    // A kube-controller-manager that does not delay (older, or gates off): Complete alone.
    expect(finishedAfterItsPods(job([cond('Complete')]))).toBe(false);
    expect(finishedAfterItsPods(job([cond('Failed', 'BackoffLimitExceeded')]))).toBe(false);
    // FailureTarget from a podFailurePolicy match is added by older controllers too.
    expect(
      finishedAfterItsPods(job([cond('FailureTarget', 'PodFailurePolicy'), cond('Failed', 'PodFailurePolicy')])),
    ).toBe(false);
    expect(finishedAfterItsPods(job([cond('SuccessCriteriaMet'), cond('Complete')], { active: 1 }))).toBe(false);
    expect(mayStillRunPods(job([cond('Complete')]))).toBe(true);
    expect(mayStillRunPods(job([cond('SuccessCriteriaMet'), cond('Complete')]))).toBe(false);
  });

  it('a Job released once stays released, even when suspended again', () => {
    const released = {
      metadata: { name: 'j', annotations: { [Keys.released]: '2026-12-07T00:00:00Z' } },
      spec: { suspend: true },
      status: {},
    } as never;
    expect(wasReleased(released)).toBe(true);
    expect(mayStillRunPods(released)).toBe(true);
    const never = { metadata: { name: 'j', annotations: {} }, spec: { suspend: true }, status: {} } as never;
    expect(wasReleased(never)).toBe(false);
    expect(mayStillRunPods(never)).toBe(false);
  });
});
