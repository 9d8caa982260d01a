// Valid and invalid SingletonJobs, shared by the unit test (zod) and the
// integration test (the API server, dry-run): both must give the same verdict.
import { API_VERSION, KIND } from '../../src/api/v1alpha1/singletonjob.ts';

const template = {
  spec: {
    template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['true'] }] } },
  },
};

function sj(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec: { jobTemplate: template, ...spec } };
}

/**
 * The API server's own closing line when schema errors kept it from running
 * the CEL rules (Kubernetes adds it; it has no field to name).
 */
export const NOT_CHECKED =
  '* <nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation';

export interface CorpusEntry {
  name: string;
  object: Record<string, unknown>;
  valid: boolean;
  /** A fragment the API server's message must contain, for invalid entries. */
  message?: string;
  /** Invalid entries: exactly what `kubectl create` prints (the API server's message). */
  expected?: string;
}

export const corpus: CorpusEntry[] = [
  { name: 'minimal on-demand', object: sj('ok-minimal', {}), valid: true },
  {
    name: 'five-field schedule with zone',
    object: sj('ok-cron', { schedule: '0 0 * * *', timeZone: 'Europe/Berlin' }),
    valid: true,
  },
  { name: 'seconds schedule', object: sj('ok-seconds', { schedule: '*/5 * * * * *' }), valid: true },
  {
    name: 'macro',
    object: sj('ok-macro', { schedule: '@hourly', concurrencyPolicy: 'Replace', suspend: true }),
    valid: true,
  },
  {
    name: 'all knobs',
    object: sj('ok-knobs', {
      schedule: '30 2 * * 1-5',
      startingDeadlineSeconds: 60,
      successfulJobsHistoryLimit: 0,
      failedJobsHistoryLimit: 5,
      jobTemplate: {
        metadata: { labels: { team: 'pay' } },
        spec: { ...template.spec, parallelism: 1, completions: 1, backoffLimit: 2 },
      },
    }),
    valid: true,
  },
  {
    name: 'podFailurePolicy with FailJob and Count rules (each fails the Job: the operator retries with a new token)',
    object: sj('ok-pod-failure-policy', {
      jobTemplate: {
        spec: {
          ...template.spec,
          backoffLimit: 2,
          podFailurePolicy: {
            rules: [
              { action: 'FailJob', onExitCodes: { containerName: 'main', operator: 'In', values: [42] } },
              { action: 'Count', onPodConditions: [{ type: 'DisruptionTarget' }] },
            ],
          },
        },
      },
    }),
    valid: true,
  },
  {
    name: 'managedBy the built-in Job controller, podReplacementPolicy Failed, activeDeadlineSeconds',
    object: sj('ok-job-controller', {
      jobTemplate: {
        spec: {
          ...template.spec,
          managedBy: 'kubernetes.io/job-controller',
          podReplacementPolicy: 'Failed',
          activeDeadlineSeconds: 600,
        },
      },
    }),
    valid: true,
  },
  {
    name: 'restartPolicy OnFailure (containers restart in place in the one Pod, with its token)',
    object: sj('ok-on-failure', {
      jobTemplate: {
        spec: { template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'main', image: 'busybox' }] } } },
      },
    }),
    valid: true,
  },
  {
    name: 'bad policy',
    object: sj('bad-policy', { concurrencyPolicy: 'Allow' }),
    valid: false,
    message: 'concurrencyPolicy',
    expected:
      'The SingletonJob "bad-policy" is invalid: \n* spec.concurrencyPolicy: Unsupported value: "Allow": supported values: "Forbid", "Queue", "Replace"\n' +
      NOT_CHECKED,
  },
  {
    name: 'four fields',
    object: sj('bad-fields', { schedule: '* * * *' }),
    valid: false,
    message: 'spec.schedule',
    expected:
      'The SingletonJob "bad-fields" is invalid: spec.schedule: Invalid value: "* * * *": must be 5 cron fields (minute hour day-of-month month day-of-week), 6 with leading seconds, or one of @yearly @annually @monthly @weekly @daily @midnight @hourly; @every is not supported',
  },
  {
    name: 'TZ inside schedule',
    object: sj('bad-tz-prefix', { schedule: 'TZ=UTC 0 * * * *' }),
    valid: false,
    message: 'spec.schedule',
    expected:
      'The SingletonJob "bad-tz-prefix" is invalid: spec.schedule: Invalid value: "TZ=UTC 0 * * * *": must be 5 cron fields (minute hour day-of-month month day-of-week), 6 with leading seconds, or one of @yearly @annually @monthly @weekly @daily @midnight @hourly; @every is not supported',
  },
  {
    name: 'zero deadline',
    object: sj('bad-deadline', { startingDeadlineSeconds: 0 }),
    valid: false,
    message: 'startingDeadlineSeconds',
    expected:
      'The SingletonJob "bad-deadline" is invalid: spec.startingDeadlineSeconds: Invalid value: 0: spec.startingDeadlineSeconds in body should be greater than or equal to 1',
  },
  {
    name: 'negative history',
    object: sj('bad-history', { successfulJobsHistoryLimit: -1 }),
    valid: false,
    message: 'successfulJobsHistoryLimit',
    expected:
      'The SingletonJob "bad-history" is invalid: spec.successfulJobsHistoryLimit: Invalid value: -1: spec.successfulJobsHistoryLimit in body should be greater than or equal to 0',
  },
  {
    name: 'missing template',
    object: { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'bad-no-template' }, spec: {} },
    valid: false,
    message: 'jobTemplate',
    expected: 'The SingletonJob "bad-no-template" is invalid: \n* spec.jobTemplate: Required value\n' + NOT_CHECKED,
  },
  {
    name: 'no containers',
    object: sj('bad-no-containers', { jobTemplate: { spec: { template: { spec: { containers: [] } } } } }),
    valid: false,
    message: 'containers',
    expected:
      'The SingletonJob "bad-no-containers" is invalid: spec.jobTemplate.spec.template.spec.containers: Invalid value: 0: spec.jobTemplate.spec.template.spec.containers in body should have at least 1 items',
  },
  {
    name: 'parallelism 2',
    object: sj('bad-parallelism', { jobTemplate: { spec: { ...template.spec, parallelism: 2 } } }),
    valid: false,
    message: 'parallelism must be 1',
    expected:
      'The SingletonJob "bad-parallelism" is invalid: spec.jobTemplate.spec.parallelism: Invalid value: parallelism must be 1: a SingletonJob runs one Pod at a time',
  },
  {
    name: 'completions 3',
    object: sj('bad-completions', { jobTemplate: { spec: { ...template.spec, completions: 3 } } }),
    valid: false,
    message: 'completions must be 1',
    expected:
      'The SingletonJob "bad-completions" is invalid: spec.jobTemplate.spec.completions: Invalid value: completions must be 1: a run is one completion',
  },
  {
    name: 'suspended template',
    object: sj('bad-suspend', { jobTemplate: { spec: { ...template.spec, suspend: true } } }),
    valid: false,
    message: 'suspend the SingletonJob',
    expected:
      'The SingletonJob "bad-suspend" is invalid: spec.jobTemplate.spec.suspend: Invalid value: suspend the SingletonJob (spec.suspend), not its Job template',
  },
  {
    name: 'restartPolicy Always',
    object: sj('bad-restart', {
      jobTemplate: {
        spec: { template: { spec: { restartPolicy: 'Always', containers: [{ name: 'main', image: 'busybox' }] } } },
      },
    }),
    valid: false,
    message: 'restartPolicy',
    expected:
      'The SingletonJob "bad-restart" is invalid: \n* spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "Never", "OnFailure"\n' +
      NOT_CHECKED,
  },
  {
    name: '@every (not supported)',
    object: sj('bad-every', { schedule: '@every 5m' }),
    valid: false,
    message: 'spec.schedule',
    expected:
      'The SingletonJob "bad-every" is invalid: spec.schedule: Invalid value: "@every 5m": must be 5 cron fields (minute hour day-of-month month day-of-week), 6 with leading seconds, or one of @yearly @annually @monthly @weekly @daily @midnight @hourly; @every is not supported',
  },
  {
    name: 'a bad item of schedules',
    object: sj('bad-schedules-item', { schedules: ['0 * * * *', '@every 1h'] }),
    valid: false,
    message: 'spec.schedules[1]',
    expected:
      'The SingletonJob "bad-schedules-item" is invalid: spec.schedules[1]: Invalid value: "@every 1h": must be 5 cron fields (minute hour day-of-month month day-of-week), 6 with leading seconds, or one of @yearly @annually @monthly @weekly @daily @midnight @hourly; @every is not supported',
  },
  {
    name: 'schedule and schedules',
    object: sj('bad-both-schedules', { schedule: '0 * * * *', schedules: ['30 * * * *'] }),
    valid: false,
    message: 'spec.schedules',
    expected:
      'The SingletonJob "bad-both-schedules" is invalid: spec.schedules: Invalid value: set schedule or schedules, not both',
  },
  {
    name: 'zone with spaces',
    object: sj('bad-zone', { schedule: '0 0 * * *', timeZone: 'Europe Berlin' }),
    valid: false,
    message: 'timeZone',
    expected:
      'The SingletonJob "bad-zone" is invalid: spec.timeZone: Invalid value: "Europe Berlin": must be an IANA time zone name such as Europe/Berlin, America/New_York or UTC',
  },
  {
    name: 'managedBy another Job manager',
    object: sj('bad-managed-by', {
      jobTemplate: { spec: { ...template.spec, managedBy: 'kueue.x-k8s.io/multikueue' } },
    }),
    valid: false,
    message: 'spec.jobTemplate.spec.managedBy',
    expected:
      'The SingletonJob "bad-managed-by" is invalid: spec.jobTemplate.spec.managedBy: Invalid value: "kueue.x-k8s.io/multikueue": managedBy must be absent or kubernetes.io/job-controller: under another Job manager the built-in Job controller does not create the run\'s Pods, and the operator can only fence Pods it can see',
  },
  {
    name: 'podFailurePolicy rule with action Ignore (the Kubernetes docs snippet: Ignore on DisruptionTarget)',
    object: sj('bad-pfp-ignore', {
      jobTemplate: {
        spec: {
          ...template.spec,
          podFailurePolicy: {
            rules: [
              { action: 'FailJob', onExitCodes: { containerName: 'main', operator: 'In', values: [42] } },
              { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] },
            ],
          },
        },
      },
    }),
    valid: false,
    message: 'spec.jobTemplate.spec.podFailurePolicy.rules[1].action',
    expected:
      'The SingletonJob "bad-pfp-ignore" is invalid: spec.jobTemplate.spec.podFailurePolicy.rules[1].action: Invalid value: "Ignore": action Ignore is not supported: the Job controller would replace the failed Pod inside the same Job, with the same fencing token; retry with backoffLimit instead (the operator\'s retries: each attempt is a new Job with a new token), or use Count or FailJob',
  },
  {
    name: 'podFailurePolicy rule with action FailIndex',
    object: sj('bad-pfp-fail-index', {
      jobTemplate: {
        spec: {
          ...template.spec,
          podFailurePolicy: { rules: [{ action: 'FailIndex', onExitCodes: { operator: 'In', values: [1] } }] },
        },
      },
    }),
    valid: false,
    message: 'spec.jobTemplate.spec.podFailurePolicy.rules[0].action',
    expected:
      'The SingletonJob "bad-pfp-fail-index" is invalid: spec.jobTemplate.spec.podFailurePolicy.rules[0].action: Invalid value: "FailIndex": action FailIndex is for Indexed Jobs (it needs backoffLimitPerIndex); a run is one NonIndexed completion: use FailJob or Count',
  },
  {
    name: 'ttlSecondsAfterFinished',
    object: sj('bad-ttl', { jobTemplate: { spec: { ...template.spec, ttlSecondsAfterFinished: 0 } } }),
    valid: false,
    message: 'spec.jobTemplate.spec.ttlSecondsAfterFinished',
    expected:
      'The SingletonJob "bad-ttl" is invalid: spec.jobTemplate.spec.ttlSecondsAfterFinished: Forbidden: ttlSecondsAfterFinished is not supported: the operator must read a run\'s outcome before its Job goes (a Job deleted early ends the run with no retry and no failure counted); successfulJobsHistoryLimit and failedJobsHistoryLimit say how many finished Jobs are kept',
  },
  {
    name: 'backoffLimitPerIndex',
    object: sj('bad-backoff-per-index', { jobTemplate: { spec: { ...template.spec, backoffLimitPerIndex: 1 } } }),
    valid: false,
    message: 'spec.jobTemplate.spec.backoffLimitPerIndex',
    expected:
      'The SingletonJob "bad-backoff-per-index" is invalid: spec.jobTemplate.spec.backoffLimitPerIndex: Forbidden: backoffLimitPerIndex is not supported: it retries a Pod inside the same Job, with the same fencing token (and needs Indexed completion); use backoffLimit (the operator\'s retries: each attempt is a new Job with a new token)',
  },
  {
    name: 'maxFailedIndexes',
    object: sj('bad-max-failed-indexes', { jobTemplate: { spec: { ...template.spec, maxFailedIndexes: 1 } } }),
    valid: false,
    message: 'spec.jobTemplate.spec.maxFailedIndexes',
    expected:
      'The SingletonJob "bad-max-failed-indexes" is invalid: spec.jobTemplate.spec.maxFailedIndexes: Forbidden: maxFailedIndexes is not supported: it goes with backoffLimitPerIndex on Indexed Jobs; a run is one NonIndexed completion',
  },
  {
    name: 'successPolicy',
    object: sj('bad-success-policy', {
      jobTemplate: { spec: { ...template.spec, successPolicy: { rules: [{ succeededCount: 1 }] } } },
    }),
    valid: false,
    message: 'spec.jobTemplate.spec.successPolicy',
    expected:
      'The SingletonJob "bad-success-policy" is invalid: spec.jobTemplate.spec.successPolicy: Forbidden: successPolicy is not supported: it is for Indexed Jobs; a run is one NonIndexed completion, done when its Pod succeeds',
  },
  {
    name: 'podReplacementPolicy TerminatingOrFailed',
    object: sj('bad-pod-replacement', {
      jobTemplate: { spec: { ...template.spec, podReplacementPolicy: 'TerminatingOrFailed' } },
    }),
    valid: false,
    message: 'spec.jobTemplate.spec.podReplacementPolicy',
    expected:
      'The SingletonJob "bad-pod-replacement" is invalid: spec.jobTemplate.spec.podReplacementPolicy: Invalid value: "TerminatingOrFailed": podReplacementPolicy must be Failed (the operator sets it on every Job): a Pod still terminating is neither counted as failed nor replaced',
  },
  {
    name: 'a selector of its own',
    object: sj('bad-selector', {
      jobTemplate: { spec: { ...template.spec, selector: { matchLabels: { app: 'x' } } } },
    }),
    valid: false,
    message: 'spec.jobTemplate.spec.selector',
    expected:
      'The SingletonJob "bad-selector" is invalid: spec.jobTemplate.spec.selector: Forbidden: selector is not supported: the API server generates the Job\'s selector from its UID',
  },
];
