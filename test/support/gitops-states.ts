// The GitOps health each recorded SingletonJob state must get: kstatus (the
// real library) and the chart's Argo CD health check. One table for the
// integration test that records the states on the real control plane
// (test/integration/gitops-health.test.ts) and the unit test that judges the
// committed recordings (test/packaging/argocd.test.ts).
export interface Expected {
  kstatus: string;
  argo: string;
  /** What the Argo CD message must say. */
  says?: string | RegExp;
}

export const expected: Record<string, Expected> = {
  idle: { kstatus: 'Current', argo: 'Healthy', says: 'Runs on schedule' },
  running: { kstatus: 'Current', argo: 'Healthy', says: /in flight/ },
  'stalled-run': { kstatus: 'Current', argo: 'Healthy', says: /Run stalled \(FailedCreate\)/ },
  'paused-after-failures': {
    kstatus: 'Current',
    argo: 'Suspended',
    says: /^Scheduled runs are paused: 1 runs failed in a row/,
  },
  suspended: { kstatus: 'Current', argo: 'Suspended' },
  'invalid-spec': { kstatus: 'Failed', argo: 'Degraded', says: /^InvalidTimeZone: / },
  'template-rejected': { kstatus: 'Failed', argo: 'Degraded', says: /^JobRejected: .*image/ },
  'spec-not-observed': { kstatus: 'InProgress', argo: 'Progressing', says: /observe generation 2/ },
  contended: { kstatus: 'Current', argo: 'Healthy', says: /inst-b/ },
};
