// The Job of a run never carries a refused Job field that breaks a guarantee,
// even from a template stored before the CRD refused it (a CRD update does
// not re-validate stored objects; a retry of a run in flight still builds Jobs).
import type { ActiveRun, SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { singletonJobSchema } from '../../api/v1alpha1/singletonjob.ts';
import { buildJob } from './jobs.ts';

const run: ActiveRun = {
  name: 'payroll-1735689600',
  token: 42,
  term: 40,
  kind: 'Scheduled',
  reservedTime: '2025-01-01T00:00:00.100Z',
};

function stored(fields: Record<string, unknown>): SingletonJob {
  const template = {
    spec: {
      ...fields,
      template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] } },
    },
  };
  return {
    apiVersion: 'singleton.dev/v1alpha1',
    kind: 'SingletonJob',
    metadata: { name: 'payroll', namespace: 'pay', uid: 'uid-1' },
    spec: { jobTemplate: template },
  } as unknown as SingletonJob;
}

describe('buildJob and the Job-field policy', () => {
  it('leaves out managedBy another manager, ttlSecondsAfterFinished and Ignore rules of a template stored before the rules', () => {
    const sj = stored({
      managedBy: 'kueue.x-k8s.io/multikueue',
      ttlSecondsAfterFinished: 0,
      activeDeadlineSeconds: 600,
      podFailurePolicy: {
        rules: [
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] },
          { action: 'FailJob', onExitCodes: { operator: 'In', values: [42] } },
        ],
      },
    });
    expect(singletonJobSchema.safeParse(sj).success).toBe(false); // the object itself is InvalidSpec
    const spec = buildJob(sj, run).spec!;
    expect(spec.managedBy).toBeUndefined();
    expect(spec.ttlSecondsAfterFinished).toBeUndefined();
    expect(spec.podFailurePolicy).toEqual({
      rules: [{ action: 'FailJob', onExitCodes: { operator: 'In', values: [42] } }],
    });
    expect(spec).toMatchObject({
      activeDeadlineSeconds: 600,
      backoffLimit: 0,
      parallelism: 1,
      completions: 1,
      podReplacementPolicy: 'Failed',
    });
  });

  it('drops a pod failure policy of Ignore rules only, and keeps what a SingletonJob honours', () => {
    expect(
      buildJob(
        stored({ podFailurePolicy: { rules: [{ action: 'Ignore', onExitCodes: { operator: 'In', values: [1] } }] } }),
        run,
      ).spec,
    ).not.toHaveProperty('podFailurePolicy');
    const kept = buildJob(
      stored({
        managedBy: 'kubernetes.io/job-controller',
        podFailurePolicy: { rules: [{ action: 'Count', onPodConditions: [{ type: 'DisruptionTarget' }] }] },
      }),
      run,
    ).spec!;
    expect(kept.managedBy).toBe('kubernetes.io/job-controller');
    expect(kept.podFailurePolicy!.rules).toEqual([
      { action: 'Count', onPodConditions: [{ type: 'DisruptionTarget' }] },
    ]);
  });
});
