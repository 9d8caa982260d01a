// Valid and invalid SingletonJobs, shared by the unit test (zod) and the
// integration test (the API server, dry-run): both must give the same verdict.
import { API_VERSION, KIND } from '../../src/api/v1alpha1/singletonjob.ts';

const template = { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['true'] }] } } } };

function sj(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec: { jobTemplate: template, ...spec } };
}

/**
 * The API server's own closing line when schema errors kept it from running
 * the CEL rules (Kubernetes adds it; it has no field to name).
 */
export const NOT_CHECKED = '* <nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation';

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
  { name: 'five-field schedule with zone', object: sj('ok-cron', { schedule: '0 0 * * *', timeZone: 'Europe/Berlin' }), valid: true },
  { name: 'seconds schedule', object: sj('ok-seconds', { schedule: '*/5 * * * * *' }), valid: true },
  { name: 'macro', object: sj('ok-macro', { schedule: '@hourly', concurrencyPolicy: 'Replace', suspend: true }), valid: true },
  {
    name: 'all knobs',
    object: sj('ok-knobs', {
      schedule: '30 2 * * 1-5',
      startingDeadlineSeconds: 60,
      successfulJobsHistoryLimit: 0,
      failedJobsHistoryLimit: 5,
      jobTemplate: { metadata: { labels: { team: 'pay' } }, spec: { ...template.spec, parallelism: 1, completions: 1, backoffLimit: 2 } },
    }),
    valid: true,
  },
  {
    name: 'bad policy',
    object: sj('bad-policy', { concurrencyPolicy: 'Allow' }),
    valid: false,
    message: 'concurrencyPolicy',
    expected: 'The SingletonJob "bad-policy" is invalid: \n* spec.concurrencyPolicy: Unsupported value: "Allow": supported values: "Forbid", "Queue", "Replace"\n' + NOT_CHECKED,
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
    expected: 'The SingletonJob "bad-deadline" is invalid: spec.startingDeadlineSeconds: Invalid value: 0: spec.startingDeadlineSeconds in body should be greater than or equal to 1',
  },
  {
    name: 'negative history',
    object: sj('bad-history', { successfulJobsHistoryLimit: -1 }),
    valid: false,
    message: 'successfulJobsHistoryLimit',
    expected: 'The SingletonJob "bad-history" is invalid: spec.successfulJobsHistoryLimit: Invalid value: -1: spec.successfulJobsHistoryLimit in body should be greater than or equal to 0',
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
    expected: 'The SingletonJob "bad-parallelism" is invalid: spec.jobTemplate.spec.parallelism: Invalid value: parallelism must be 1: a SingletonJob runs one Pod at a time',
  },
  {
    name: 'completions 3',
    object: sj('bad-completions', { jobTemplate: { spec: { ...template.spec, completions: 3 } } }),
    valid: false,
    message: 'completions must be 1',
    expected: 'The SingletonJob "bad-completions" is invalid: spec.jobTemplate.spec.completions: Invalid value: completions must be 1: a run is one completion',
  },
  {
    name: 'suspended template',
    object: sj('bad-suspend', { jobTemplate: { spec: { ...template.spec, suspend: true } } }),
    valid: false,
    message: 'suspend the SingletonJob',
    expected: 'The SingletonJob "bad-suspend" is invalid: spec.jobTemplate.spec.suspend: Invalid value: suspend the SingletonJob (spec.suspend), not its Job template',
  },
  {
    name: 'restartPolicy Always',
    object: sj('bad-restart', { jobTemplate: { spec: { template: { spec: { restartPolicy: 'Always', containers: [{ name: 'main', image: 'busybox' }] } } } } }),
    valid: false,
    message: 'restartPolicy',
    expected: 'The SingletonJob "bad-restart" is invalid: \n* spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "Never", "OnFailure"\n' + NOT_CHECKED,
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
    expected: 'The SingletonJob "bad-both-schedules" is invalid: spec.schedules: Invalid value: set schedule or schedules, not both',
  },
  {
    name: 'zone with spaces',
    object: sj('bad-zone', { schedule: '0 0 * * *', timeZone: 'Europe Berlin' }),
    valid: false,
    message: 'timeZone',
    expected: 'The SingletonJob "bad-zone" is invalid: spec.timeZone: Invalid value: "Europe Berlin": must be an IANA time zone name such as Europe/Berlin, America/New_York or UTC',
  },
];
